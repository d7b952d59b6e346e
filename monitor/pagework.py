"""The per-page unit of work run by the crawl's item pipeline: classify, extract, hash, compare, store.

One transaction per page: the fetch record, a new version (only when the content changed) and the change are
committed together or not at all. Nothing but an `ok` fetch creates a version; a page is `removed` only after
a 404/410 on two consecutive passes; after any failed night the next good fetch is compared with the last good
version, so a maintenance night never shows up as a change.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any
from urllib.parse import urlsplit

import orjson

from policywatch.monitor.config import Config
from policywatch.monitor.detection.detect import ChangeDecision, detect_html, detect_json, removed_decision
from policywatch.monitor.detection.extract import Extraction, NoMainContent, extract_html
from policywatch.monitor.detection.jsondiff import (
    MalformedJSON,
    parse_json,
    records_hash,
    records_text,
    to_records,
)
from policywatch.monitor.detection.quality import soft_error_reason
from policywatch.monitor.fetchresult import FetchResult, PageOutcome
from policywatch.monitor.urls import normalize_url
from policywatch.storage import blockpack, bodypack
from policywatch.storage import queries as q
from policywatch.storage.db import Database, describe_exception, is_storage_error
from policywatch.storage.models import Change, Fetch, Page, Version
from policywatch.storage.types import PackedJSON, utcnow

log = logging.getLogger(__name__)
GONE_STATUSES = (404, 410)
REMOVED_AFTER = 2


def _is_json(result: FetchResult, kind: str) -> bool:
    if kind != "auto":
        return kind == "json"
    ct = (result.content_type or "").lower()
    return "json" in ct or result.url.split("?")[0].lower().endswith(".json")


def _is_html(result: FetchResult) -> bool:
    ct = (result.content_type or "").lower()
    return not ct or "html" in ct or "xml" in ct and "xhtml" in ct


#: Bump when extraction changes what it reads from <main>, so stored fingerprints stop matching.
EXTRACTION_VERSION = "1"
_TITLE = re.compile(rb"<title\b[^>]*>.*?</title\s*>", re.I | re.S)


def main_fingerprint(body: bytes, encoding: str | None, rules_digest: str) -> str | None:
    """A hash of the bytes extraction reads on a GCWeb page: <title> and <main>…</main>, with the charset, the
    noise rules and the extraction version. Equal fingerprints mean equal content, so a night where only the
    page furniture changed (rotated scripts, analytics, menus, "Date modified": the common case on canada.ca)
    is recognised without parsing. Why bytes and not a parse: it costs a regex search and a hash."""
    span = bodypack.main_span(body)
    if span is None:
        return None
    title = _TITLE.search(body, 0, span[0])
    h = hashlib.sha256()
    for part in (
        EXTRACTION_VERSION.encode(),
        (encoding or "").lower().encode(),
        rules_digest.encode(),
        title.group(0) if title else b"",
        body[span[0] : span[1]],
    ):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def read_html(
    config: Config, body: bytes, url: str, encoding: str | None, *, require_gcweb: bool = False
) -> tuple[Extraction, str | None]:
    """The page's content with the noise rules that apply to it (their digest in its meta), and why it is
    not the page when it is not (a soft error: maintenance, WAF, almost empty). Raises NoMainContent."""
    drops, ignores, rules_digest = config.rules_for(url)
    ex = extract_html(
        body, url, encoding=encoding, extra_noise=drops, ignore_patterns=ignores, require_gcweb=require_gcweb
    )
    ex.meta["rules"] = rules_digest
    headings = [b["text"] for b in ex.blocks if b["kind"] in ("h1", "h2")]
    return ex, soft_error_reason(ex.title, ex.text, headings)


class PageWork:
    """Processes FetchResults for one run against one database and config."""

    def __init__(self, db: Database, config: Config, run_id: int, *, first_run: bool):
        self.db = db
        self.config = config
        self.run_id = run_id
        self.first_run = first_run
        #: host → (id, data) of its body dictionary: written once, never changed, so looked up once per run
        self._dictionaries: dict[str, tuple[int, bytes]] = {}

    def process(self, result: FetchResult) -> PageOutcome:
        """One page in one transaction. A page that cannot be read (a parse, extraction or comparison error:
        JSON nested too deep, markup no parser survives) is that page's failed fetch, recorded with its error,
        and the pass goes on; only a storage error, which every later page would meet too, is raised."""
        try:
            with self.db.session() as s:
                return self._process(s, result)
        except Exception as exc:
            if is_storage_error(exc):
                raise
            reason = f"could not be read: {describe_exception(exc)}"
            log.warning("%s %s", result.url, reason, exc_info=True)
        with self.db.session() as s:
            return self._unreadable(s, result, reason)

    def _unreadable(self, s, r: FetchResult, reason: str) -> PageOutcome:
        watch = r.watch or self.config.watch_for(r.url)
        page, _ = q.get_or_create_page(
            s,
            r.url,
            normalize_url(r.url),
            source="watch" if watch else r.source,
            topics=list(watch.topics) if watch else [],
        )
        self._record_fetch_failed(s, page, r, "unreadable", reason)
        return PageOutcome("failed", "unreadable", None, reason)

    def _record_fetch(
        self, s, page_id: int, r: FetchResult, outcome: str, message: str | None = None, **extra: Any
    ) -> int:
        """Insert the fetch row (Core: one per page per night, the hottest write) and return its id."""
        values: dict[str, Any] = dict(
            run_id=self.run_id,
            page_id=page_id,
            fetched_at=r.fetched_at,
            http_status=r.status,
            outcome=outcome,
            message=message if message is not None else r.message,
            attempts=r.attempts,
            etag=r.etag,
            last_modified=r.last_modified,
            bytes=len(r.body) if r.body is not None else None,
            duration_ms=r.duration_ms,
        )
        values.update(extra)
        return q.insert_row(s, Fetch, **values)

    def _add_change(
        self, s, page: Page, decision: ChangeDecision, from_id: int | None, to_id: int | None
    ) -> int:
        return q.insert_row(
            s,
            Change,
            page_id=page.id,
            run_id=self.run_id,
            detected_at=utcnow(),
            kind=decision.kind,
            significance=decision.significance,
            topics=decision.topics,
            details_released=decision.details_released,
            url=page.url,
            title=page.title,
            summary=decision.summary,
            from_version_id=from_id,
            to_version_id=to_id,
            details=decision.details,
        )

    def _process(self, s, r: FetchResult) -> PageOutcome:
        """Reads first, then the CPU work (hash, parse, compress, diff), then every write at the end: the
        write transaction (on SQLite, the database-wide write lock) is held for milliseconds, not for a parse,
        so readers and another machine's pass do not queue behind it."""
        watch = r.watch or self.config.watch_for(r.url)
        source = "watch" if watch else r.source
        url_key = normalize_url(r.url)
        row = q.page_row(s, url_key)  # Core: the unchanged paths below never need the ORM object
        topics = list(watch.topics) if watch else list(row.topics or []) if row is not None else []
        settled = row is not None and not (
            watch and (row.source != "watch" or list(row.topics or []) != topics)
        )
        page: Page | None = None

        def ensure_page() -> Page:
            nonlocal page
            if page is None and row is not None:
                page = s.get(Page, row.id)
            if page is None:  # (another worker may have created it meanwhile: then this finds that row)
                page, _ = q.get_or_create_page(
                    s, r.url, url_key, source=source, topics=topics, looked_up=True
                )
            if watch and (page.source != "watch" or list(page.topics or []) != topics):
                page.source, page.topics = "watch", topics
            return page

        def page_id() -> int:
            return row.id if settled else ensure_page().id

        if r.outcome == "not_modified":
            return self._not_modified(s, page_id(), r)
        if r.outcome != "ok":
            return self._failed(s, ensure_page(), r)

        body = r.body or b""
        raw_hash = hashlib.sha256(body).hexdigest()
        prev_h = (
            q.last_version_hashes(s, row.id, before=q.not_after(r.fetched_at)) if row is not None else None
        )
        if (
            prev_h is not None and prev_h[1] == raw_hash
        ):  # byte-identical: no parse, no diff, no version loaded
            return self._unchanged(s, page_id(), r, raw_hash, prev_h[2])

        kind = watch.kind if watch else "auto"
        gcweb_before = row is not None and row.extractor == "gcweb"
        fp = None
        if gcweb_before and prev_h is not None and _is_html(r) and kind != "json":
            fp = main_fingerprint(body, r.encoding, self.config.rules_for(r.url)[2])
            if fp is not None and fp == row.main_fp:  # noise outside <main> only: the content cannot differ
                return self._unchanged(s, page_id(), r, raw_hash, prev_h[2])
        if row is not None:  # the slower paths read and write the page through the ORM
            page = s.get(Page, row.id)
        try:
            if _is_json(r, kind):
                doc = to_records(
                    parse_json(body), watch.json_records if watch else None, watch.json_id if watch else None
                )
                content_hash, title = (
                    records_hash(doc),
                    (page.title if page is not None else None) or r.url.rsplit("/", 1)[-1],
                )
                blocks, text, meta, extractor = (
                    doc,
                    records_text(doc),
                    {"extractor": "json", "records": len(doc["records"])},
                    "json",
                )
            elif _is_html(r):
                ex, reason = read_html(self.config, body, r.url, r.encoding, require_gcweb=gcweb_before)
                if reason:
                    return self._failed(s, ensure_page(), r, "soft_error", reason)
                content_hash, title, blocks, text, meta, extractor = ex.parts
            else:
                return self._failed(
                    s,
                    ensure_page(),
                    r,
                    "soft_error",
                    f"unsupported content type {r.content_type!r}: not HTML or JSON",
                )
        except MalformedJSON as exc:
            return self._failed(s, ensure_page(), r, "soft_error", str(exc))
        except NoMainContent as exc:
            return self._failed(s, ensure_page(), r, "soft_error", f"{exc} (selector drift or an error page)")

        old_title = page.title if page is not None else None
        new_title = old_title if extractor == "json" and old_title else (title or old_title)
        main_fp = (
            (fp or main_fingerprint(body, r.encoding, meta.get("rules", "")))
            if extractor == "gcweb"
            else None
        )
        if prev_h is not None and prev_h[2] == content_hash:  # noise only: keep just the hashes
            page = ensure_page()
            self._update_page(s, page, r, extractor, new_title, meta, main_fp)
            self._record_fetch(s, page.id, r, "ok", raw_hash=raw_hash, content_hash=content_hash)
            return PageOutcome("unchanged", "ok")

        # The content changed (or the page is new): read what the comparison needs, compare, then write.
        prev = q.last_version(s, page.id, before=q.not_after(r.fetched_at)) if prev_h is not None else None
        old = {"blocks": prev.blocks, "meta": prev.meta, "text": prev.text} if prev is not None else None
        if (
            old is not None
            and extractor != "json"
            and (
                (prev.meta or {}).get("rules", "") != meta.get("rules", "")
                or (prev.meta or {}).get("extraction") != meta.get("extraction")
            )
        ):
            # noise rules or the generic extractor changed: compare like with like
            old = self._reextract(s, prev, r) or old
        page_source = "watch" if watch else page.source if page is not None else source
        common = dict(
            url=page.url if page is not None else r.url,
            title=new_title or r.url,
            old=old,
            watch_topics=topics,
            topic_defs=self.config.topics,
            discovered=page_source == "discovered",
            baseline=page_source == "watch" or self.first_run,
        )
        decision = (
            detect_json(new_doc=blocks, **common)
            if extractor == "json"
            else detect_html(new_blocks=blocks, new_meta=meta, **common)
        )
        body_blob, dict_id, new_dict, host = None, None, None, urlsplit(r.url).netloc.lower()
        # A new page's body is new but for rare cases (the same bytes at another URL, a pruned row):
        # store_body's INSERT finds those, so only a known page's body is looked up first.
        body_row = q.body_status(s, raw_hash) if row is not None else None
        if not body_row:  # pack the raw body against its host's page template (storage.bodypack)
            known = self._dictionaries.get(host) or q.host_dictionary(s, host)
            if known is not None:
                self._dictionaries[host] = known
                dict_id, zdict = known
            else:
                zdict = new_dict = bodypack.make_dictionary(body) if extractor == "gcweb" else None
            body_blob = bodypack.pack(body, zdict)
        stored_blocks = blockpack.strip(blocks, text)  # the text lives in versions.text once
        if extractor != "json":  # serialize and compress now, not under the write lock
            stored_blocks = PackedJSON.pack(orjson.dumps(stored_blocks))

        # Writes from here on. A page seen for the first time is inserted with all it learned in one
        # statement.
        new_page = (
            self._insert_new_page(s, r, url_key, source, topics, extractor, new_title, meta, main_fp)
            if row is None and page is None
            else None
        )
        if new_page is not None:
            page = new_page
        else:
            page = ensure_page()
            self._update_page(s, page, r, extractor, new_title, meta, main_fp)
        if new_dict is not None:  # the host's first stored page: its template becomes the dictionary
            dict_id = q.add_dictionary(s, host, new_dict)
        if body_blob is not None:
            q.store_body(
                s,
                raw_hash,
                body,
                r.content_type,
                compressed=body_blob,
                dict_id=dict_id,
                row_exists=body_row is not None,
            )
        fetch_id = self._record_fetch(
            s, page.id, r, "ok", raw_hash=raw_hash, content_hash=content_hash, content_changed=True
        )
        version_id = q.insert_row(
            s,
            Version,
            page_id=page.id,
            fetch_id=fetch_id,
            captured_at=r.fetched_at,
            content_hash=content_hash,
            raw_hash=raw_hash,
            title=page.title,
            text=text,
            blocks=stored_blocks,
            meta={**meta, "content_type": r.content_type},
        )
        if decision is None:
            return PageOutcome("unchanged", "ok")
        change_id = self._add_change(s, page, decision, prev.id if prev is not None else None, version_id)
        return PageOutcome("new" if decision.kind == "new_page" else "changed", "ok", change_id)

    def _unchanged(self, s, page_id: int, r: FetchResult, raw_hash: str, content_hash: str) -> PageOutcome:
        self._record_fetch(s, page_id, r, "ok", raw_hash=raw_hash, content_hash=content_hash)
        q.mark_seen(s, page_id, r.fetched_at)
        return PageOutcome("unchanged", "ok")

    def _not_modified(self, s, page_id: int, r: FetchResult) -> PageOutcome:
        """A 304: the fetch carries the last good fetch's hashes (and validators, unless the 304 sent new
        ones)."""
        last_ok = q.last_ok_fetch_hashes(s, page_id)
        keep = (
            {}
            if r.etag or last_ok is None
            else {"etag": last_ok.etag, "last_modified": last_ok.last_modified}
        )
        self._record_fetch(
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
        self,
        s,
        r: FetchResult,
        url_key: str,
        source: str,
        topics: list[str],
        extractor: str,
        title: str | None,
        meta: dict[str, Any],
        main_fp: str | None,
    ) -> Page | None:
        """The row `get_or_create_page` + `_update_page` would leave, written by one INSERT instead of an
        INSERT in a SAVEPOINT and an UPDATE (a tenth of a new page's CPU went to that ORM round). Returns a
        transient `Page` carrying the row's values (read by the rows written next, never flushed), or None
        when another writer created the page meanwhile — then the caller takes the ORM path."""
        values: dict[str, Any] = dict(
            url=r.url,
            url_key=url_key,
            source=source,
            topics=list(topics),
            status="active",
            gone_count=0,
            first_seen=utcnow(),
            last_seen=r.fetched_at,
            extractor=extractor,
            main_fp=main_fp,
            title=title or None,
            canonical_url=meta.get("canonical_url") or None if extractor != "json" else None,
        )
        page_id = q.insert_page_if_absent(s, **values)
        return Page(id=page_id, **values) if page_id is not None else None

    def _update_page(
        self,
        s,
        page: Page,
        r: FetchResult,
        extractor: str,
        title: str | None,
        meta: dict[str, Any],
        main_fp: str | None,
    ) -> None:
        q.mark_seen(s, page.id, r.fetched_at)  # the one "seen" rule, shared with the unchanged paths
        page.extractor = page.extractor or extractor
        if main_fp is not None:
            page.main_fp = main_fp
        if title and page.title != title:
            page.title = title
        if extractor != "json" and meta.get("canonical_url") and page.canonical_url != meta["canonical_url"]:
            page.canonical_url = meta["canonical_url"]

    def _reextract(self, s, prev: Version, r: FetchResult) -> dict[str, Any] | None:
        """The previous version extracted again with today's rules, from its stored raw body (if kept)."""
        raw = q.body_bytes(s, prev.raw_hash) if prev.raw_hash else None
        if raw is None:
            return None
        drops, ignores, _ = self.config.rules_for(r.url)
        try:
            ex = extract_html(raw, r.url, extra_noise=drops, ignore_patterns=ignores)
        except NoMainContent:
            return None
        return {"blocks": ex.blocks, "meta": prev.meta, "text": ex.text}

    def _failed(
        self, s, page: Page, r: FetchResult, outcome: str | None = None, message: str | None = None
    ) -> PageOutcome:
        outcome = outcome or r.outcome
        self._record_fetch_failed(s, page, r, outcome, message)
        if outcome == "http_error" and r.status in GONE_STATUSES:
            page.gone_count = (page.gone_count or 0) + 1
            due = page.gone_count >= REMOVED_AFTER and page.status != "removed"
            last = (
                q.last_version_hashes(s, page.id) if due else None
            )  # only a page that had content is "removed"
            if last is not None:
                page.status = "removed"
                decision = removed_decision(
                    url=page.url, title=page.title, status=r.status, watch_topics=list(page.topics or [])
                )
                change_id = self._add_change(s, page, decision, last[0], None)
                return PageOutcome("removed", outcome, change_id, message)
            page.status = "gone" if page.status != "removed" else page.status
        return PageOutcome("failed", outcome, None, message or r.message)

    def _record_fetch_failed(self, s, page: Page, r: FetchResult, outcome: str, message: str | None) -> int:
        # Validators of a failed response must not be reused for conditional GETs.
        return self._record_fetch(
            s,
            page.id,
            r,
            outcome,
            message,
            etag=None,
            last_modified=None,
            raw_hash=hashlib.sha256(r.body).hexdigest() if r.body else None,
        )
