"""Step three: the rows one page leaves — its fetch, its raw body (packed against its host's template), a
version when the content changed, and the change. The CPU part of a write (packing the body, serializing the
blocks) is `prepare`d before the first statement, so the write transaction (on SQLite, the database-wide write
lock) is held for milliseconds, not for a compression."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy.orm import Session

from policywatch.monitor.detection.detect import ChangeDecision
from policywatch.monitor.fetchresult import FetchResult
from policywatch.monitor.page.content import Content
from policywatch.storage import blockpack, bodypack
from policywatch.storage import queries as q
from policywatch.storage.models import Change, Fetch, Page, Version
from policywatch.storage.types import PackedJSON, utcnow


@dataclass(slots=True)
class Prepared:
    """A version's bytes, ready to write: the packed raw body (None when the bodies table has it) and the
    stored blocks."""

    raw_hash: str
    body: bytes
    packed: bytes | None
    dict_id: int | None
    new_dict: bytes | None
    host: str
    body_row: bool | None
    blocks: Any


class Writer:
    """Writes one run's pages (`run_id` None: the backfill's, which belong to no pass). Keeps each host's body
    dictionary once looked up: written once, never changed."""

    def __init__(self, run_id: int | None):
        self.run_id = run_id
        self._dictionaries: dict[str, tuple[int, bytes]] = {}

    def fetch(
        self, s: Session, page_id: int, r: FetchResult, outcome: str, message: str | None = None, **extra: Any
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

    def failed_fetch(
        self, s: Session, page_id: int, r: FetchResult, outcome: str, message: str | None, **extra: Any
    ) -> int:
        """A fetch that stored nothing. Validators of a failed response must not be reused for conditional
        GETs."""
        raw_hash = hashlib.sha256(r.body).hexdigest() if r.body else None
        values = {"etag": None, "last_modified": None, "raw_hash": raw_hash, **extra}
        return self.fetch(s, page_id, r, outcome, message, **values)

    def prepare(
        self, s: Session, url: str, body: bytes, raw_hash: str, content: Content, *, known_page: bool
    ) -> Prepared:
        """Reads and CPU before the writes. A new page's body is new but for rare cases (the same bytes at
        another URL, a pruned row): `store_body`'s INSERT finds those, so only a known page's body is looked
        up first."""
        host = urlsplit(url).netloc.lower()
        body_row = q.body_status(s, raw_hash) if known_page else None
        packed, dict_id, new_dict = None, None, None
        zdict: bytes | None
        if not body_row:
            known = self._dictionaries.get(host) or q.host_dictionary(s, host)
            if known is not None:
                self._dictionaries[host] = known
                dict_id, zdict = known
            else:  # the host's first stored page: its template becomes the dictionary
                zdict = new_dict = bodypack.make_dictionary(body) if content.extractor == "gcweb" else None
            packed = bodypack.pack(body, zdict)
        blocks = blockpack.strip(content.blocks, content.text)  # the text lives in versions.text once
        if not content.is_json:
            blocks = PackedJSON.pack(orjson.dumps(blocks))
        return Prepared(raw_hash, body, packed, dict_id, new_dict, host, body_row, blocks)

    def body(self, s: Session, p: Prepared, content_type: str | None) -> None:
        if p.new_dict is not None:
            p.dict_id = q.add_dictionary(s, p.host, p.new_dict)
        if p.packed is not None:
            q.store_body(
                s,
                p.raw_hash,
                p.body,
                content_type,
                compressed=p.packed,
                dict_id=p.dict_id,
                row_exists=p.body_row is not None,
            )

    def version(
        self,
        s: Session,
        page_id: int,
        fetch_id: int,
        when: datetime,
        content: Content,
        p: Prepared,
        title: str | None,
        meta: dict[str, Any],
    ) -> int:
        return q.insert_row(
            s,
            Version,
            page_id=page_id,
            fetch_id=fetch_id,
            captured_at=when,
            content_hash=content.content_hash,
            raw_hash=p.raw_hash,
            title=title,
            text=content.text,
            blocks=p.blocks,
            meta={**content.meta, **meta},
        )

    def change(
        self,
        s: Session,
        page: Page,
        decision: ChangeDecision,
        from_id: int | None,
        to_id: int | None,
        *,
        detected_at: datetime | None = None,
        title: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        return q.insert_row(
            s,
            Change,
            page_id=page.id,
            run_id=self.run_id,
            detected_at=detected_at or utcnow(),
            kind=decision.kind,
            significance=decision.significance,
            topics=decision.topics,
            details_released=decision.details_released,
            url=page.url,
            title=title or page.title,
            summary=decision.summary,
            from_version_id=from_id,
            to_version_id=to_id,
            details={**decision.details, **(details or {})},
        )
