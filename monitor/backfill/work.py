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
from urllib.parse import urlsplit

import orjson

from policywatch.monitor.backfill.captures import Capture
from policywatch.monitor.config import Config
from policywatch.monitor.detection.detect import detect_html, detect_json
from policywatch.monitor.detection.extract import NoMainContent
from policywatch.monitor.detection.jsondiff import (
    MalformedJSON,
    parse_json,
    records_hash,
    records_text,
    to_records,
)
from policywatch.monitor.fetchresult import FetchResult
from policywatch.monitor.pagework import PageWork, _is_html, _is_json, read_html
from policywatch.monitor.urls import normalize_url
from policywatch.storage import blockpack, bodypack
from policywatch.storage import queries as q
from policywatch.storage.db import Database
from policywatch.storage.models import Change, Version
from policywatch.storage.types import PackedJSON

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


class ArchiveWork(PageWork):
    """Stores archive captures of the watched pages (and of the URLs given to `backfill --url`)."""

    def __init__(self, db: Database, config: Config):
        super().__init__(db, config, None, first_run=False)  # type: ignore[arg-type]

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
        with self.db.session() as s:
            return self._store(s, url, capture, body, content_type, encoding, archive_url)

    def _store(
        self,
        s,
        url: str,
        capture: Capture,
        body: bytes,
        content_type: str | None,
        encoding: str | None,
        archive_url: str,
    ) -> Stored:
        watch = self.config.watch_for(url)
        url_key = normalize_url(url)
        when = capture.when
        page = q.get_page(s, url_key)
        if page is not None and q.archive_capture_done(s, page.id, capture.key):
            return Stored("skipped")
        if page is None:
            page, _ = q.get_or_create_page(
                s,
                url,
                url_key,
                source="watch" if watch else "archive",
                topics=list(watch.topics) if watch else [],
            )
            page.first_seen = when
        elif page.first_seen is None or page.first_seen > when:
            page.first_seen = when
        r = FetchResult(
            url=url, status=200, body=body, encoding=encoding, content_type=content_type, fetched_at=when
        )
        mark = {"archive_capture": capture.key, "etag": None, "last_modified": None}

        def soft(reason: str) -> Stored:
            self._record_fetch(s, page.id, r, "soft_error", reason, **mark)
            return Stored("soft_error", message=reason)

        if ARCHIVE_PAGE.search(body[:20000]):
            return soft("the archive's own page, not a capture of the site")
        if b"\x00" in body[:4096]:  # compressed or binary bytes are never a page's text
            return soft("binary content (compressed, or not a page): not stored as the page")
        kind = watch.kind if watch else "auto"
        try:
            if _is_json(r, kind):
                doc = to_records(
                    parse_json(body), watch.json_records if watch else None, watch.json_id if watch else None
                )
                content_hash, title, blocks, text = records_hash(doc), page.title, doc, records_text(doc)
                meta = {"extractor": "json", "records": len(doc["records"])}
                extractor = "json"
            elif _is_html(r):
                ex, reason = read_html(self.config, body, url, encoding)
                if reason:
                    return soft(reason)
                content_hash, title, blocks, text, meta, extractor = ex.parts
            else:
                return soft(f"unsupported content type {content_type!r}: not HTML or JSON")
        except (MalformedJSON, NoMainContent) as exc:
            return soft(str(exc))

        raw_hash = hashlib.sha256(body).hexdigest()
        prev = q.last_version(s, page.id, before=when)
        if prev is not None and prev.content_hash == content_hash:
            self._record_fetch(s, page.id, r, "ok", raw_hash=raw_hash, content_hash=content_hash, **mark)
            return Stored("unchanged")
        newest = not q.newer_version_exists(s, page.id, when)
        decision = None
        if prev is not None:
            old = {"blocks": prev.blocks, "meta": prev.meta, "text": prev.text}
            if extractor != "json" and (
                (prev.meta or {}).get("rules", "") != meta.get("rules", "")
                or (prev.meta or {}).get("extraction") != meta.get("extraction")
            ):
                old = self._reextract(s, prev, r) or old
            common = dict(
                url=page.url,
                title=title or page.title or url,
                old=old,
                watch_topics=list(page.topics or []),
                topic_defs=self.config.topics,
                discovered=False,
                baseline=False,
            )
            decision = (
                detect_json(new_doc=blocks, **common)
                if extractor == "json"
                else detect_html(new_blocks=blocks, new_meta=meta, **common)
            )
        self._store_body(s, raw_hash, body, content_type, url, extractor)
        if newest:  # the page's newest content so far: it names the page
            page.extractor = extractor
            if title and extractor != "json":
                page.title = title
        fetch_id = self._record_fetch(
            s, page.id, r, "ok", raw_hash=raw_hash, content_hash=content_hash, content_changed=True, **mark
        )
        stored_blocks = blockpack.strip(blocks, text)
        if extractor != "json":
            stored_blocks = PackedJSON.pack(orjson.dumps(stored_blocks))
        version_id = q.insert_row(
            s,
            Version,
            page_id=page.id,
            fetch_id=fetch_id,
            captured_at=when,
            content_hash=content_hash,
            raw_hash=raw_hash,
            title=title or page.title,
            text=text,
            blocks=stored_blocks,
            meta={
                **meta,
                "content_type": content_type,
                "archive": {"timestamp": capture.timestamp, "url": archive_url, "digest": capture.digest},
            },
        )
        if prev is None:
            return Stored("first")
        if (
            decision is None
        ):  # other bytes, the same content as far as a reader can tell: a version, no change
            return Stored("stored")
        details = {
            **decision.details,
            "backfilled": True,
            "archive": {"timestamp": capture.timestamp, "url": archive_url},
        }
        change_id = q.insert_row(
            s,
            Change,
            page_id=page.id,
            run_id=None,
            detected_at=when,
            kind=decision.kind,
            significance=decision.significance,
            topics=decision.topics,
            details_released=decision.details_released,
            url=page.url,
            title=title or page.title,
            summary=decision.summary,
            from_version_id=prev.id,
            to_version_id=version_id,
            details=details,
        )
        return Stored("changed", change_id)

    def _store_body(
        self, s, raw_hash: str, body: bytes, content_type: str | None, url: str, extractor: str
    ) -> None:
        """The raw capture, packed against its host's template like a live page's body."""
        status = q.body_status(s, raw_hash)
        if status:
            return
        host = urlsplit(url).netloc.lower()
        known = self._dictionaries.get(host) or q.host_dictionary(s, host)
        dict_id, new_dict = None, None
        if known is not None:
            self._dictionaries[host] = known
            dict_id, zdict = known
        else:
            zdict = new_dict = bodypack.make_dictionary(body) if extractor == "gcweb" else None
        if new_dict is not None:
            dict_id = q.add_dictionary(s, host, new_dict)
        q.store_body(
            s,
            raw_hash,
            body,
            content_type,
            compressed=bodypack.pack(body, zdict),
            dict_id=dict_id,
            row_exists=status is not None,
        )
