"""The backfill: for each page, list its captures, read each one oldest first, store it; report as it goes.

Resumable by construction: each capture is stored in one transaction together with the mark that it was read
(`fetches.archive_capture`), so a backfill killed at any point and run again skips what it stored and goes on
from there — the result equals one uninterrupted run. A capture the archive could not serve (after retries) is
not marked, and is tried again next time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from policywatch.monitor.backfill.captures import Capture, spread, timestamp_problem
from policywatch.monitor.backfill.wayback import ArchiveClient, ArchiveError
from policywatch.monitor.backfill.work import ArchiveWork
from policywatch.monitor.config import Config
from policywatch.storage.db import Database


@dataclass
class PageSummary:
    url: str
    listed: int = 0  # captures in the period, after the archive's duplicates were dropped
    fetched: int = 0  # read this time (from the archive or a WARC file)
    skipped: int = 0  # stored by an earlier backfill
    stored: int = 0  # new versions
    changes: int = 0
    failed: int = 0  # the archive could not serve it: tried again next time
    refused: int = 0  # rows of another page, or dated impossibly or in the future: never stored
    soft_errors: int = 0  # error or maintenance pages, the archive's own pages: recorded, never a version
    problems: list[str] = field(default_factory=list)
    change_ids: list[int] = field(default_factory=list)


class ProgressLike(Protocol):
    """What the command line shows of a backfill (monitor.cli's progress bar is one)."""

    def listed(self, url: str, count: int) -> None: ...

    def capture(self, url: str, capture: Capture, outcome: str) -> None: ...

    def note(self, message: str) -> None: ...


class Progress:
    """The default: shows nothing."""

    def listed(self, url: str, count: int) -> None: ...

    def capture(self, url: str, capture: Capture, outcome: str) -> None: ...

    def note(self, message: str) -> None: ...


def backfill_archive(
    db: Database,
    config: Config,
    urls: Iterable[str],
    client: ArchiveClient,
    *,
    start: str | None = None,
    end: str | None = None,
    max_captures: int | None = None,
    progress: ProgressLike | None = None,
) -> list[PageSummary]:
    progress = progress or Progress()
    work = ArchiveWork(db, config)
    listings: list[tuple[str, list[Capture], PageSummary]] = []
    for url in urls:  # every listing first: the progress bar knows the whole job before the first capture
        summary = PageSummary(url)
        try:
            listing = client.list_captures(url, start=start, end=end)
            captures = spread(listing.captures, max_captures)
            _refuse(summary, listing.skipped)
        except (ArchiveError, ValueError) as exc:
            summary.problems.append(f"could not list captures: {exc}")
            captures = []
        summary.listed = len(captures)
        progress.listed(url, len(captures))
        listings.append((url, captures, summary))
    for url, captures, summary in listings:
        for capture in captures:
            if work.done(url, capture):
                summary.skipped += 1
                progress.capture(url, capture, "skipped")
                continue
            try:
                response = client.fetch(capture)
            except ArchiveError as exc:
                summary.failed += 1
                summary.problems.append(f"{capture.timestamp}: {exc}")
                progress.capture(url, capture, "failed")
                continue
            summary.fetched += 1
            if response.status != 200:
                summary.failed += 1
                summary.problems.append(f"{capture.timestamp}: the archive answered HTTP {response.status}")
                progress.capture(url, capture, "failed")
                continue
            outcome = _store(
                work,
                summary,
                url,
                capture,
                response.body,
                response.content_type,
                response.encoding,
                response.url,
            )
            progress.capture(url, capture, outcome)
    return [s for _, _, s in listings]


def _refuse(summary: PageSummary, reasons: list[str]) -> None:
    summary.refused += len(reasons)
    summary.problems += [f"skipped: {why}" for why in reasons[:5]]
    if len(reasons) > 5:
        summary.problems.append(f"skipped: {len(reasons) - 5} more rows like these")


def _store(
    work: ArchiveWork,
    summary: PageSummary,
    url: str,
    capture: Capture,
    body: bytes,
    content_type: str | None,
    encoding: str | None,
    where: str,
) -> str:
    stored = work.store(url, capture, body, content_type=content_type, encoding=encoding, archive_url=where)
    if stored.outcome == "skipped":
        summary.skipped += 1
    elif stored.outcome == "soft_error":
        summary.soft_errors += 1
        summary.problems.append(f"{capture.timestamp}: {stored.message}")
    else:
        summary.stored += stored.outcome in ("first", "stored", "changed")
        summary.changes += stored.outcome == "changed"
        if stored.change_id is not None:
            summary.change_ids.append(stored.change_id)
    return stored.outcome


def backfill_warc(
    db: Database,
    config: Config,
    records: Iterable[tuple[str, Capture, bytes, str | None, str | None, str]],
    *,
    wanted: Callable[[str], str | None],
    progress: ProgressLike | None = None,
) -> list[PageSummary]:
    """Captures read from WARC files (`records`: url, capture, body, content type, charset, where), in time
    order per page; `wanted` maps a record's URL to the watched URL it is a capture of (None: not watched)."""
    progress = progress or Progress()
    work = ArchiveWork(db, config)
    by_page: dict[str, list[tuple[Capture, bytes, str | None, str | None, str]]] = {}
    refused: dict[str, list[str]] = {}
    now = datetime.now(UTC)
    for url, capture, body, ctype, charset, where in records:
        page = wanted(url)
        if page is None:
            continue
        problem = timestamp_problem(capture.timestamp, now)
        if problem:
            refused.setdefault(page, []).append(f"{where}: {problem}")
            continue
        by_page.setdefault(page, []).append((capture, body, ctype, charset, where))
    summaries = []
    for page in list(dict.fromkeys([*by_page, *refused])):
        items = by_page.setdefault(page, [])
        items.sort(key=lambda item: item[0].timestamp)
        summary = PageSummary(page, listed=len(items))
        _refuse(summary, refused.get(page, []))
        progress.listed(page, len(items))
        summaries.append(summary)
    for summary in summaries:
        for capture, body, ctype, charset, where in sorted(
            by_page[summary.url], key=lambda i: i[0].timestamp
        ):
            if work.done(summary.url, capture):
                summary.skipped += 1
                progress.capture(summary.url, capture, "skipped")
                continue
            summary.fetched += 1
            progress.capture(
                summary.url, capture, _store(work, summary, summary.url, capture, body, ctype, charset, where)
            )
    return summaries
