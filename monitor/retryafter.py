"""One reading of an HTTP Retry-After header, for the crawl (its downloader slot waits) and the archive client
(it sleeps): a number of seconds or an HTTP date, as RFC 9110 §10.2.3 allows."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime


def retry_after(value: str | bytes | None, now: datetime | None = None) -> float | None:
    """Seconds to wait (never negative), or None when the header is absent or says nothing readable. A date
    without a zone is read as UTC (HTTP dates are GMT)."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
