"""One Retry-After reading for the crawl and the archive client: seconds or an HTTP date (RFC 9110)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policywatch.monitor.retryafter import retry_after

NOW = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("120", 120.0),
        (b" 5 ", 5.0),  # header bytes, spaces around
        ("Sat, 05 Dec 2026 12:01:30 GMT", 90.0),
        ("Sat, 05 Dec 2026 11:00:00 GMT", 0.0),  # a date already past: no wait, never negative
        ("Sat, 05 Dec 2026 12:00:10", 10.0),  # no zone: HTTP dates are GMT
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(value, seconds):
    assert retry_after(value, now=NOW) == seconds
