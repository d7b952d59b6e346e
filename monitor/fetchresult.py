"""What a crawl hands to the page work for one URL (FetchResult) and what it gets back (PageOutcome).

Why a module of their own: the spider builds these for every page and needs nothing of the page work to do so
(the pipeline hands them to `monitor.pagework`). Only the standard library and `monitor.config` are imported
here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from policywatch.monitor.config import Watch


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FetchResult:
    """What the spider learned about one URL, whatever happened."""

    url: str  # as configured or discovered
    source: str = "watch"  # watch | discovered
    outcome: str = "ok"
    status: int | None = None
    message: str | None = None
    body: bytes | None = None
    encoding: str | None = None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    attempts: int = 1
    duration_ms: int | None = None
    fetched_at: datetime = field(default_factory=_now)
    #: The watch this URL belongs to, when the crawl knows it. None: looked up in the config.
    watch: Watch | None = None
    #: [parity]: the page's versions in the other languages as this response names them ({"fr": URL}); None
    #: when the crawl did not look (parity off, not a watched HTML page, no body).
    twins: dict[str, str] | None = None


@dataclass
class PageOutcome:
    result: str  # new | changed | unchanged | not_modified | failed | removed
    outcome: str
    change_id: int | None = None
    message: str | None = None
