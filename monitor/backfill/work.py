"""One archived capture into the history, in one transaction: the same extraction, soft-error rules and
detection as a nightly pass (monitor.pagework), at the capture's own time.

What differs from a live fetch, and why:
- the capture is compared with the version captured *just before it*, not with the page's newest one, so an
  old capture read after live history exists is history in its place, never a change against today's page;
- a page's first known capture starts its history (a version, no change record): it is not news;
- fetches carry the capture (`archive_capture`), which makes a second read of it a no-op, and no run (they
  belong to no nightly pass); versions say `archive` in their meta; changes say `backfilled` and are dated
  at the capture — digests never send them (reports.outbox);
- nothing about the live page moves: its validators, status and last-seen time stay the live ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from policywatch.monitor.backfill.captures import Capture
from policywatch.monitor.config import Config
from policywatch.monitor.fetchresult import FetchResult
from policywatch.monitor.page.compare import decide, earlier
from policywatch.monitor.page.content import Content, Unreadable, read_content
from policywatch.monitor.page.store import Writer
from policywatch.monitor.urls import normalize_url
from policywatch.storage import queries as q
from policywatch.storage.db import Database
from policywatch.storage.models import Page, Version

#: The archive's own pages served in place of a capture (no capture at that time, a capture of a redirect).
ARCHIVE_PAGE = re.compile(
    rb"<title>\s*(?:Wayback Machine|Internet Archive: Wayback Machine)\s*</title>|Hrm\.\s*The Wayback Machine"
    rb"|Wayback Machine has not archived that URL|Got an HTTP \d{3} response at crawl time",
    re.IGNORECASE,
)


@dataclass
class Stored:
    outcome: str  # skipped | first | unchanged | stored | changed | soft_error
    change_id: int | None = None
    message: str | None = None


def not_a_capture(body: bytes) -> str | None:
    """Why these bytes are not a capture of the site at all, or None."""
    if ARCHIVE_PAGE.search(body[:20000]):
        return "the archive's own page, not a capture of the site"
    if b"\x00" in body[:4096]:  # compressed or binary bytes are never a page's text
        return "binary content (compressed, or not a page): not stored as the page"
    return None


class ArchiveWork:
    """Stores archive captures of the watched pages (and of the URLs given to `backfill --url`)."""

    def __init__(self, db: Database, config: Config):
        self.db = db
        self.config = config
        self.write = Writer(None)  # backfilled rows belong to no pass

    def done(self, url: str, capture: Capture) -> bool:
        with self.db.session() as s:
            row = q.page_row(s, normalize_url(url))
            return row is not None and q.archive_capture_done(s, row.id, capture.key)

    def store(
        self,
        url: str,
        capture: Capture,
        body: bytes,
        *,
        content_type: str | None,
        encoding: str | None,
        archive_url: str,
    ) -> Stored:
        r = FetchResult(
            url=url,
            status=200,
            body=body,
            encoding=encoding,
            content_type=content_type,
            fetched_at=capture.when,
        )
        with self.db.session() as s:
            page = self._page(s, url, capture)
            if page is None:
                return Stored("skipped")
            return self._store(s, page, r, capture, archive_url)

    def _page(self, s: Session, url: str, capture: Capture) -> Page | None:
        """The page the capture is of (made if new, its first sighting moved back), or None when this capture
        is already in its history."""
        watch = self.config.watch_for(url)
        url_key = normalize_url(url)
        page = q.get_page(s, url_key)
        if page is not None and q.archive_capture_done(s, page.id, capture.key):
            return None
        if page is None:
            page, _ = q.get_or_create_page(
                s,
                url,
                url_key,
                source="watch" if watch else "archive",
                topics=list(watch.topics) if watch else [],
            )
            page.first_seen = capture.when
        elif page.first_seen is None or page.first_seen > capture.when:
            page.first_seen = capture.when
        return page

    def _store(self, s: Session, page: Page, r: FetchResult, capture: Capture, archive_url: str) -> Stored:
        mark = {"archive_capture": capture.key}
        body = r.body or b""
        try:
            reason = not_a_capture(body)
            if reason:
                raise Unreadable(reason)
            content = read_content(self.config, r, watch=self.config.watch_for(r.url))
        except Unreadable as exc:
            self.write.failed_fetch(s, page.id, r, "soft_error", str(exc), raw_hash=None, **mark)
            return Stored("soft_error", message=str(exc))
        raw_hash = hashlib.sha256(body).hexdigest()
        prev = q.last_version(s, page.id, before=capture.when)
        if prev is not None and prev.content_hash == content.content_hash:
            self.write.fetch(
                s, page.id, r, "ok", raw_hash=raw_hash, content_hash=content.content_hash, **mark
            )
            return Stored("unchanged")
        return self._version(s, page, r, content, raw_hash, prev, capture, archive_url)

    def _version(
        self,
        s: Session,
        page: Page,
        r: FetchResult,
        content: Content,
        raw_hash: str,
        prev: Version | None,
        capture: Capture,
        archive_url: str,
    ) -> Stored:
        """Other content than the capture before: a version, and a change dated at the capture when a reader
        would see one. Only the page's newest content so far names it."""
        title = content.title_over(page.title)
        decision = None
        if prev is not None:
            decision = decide(
                self.config,
                content,
                earlier(s, self.config, prev, content, r.url),
                url=page.url,
                title=title or r.url,
                topics=list(page.topics or []),
                discovered=False,
                baseline=False,
            )
        prepared = self.write.prepare(s, r.url, r.body or b"", raw_hash, content, known_page=True)
        self.write.body(s, prepared, r.content_type)
        if not q.newer_version_exists(s, page.id, capture.when):
            page.extractor = content.extractor
            if content.title and not content.is_json:
                page.title = content.title
        fetch_id = self.write.fetch(
            s,
            page.id,
            r,
            "ok",
            raw_hash=raw_hash,
            content_hash=content.content_hash,
            content_changed=True,
            archive_capture=capture.key,
        )
        archived = {"timestamp": capture.timestamp, "url": archive_url}
        meta = {"content_type": r.content_type, "archive": {**archived, "digest": capture.digest}}
        version_id = self.write.version(s, page.id, fetch_id, capture.when, content, prepared, title, meta)
        if prev is None:
            return Stored("first")
        if decision is None:  # other bytes, the same content as far as a reader can tell: no change
            return Stored("stored")
        details = {"backfilled": True, "archive": archived}
        change_id = self.write.change(
            s, page, decision, prev.id, version_id, detected_at=capture.when, title=title, details=details
        )
        return Stored("changed", change_id)
