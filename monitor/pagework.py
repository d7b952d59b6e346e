"""The live pass's unit of work for one page, run by the crawl's item pipeline: the page pipeline's steps
(monitor.page: content → compare → store) with the live pass's rules.

One transaction per page: the fetch record, a new version (only when the content changed) and the change are
committed together or not at all. Nothing but an `ok` fetch creates a version; a page is `removed` only after
a 404/410 on two consecutive passes; after any failed night the next good fetch is compared with the last good
version, so a maintenance night never shows up as a change. Reads first, then the CPU work (hash, parse,
compress, diff), then every write at the end: the write transaction is held for milliseconds, not for a parse.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag

from sqlalchemy.orm import Session

from policywatch.monitor.config import Config
from policywatch.monitor.detection.detect import removed_decision
from policywatch.monitor.fetchresult import FetchResult, PageOutcome
from policywatch.monitor.page.compare import decide, earlier
from policywatch.monitor.page.content import (
    EXTRACTION_VERSION,
    Content,
    Unreadable,
    content_kind,
    main_fingerprint,
    read_content,
    read_html,
)
from policywatch.monitor.page.store import Writer
from policywatch.monitor.urls import AllowedDomains, normalize_url
from policywatch.storage import queries as q
from policywatch.storage.db import Database, describe_exception, is_storage_error
from policywatch.storage.models import Page
from policywatch.storage.types import utcnow

__all__ = ["EXTRACTION_VERSION", "FetchResult", "PageWork", "main_fingerprint", "read_html"]

log = logging.getLogger(__name__)
GONE_STATUSES = (404, 410)
REMOVED_AFTER = 2


class Target:
    """The page a fetch is for, as far as the history knows it (a Core row: the unchanged paths never need the
    ORM object); its ORM row is loaded, created or given its watch's topics only when a path needs it."""

    def __init__(self, s: Session, config: Config, r: FetchResult):
        self.s, self.r = s, r
        self.watch = r.watch or config.watch_for(r.url)
        self.source = "watch" if self.watch else r.source
        self.url_key = normalize_url(r.url)
        self.row: Any = q.page_row(s, self.url_key)
        row = self.row
        self.topics: list[str] = (
            list(self.watch.topics) if self.watch else list(row.topics or []) if row is not None else []
        )
        self.settled = row is not None and not (
            self.watch and (row.source != "watch" or list(row.topics or []) != self.topics)
        )
        self.page: Page | None = None

    @property
    def gcweb_before(self) -> bool:
        return self.row is not None and self.row.extractor == "gcweb"

    def page_id(self) -> int:
        return int(self.row.id) if self.settled else self.ensure().id

    def existing(self) -> Page | None:
        if self.page is None and self.row is not None:
            self.page = self.s.get(Page, self.row.id)
        return self.page

    def ensure(self) -> Page:
        page = self.existing()
        if page is None:  # (another worker may have created it meanwhile: then this finds that row)
            page, _ = q.get_or_create_page(
                self.s, self.r.url, self.url_key, source=self.source, topics=self.topics, looked_up=True
            )
            self.page = page
        if self.watch and (page.source != "watch" or list(page.topics or []) != self.topics):
            page.source, page.topics = "watch", self.topics
        return page


@dataclass(frozen=True, slots=True)
class Pending:
    """A page `settle` could not settle without reading it: the hashes it computed (never computed twice)
    and the last version's (id, raw hash, content hash) it read."""

    raw_hash: str
    main_fp: str | None
    prev_hashes: tuple[int, str | None, str] | None


class PageWork:
    """Processes FetchResults for one run against one database and config."""

    def __init__(self, db: Database, config: Config, run_id: int, *, first_run: bool):
        self.db = db
        self.config = config
        self.run_id = run_id
        self.first_run = first_run
        self.write = Writer(run_id)
        self.allowed = AllowedDomains(list(config.crawl.allowed_domains))

    def process(self, result: FetchResult, pending: Pending | None = None) -> PageOutcome:
        """One page in one transaction. A page that cannot be read (a parse, extraction or comparison error:
        JSON nested too deep, markup no parser survives) is that page's failed fetch, recorded with its error,
        and the pass goes on; only a storage error, which every later page would meet too, is raised.
        `pending`: what `settle` learnt of this result."""
        outcome = self._run(result, quick=False, pending=pending)
        assert isinstance(outcome, PageOutcome)  # (only a quick look leaves a page pending)
        return outcome

    def settle(self, result: FetchResult) -> PageOutcome | Pending:
        """The paths that need no parse — a 304, a failed fetch, the same bytes, GCWeb furniture changed
        outside <main> — done at once, by the caller's thread; or a `Pending` when the page must be read
        (`process(result, pending)`, on the worker thread). Why: on SQLite the crawl runs this where the
        response arrives, so an unchanged night costs no hand-off to the worker thread and back for each page
        (BENCHMARKS.md, the whole passes at 2,000 pages)."""
        return self._run(result, quick=True)

    def _run(
        self, result: FetchResult, *, quick: bool, pending: Pending | None = None
    ) -> PageOutcome | Pending:
        try:
            with self.db.session() as s:
                t = Target(s, self.config, result)
                outcome = self._look(s, t, result, pending)
                if isinstance(outcome, Pending):
                    if quick:
                        return outcome  # (nothing written: the session had only read)
                    outcome = self._read(s, t, result, outcome)
                self._record_twins(s, t, result)
                return outcome
        except Exception as exc:
            if is_storage_error(exc):
                raise
            reason = f"could not be read: {describe_exception(exc)}"
            log.warning("%s %s", result.url, reason, exc_info=True)
        with self.db.session() as s:
            page = Target(s, self.config, result).ensure()
            self.write.failed_fetch(s, page.id, result, "unreadable", reason)
            return PageOutcome("failed", "unreadable", None, reason)

    @staticmethod
    def _record_twins(s: Session, t: Target, r: FetchResult) -> None:
        """[parity]: the twins this response names, kept with the page whether its content changed or not
        (a version's metadata names them only when a version is stored), written only when they differ (a page
        new this pass has none yet)."""
        if r.twins is None or r.outcome != "ok":
            return
        if t.row is None or (t.row.twins or {}) != r.twins:
            q.set_twins(s, t.url_key, r.twins)

    def _look(self, s: Session, t: Target, r: FetchResult, pending: Pending | None) -> PageOutcome | Pending:
        """Everything but reading the page: a 304, a failure, the same bytes or the same <main> are settled
        here; otherwise the page is Pending, with the hashes already computed."""
        if r.outcome == "not_modified":
            return self._not_modified(s, t.page_id(), r)
        if r.outcome != "ok":
            return self._failed(s, t.ensure(), r)
        body = r.body or b""
        raw_hash = pending.raw_hash if pending is not None else hashlib.sha256(body).hexdigest()
        prev_h = (
            q.last_version_hashes(s, t.row.id, before=q.not_after(r.fetched_at))
            if t.row is not None
            else None
        )
        if prev_h is not None and prev_h[1] == raw_hash:  # byte-identical: no parse, no diff, no version
            return self._unchanged(s, t.page_id(), r, raw_hash, prev_h[2])
        fp = pending.main_fp if pending is not None else None
        html = content_kind(r.content_type, r.url, t.watch.kind if t.watch else "auto") == "html"
        if t.gcweb_before and prev_h is not None and html:
            if fp is None:
                fp = main_fingerprint(body, r.encoding, self.config.rules_for(r.url)[2])
            if fp is not None and fp == t.row.main_fp:  # noise outside <main> only: the content is the same
                return self._unchanged(s, t.page_id(), r, raw_hash, prev_h[2])
        return Pending(raw_hash, fp, prev_h)

    def _read(self, s: Session, t: Target, r: FetchResult, p: Pending) -> PageOutcome:
        """The page read, compared with its last version, and stored."""
        raw_hash, fp, prev_h = p.raw_hash, p.main_fp, p.prev_hashes
        body = r.body or b""
        try:
            content = read_content(self.config, r, watch=t.watch, require_gcweb=t.gcweb_before)
        except Unreadable as exc:
            return self._failed(s, t.ensure(), r, "soft_error", str(exc))
        main_fp = (
            (fp or main_fingerprint(body, r.encoding, content.meta.get("rules", "")))
            if (content.extractor == "gcweb")
            else None
        )
        if prev_h is not None and prev_h[2] == content.content_hash:  # noise only: keep just the hashes
            page = t.ensure()
            self._update_page(s, page, r, content, content.title_over(page.title), main_fp)
            self.write.fetch(s, page.id, r, "ok", raw_hash=raw_hash, content_hash=content.content_hash)
            return PageOutcome("unchanged", "ok")
        return self._changed(s, t, r, content, raw_hash, main_fp, known=prev_h is not None)

    def _changed(
        self,
        s: Session,
        t: Target,
        r: FetchResult,
        content: Content,
        raw_hash: str,
        main_fp: str | None,
        *,
        known: bool,
    ) -> PageOutcome:
        """The content changed (or the page is new): read what the comparison needs, compare, then write."""
        page = t.existing()
        new_title = content.title_over(page.title if page is not None else None)
        prev = q.last_version(s, t.row.id, before=q.not_after(r.fetched_at)) if known else None
        old = earlier(s, self.config, prev, content, r.url)
        source = "watch" if t.watch else page.source if page is not None else t.source
        decision = decide(
            self.config,
            content,
            old,
            url=page.url if page is not None else r.url,
            title=new_title or r.url,
            topics=t.topics,
            discovered=source == "discovered",
            baseline=source == "watch" or self.first_run,
        )
        prepared = self.write.prepare(
            s, r.url, r.body or b"", raw_hash, content, known_page=t.row is not None
        )
        # Writes from here on. A page seen for the first time is inserted in one statement.
        page = self._insert_new_page(s, t, content, new_title, main_fp) if t.row is None else None
        if page is None:
            page = t.ensure()
            self._update_page(s, page, r, content, new_title, main_fp)
        self.write.body(s, prepared, r.content_type)
        fetch_id = self.write.fetch(
            s, page.id, r, "ok", raw_hash=raw_hash, content_hash=content.content_hash, content_changed=True
        )
        meta = {"content_type": r.content_type}
        version_id = self.write.version(
            s, page.id, fetch_id, r.fetched_at, content, prepared, page.title, meta
        )
        if decision is None:
            return PageOutcome("unchanged", "ok")
        change_id = self.write.change(s, page, decision, prev.id if prev is not None else None, version_id)
        self._follow_entries(s, page, decision.follow)
        return PageOutcome("new" if decision.kind == "new_page" else "changed", "ok", change_id)

    def _follow_entries(self, s: Session, listing: Page, links: list[str]) -> None:
        """A listing's new entries (IRCC's program delivery updates, a news table): the pages they link to are
        watched from the next pass on, as discovered pages with the listing's topics, inside the allowed
        domains; a page already known is left as it is."""
        for link in links:
            url = urldefrag(link)[0]
            if not self.allowed.allows(url):
                continue
            key = normalize_url(url)
            if q.page_row(s, key) is None:
                q.insert_page_if_absent(
                    s,
                    url=url,
                    url_key=key,
                    source="discovered",
                    topics=list(listing.topics or []),
                    status="active",
                    gone_count=0,
                    first_seen=utcnow(),
                )

    def _unchanged(
        self, s: Session, page_id: int, r: FetchResult, raw_hash: str, content_hash: str
    ) -> PageOutcome:
        self.write.fetch(s, page_id, r, "ok", raw_hash=raw_hash, content_hash=content_hash)
        q.mark_seen(s, page_id, r.fetched_at)
        return PageOutcome("unchanged", "ok")

    def _not_modified(self, s: Session, page_id: int, r: FetchResult) -> PageOutcome:
        """A 304: the fetch carries the last good fetch's hashes (and validators, unless the 304 sent new
        ones)."""
        last_ok = q.last_ok_fetch_hashes(s, page_id)
        keep = (
            {}
            if r.etag or last_ok is None
            else {"etag": last_ok.etag, "last_modified": last_ok.last_modified}
        )
        self.write.fetch(
            s,
            page_id,
            r,
            "not_modified",
            raw_hash=last_ok.raw_hash if last_ok else None,
            content_hash=last_ok.content_hash if last_ok else None,
            **keep,
        )
        q.mark_seen(s, page_id, r.fetched_at)
        return PageOutcome("not_modified", "not_modified")

    def _insert_new_page(
        self, s: Session, t: Target, content: Content, title: str | None, main_fp: str | None
    ) -> Page | None:
        """The row `get_or_create_page` + `_update_page` would leave, written by one INSERT instead of an
        INSERT in a SAVEPOINT and an UPDATE (a tenth of a new page's CPU went to that ORM round). Returns a
        transient `Page` carrying the row's values (read by the rows written next, never flushed), or None
        when another writer created the page meanwhile — then the caller takes the ORM path."""
        values: dict[str, Any] = dict(
            url=t.r.url,
            url_key=t.url_key,
            source=t.source,
            topics=list(t.topics),
            status="active",
            gone_count=0,
            first_seen=utcnow(),
            last_seen=t.r.fetched_at,
            extractor=content.extractor,
            main_fp=main_fp,
            title=title or None,
            canonical_url=None if content.is_json else content.meta.get("canonical_url") or None,
        )
        page_id = q.insert_page_if_absent(s, **values)
        return Page(id=page_id, **values) if page_id is not None else None

    def _update_page(
        self, s: Session, page: Page, r: FetchResult, content: Content, title: str | None, main_fp: str | None
    ) -> None:
        q.mark_seen(s, page.id, r.fetched_at)  # the one "seen" rule, shared with the unchanged paths
        page.extractor = page.extractor or content.extractor
        if main_fp is not None:
            page.main_fp = main_fp
        if title and page.title != title:
            page.title = title
        canonical = None if content.is_json else content.meta.get("canonical_url")
        if canonical and page.canonical_url != canonical:
            page.canonical_url = canonical

    def _failed(
        self, s: Session, page: Page, r: FetchResult, outcome: str | None = None, message: str | None = None
    ) -> PageOutcome:
        outcome = outcome or r.outcome
        self.write.failed_fetch(s, page.id, r, outcome, message)
        if outcome == "http_error" and r.status in GONE_STATUSES:
            page.gone_count = (page.gone_count or 0) + 1
            due = page.gone_count >= REMOVED_AFTER and page.status != "removed"
            last = q.last_version_hashes(s, page.id) if due else None  # only a page that had content
            if last is not None:
                page.status = "removed"
                decision = removed_decision(
                    url=page.url, title=page.title, status=r.status or 0, watch_topics=list(page.topics or [])
                )
                change_id = self.write.change(s, page, decision, last[0], None)
                return PageOutcome("removed", outcome, change_id, message)
            page.status = "gone" if page.status != "removed" else page.status
        return PageOutcome("failed", outcome, None, message or r.message)
