"""Queries and writes on the history database, shared by the pipeline, the pass, the CLI and the reports.

All functions take an open Session; the caller owns the transaction (one per page in the pipeline).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from policywatch.storage import bodypack
from policywatch.storage.models import Base, Body, BodyDict, Change, Fetch, Page, Run, Version
from policywatch.storage.types import utcnow


# --- runs -----------------------------------------------------------------------------------------------
def open_run(s: Session, config_digest: str | None = None, scope: str = "nightly") -> Run:
    run = Run(
        started_at=utcnow(),
        status="running",
        config_digest=config_digest,
        scope=scope,
        pages_fetched=0,
        pages_new=0,
        pages_changed=0,
        pages_unchanged=0,
        pages_failed=0,
    )
    s.add(run)
    s.flush()
    return run


def run_counts(s: Session, run_id: int) -> dict[str, Any]:
    """Counts of a run, computed from its fetches and changes (the single source of truth)."""
    rows = dict(
        s.execute(
            select(Fetch.outcome, func.count()).where(Fetch.run_id == run_id).group_by(Fetch.outcome)
        ).all()
    )
    changes = dict(
        s.execute(
            select(Change.kind, func.count()).where(Change.run_id == run_id).group_by(Change.kind)
        ).all()
    )
    fetched = sum(rows.values())
    failed = sum(n for outcome, n in rows.items() if outcome not in ("ok", "not_modified"))
    changed = changes.get("changed", 0)
    new = changes.get("new_page", 0)
    return {
        "fetched": fetched,
        "new": new,
        "changed": changed,
        "removed": changes.get("removed", 0),
        "failed": failed,
        "unchanged": max(0, fetched - failed - changed - new),
        "outcomes": rows,
    }


def run_fetch_count(s: Session, run_id: int) -> int:
    """Fetch rows of a run so far: the pass's progress."""
    return s.scalar(select(func.count()).select_from(Fetch).where(Fetch.run_id == run_id)) or 0


def finish_run(
    s: Session, run_id: int, status: str, message: str | None = None, health: dict[str, Any] | None = None
) -> Run:
    run = s.get(Run, run_id)
    assert run is not None
    c = run_counts(s, run_id)
    run.finished_at = utcnow()
    run.status = status
    run.message = message
    run.pages_fetched, run.pages_new, run.pages_changed = c["fetched"], c["new"], c["changed"]
    run.pages_unchanged, run.pages_failed = c["unchanged"], c["failed"]
    run.health = health
    return run


def fail_abandoned_runs(s: Session) -> list[int]:
    """Mark runs left "running" by a pass that died as failed (call only while holding the pass lock)."""
    ids = list(s.scalars(select(Run.id).where(Run.status == "running")))
    for rid in ids:
        finish_run(s, rid, "failed", "interrupted: the pass process ended before finishing this run")
    return ids


def has_completed_run(s: Session) -> bool:
    return (s.scalar(select(func.count()).select_from(Run).where(Run.status == "completed")) or 0) > 0


# --- pages ----------------------------------------------------------------------------------------------
# The page work's per-page statements, built once: building a select() costs more CPU than SQLite answering
# it, and an unchanged night runs them for every page. (SQLAlchemy caches the compiled SQL either way.)
# (declarative tables are Table objects; the ORM types __table__ as the wider FromClause)
_PAGES, _FETCHES, _VERSIONS, _BODIES = (
    cast(Table, Page.__table__),
    cast(Table, Fetch.__table__),
    cast(Table, Version.__table__),
    cast(Table, Body.__table__),
)
_PAGE_BY_KEY = select(_PAGES).where(_PAGES.c.url_key == bindparam("key"))
# A page's last version is the last *captured* (a backfill inserts older captures after live ones; the
# (page_id, captured_at) index answers this as cheaply as the id did). Its last fetches, for validators and
# 304s, are its live ones: an archive capture has no validators of the live site.
_LAST_VERSION_HASHES = (
    select(_VERSIONS.c.id, _VERSIONS.c.raw_hash, _VERSIONS.c.content_hash)
    .where(_VERSIONS.c.page_id == bindparam("pid"))
    .order_by(_VERSIONS.c.captured_at.desc(), _VERSIONS.c.id.desc())
    .limit(1)
)
_LAST_VERSION_HASHES_BEFORE = (
    select(_VERSIONS.c.id, _VERSIONS.c.raw_hash, _VERSIONS.c.content_hash)
    .where(
        _VERSIONS.c.page_id == bindparam("pid"),
        _VERSIONS.c.captured_at < bindparam("before", type_=_VERSIONS.c.captured_at.type),
    )
    .order_by(_VERSIONS.c.captured_at.desc(), _VERSIONS.c.id.desc())
    .limit(1)
)
_LAST_OK_FETCH = (
    select(_FETCHES.c.raw_hash, _FETCHES.c.content_hash, _FETCHES.c.etag, _FETCHES.c.last_modified)
    .where(
        _FETCHES.c.page_id == bindparam("pid"),
        _FETCHES.c.outcome == "ok",
        _FETCHES.c.archive_capture.is_(None),
    )
    .order_by(_FETCHES.c.id.desc())
    .limit(1)
)
_BODY_STORED = select(_BODIES.c.data.is_not(None)).where(_BODIES.c.sha256 == bindparam("sha"))
_MARK_SEEN = (
    update(_PAGES)
    .where(_PAGES.c.id == bindparam("pid"))
    .values(last_seen=bindparam("seen", type_=_PAGES.c.last_seen.type), gone_count=0, status="active")
)


def get_page(s: Session, url_key: str) -> Page | None:
    return s.scalar(select(Page).where(Page.url_key == url_key))


def page_row(s: Session, url_key: str) -> Any:
    """The page's row (Core, read-only: no ORM object), or None."""
    return s.execute(_PAGE_BY_KEY, {"key": url_key}).first()


_SET_TWINS = update(_PAGES).where(_PAGES.c.url_key == bindparam("key"))


def set_twins(s: Session, url_key: str, twins: dict[str, str]) -> None:
    """The page's versions in the other languages as the crawl last read them ([parity])."""
    s.execute(_SET_TWINS.values(twins=twins), {"key": url_key})


def mark_seen(s: Session, page_id: int, seen: datetime) -> None:
    """The page answered (200 or 304): seen now, not gone, active."""
    s.execute(_MARK_SEEN, {"pid": page_id, "seen": seen})


def get_or_create_page(
    s: Session, url: str, url_key: str, *, source: str, topics: Sequence[str], looked_up: bool = False
) -> tuple[Page, bool]:
    """`looked_up`: the caller found no page with this key in this transaction already (skip the lookup; a
    page another worker creates meanwhile is still caught by the unique key)."""
    page = None if looked_up else get_page(s, url_key)
    if page is not None:
        if source == "watch" and (page.source != "watch" or list(page.topics) != list(topics)):
            page.source, page.topics = "watch", list(topics)
        return page, False
    page = Page(
        url=url,
        url_key=url_key,
        source=source,
        topics=list(topics),
        status="active",
        gone_count=0,
        first_seen=utcnow(),
    )
    try:
        with s.begin_nested():
            s.add(page)
            s.flush()
    except IntegrityError:  # another worker created it in the meantime
        page = get_page(s, url_key)
        assert page is not None
        return page, False
    return page, True


def insert_page_if_absent(s: Session, **values: Any) -> int | None:
    """Insert a page in one statement (INSERT … ON CONFLICT DO NOTHING RETURNING id): its id, or None when a
    page with this url_key exists (another writer — a pass on another machine — created it meanwhile)."""
    return s.execute(_insert_if_absent(s, _PAGES, _PAGES.c.id), values).scalar()


def known_discovered_pages(s: Session, limit: int) -> list[Page]:
    return list(
        s.scalars(
            select(Page)
            .where(Page.source == "discovered", Page.status != "removed")
            .order_by(Page.id)
            .limit(limit)
        )
    )


# --- fetches, bodies, versions --------------------------------------------------------------------------
def last_ok_fetch_hashes(s: Session, page_id: int) -> Any:
    """(raw_hash, content_hash, etag, last_modified) of a page's last `ok` fetch, or None: what a 304 night
    needs, without loading the whole row."""
    return s.execute(_LAST_OK_FETCH, {"pid": page_id}).first()


def validators(s: Session, url_keys: Sequence[str] | None = None) -> dict[str, tuple[str | None, str | None]]:
    """url_key → (ETag, Last-Modified) of each page's last good fetch, for the pages with these keys (all when
    None).

    Why by keys: the crawl asks for each few hundred watches as it requests them, so it never holds a
    validator per page of the whole history (it would grow with the history), and each ask reads only
    those pages' last fetches through the (page_id, id) index instead of grouping the whole fetch table."""
    last = (
        select(Fetch.id)
        .where(
            Fetch.page_id == Page.id,
            Fetch.outcome.in_(("ok", "not_modified")),
            Fetch.archive_capture.is_(None),
        )
        .order_by(Fetch.id.desc())
        .limit(1)
        .correlate(Page)
        .scalar_subquery()
    )
    query = select(Page.url_key, Fetch.etag, Fetch.last_modified).join(Fetch, Fetch.id == last)
    if url_keys is not None:
        if not url_keys:
            return {}
        query = query.where(Page.url_key.in_(list(url_keys)))
    return {k: (e, lm) for k, e, lm in s.execute(query) if e or lm}


def body_status(s: Session, sha256: str) -> bool | None:
    """True: these raw bytes are stored; False: their row exists but the data was pruned; None: no row."""
    row = s.execute(_BODY_STORED, {"sha": sha256}).first()
    return None if row is None else bool(row[0])


def store_body(
    s: Session,
    sha256: str,
    data: bytes,
    content_type: str | None,
    *,
    compressed: bytes | None = None,
    dict_id: int | None = None,
    row_exists: bool | None = None,
) -> None:
    """Store a raw body once; identical bytes are never stored twice. `compressed`: `data` packed already
    (storage.bodypack, against dictionary `dict_id` if given) before the write transaction began, so the lock
    is not held for it. `row_exists=False`: the body is most likely new (`body_status` said so, or the page is
    new): one INSERT, and only if the row turns out to exist (another worker stored the same bytes, or a
    pruned row) the lookup below."""
    if compressed is None:
        compressed, dict_id = bodypack.pack(data), None
    if row_exists is False:
        inserted = s.execute(
            _insert_if_absent(s, _BODIES, _BODIES.c.sha256),
            dict(
                sha256=sha256,
                size=len(data),
                content_type=content_type,
                data=compressed,
                dict_id=dict_id,
                created_at=utcnow(),
            ),
        ).scalar()
        if inserted is not None:
            return
    existing = s.get(Body, sha256)
    if existing is not None:
        if existing.data is None:  # pruned earlier, needed again
            existing.data, existing.dict_id = compressed, dict_id
        return
    try:
        with s.begin_nested():
            s.add(
                Body(
                    sha256=sha256,
                    size=len(data),
                    content_type=content_type,
                    data=compressed,
                    dict_id=dict_id,
                    created_at=utcnow(),
                )
            )
            s.flush()
    except IntegrityError:
        pass


# Dictionaries are written once and never change: cache them per database (only rows read back, i.e.
# committed).
_DICT_CACHE: dict[tuple[str, int], bytes] = {}


def body_dictionary(s: Session, dict_id: int) -> bytes:
    key = (str(s.get_bind().engine.url), dict_id)
    if key not in _DICT_CACHE:
        data = s.scalar(select(BodyDict.data).where(BodyDict.id == dict_id))
        if data is None:
            raise LookupError(f"body dictionary {dict_id} is missing: the database is damaged")
        _DICT_CACHE[key] = data
    return _DICT_CACHE[key]


def host_dictionary(s: Session, host: str) -> tuple[int, bytes] | None:
    """(id, data) of the dictionary bodies from `host` are compressed with, or None before the first one."""
    dict_id = s.scalar(select(BodyDict.id).where(BodyDict.host == host).order_by(BodyDict.id).limit(1))
    return (dict_id, body_dictionary(s, dict_id)) if dict_id is not None else None


def add_dictionary(s: Session, host: str, data: bytes) -> int:
    return add(s, BodyDict(host=host, data=data, created_at=utcnow())).id


def unpack_body(s: Session, data: bytes, dict_id: int | None) -> bytes:
    return bodypack.unpack(data, body_dictionary(s, dict_id) if dict_id is not None else None)


def body_bytes(s: Session, sha256: str) -> bytes | None:
    b = s.get(Body, sha256)
    return unpack_body(s, b.data, b.dict_id) if b is not None and b.data is not None else None


#: How far past a live fetch a stored version may be dated and still be "the last version" (clocks of two
#: machines differ by seconds, not a day). Later ones (a bad archive row dated 2999) are never compared with.
FUTURE_SLACK = timedelta(days=1)


def not_after(when: datetime) -> datetime:
    """The bound for `last_version(…, before=)` in a live fetch: a version dated in the future is skipped."""
    return when + FUTURE_SLACK


def last_version_hashes(
    s: Session, page_id: int, before: datetime | None = None
) -> tuple[int, str | None, str] | None:
    """(id, raw_hash, content_hash) of a page's last version, without loading its text and blocks
    (`before`: the last one captured strictly before that time)."""
    if before is None:
        row = s.execute(_LAST_VERSION_HASHES, {"pid": page_id}).first()
    else:
        row = s.execute(_LAST_VERSION_HASHES_BEFORE, {"pid": page_id, "before": before}).first()
    return (row[0], row[1], row[2]) if row else None


def last_version(s: Session, page_id: int, before: datetime | None = None) -> Version | None:
    """The page's last captured version (`before`: the last one captured strictly before that time)."""
    query = select(Version).where(Version.page_id == page_id)
    if before is not None:
        query = query.where(Version.captured_at < before)
    return s.scalar(query.order_by(Version.captured_at.desc(), Version.id.desc()).limit(1))


def archive_capture_done(s: Session, page_id: int, capture: str) -> bool:
    """Has this archive capture ("<timestamp> <digest>") of the page been read already (`backfill`)?"""
    return (
        s.scalar(select(Fetch.id).where(Fetch.page_id == page_id, Fetch.archive_capture == capture).limit(1))
        is not None
    )


def newer_version_exists(s: Session, page_id: int, when: datetime) -> bool:
    return (
        s.scalar(select(Version.id).where(Version.page_id == page_id, Version.captured_at > when).limit(1))
        is not None
    )


def add(s: Session, obj: Any) -> Any:
    s.add(obj)
    s.flush()
    return obj


_INSERTS: dict[type, Any] = {}  # one INSERT construct per model, built once (see insert_row)


def insert_row(s: Session, model: type[Base], **values: Any) -> int:
    """Insert one row of `model` through Core and return its id.

    Why not `add`: the page work writes a fetch on every page, every night, and a version and a change on
    every new or edited one; the ORM's unit of work (identity map, flush bookkeeping) cost more CPU than the
    SQL itself. Column defaults and types (UTC datetimes, compressed JSON) apply as they do through the ORM.
    """
    stmt = _INSERTS.get(model)
    if stmt is None:
        stmt = _INSERTS[model] = insert(cast(Table, model.__table__))
    result = cast(CursorResult[Any], s.execute(stmt, values))  # an INSERT's result is a cursor result
    pk = result.inserted_primary_key
    assert pk is not None  # every table has an integer primary key
    return int(pk[0])


_IF_ABSENT: dict[tuple[str, str, str], Any] = {}


def _insert_if_absent(s: Session, table: Any, returning: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING `returning` in the session's dialect (no SAVEPOINT round
    trips; the RETURNING row is absent when the row existed). Built once per dialect and table: new pages use
    it twice."""
    dialect = s.get_bind().dialect.name
    key = (dialect, table.name, returning.name)
    stmt = _IF_ABSENT.get(key)
    if stmt is None:
        from sqlalchemy.dialects import postgresql, sqlite

        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = _IF_ABSENT[key] = dialect_insert(table).on_conflict_do_nothing().returning(returning)
    return stmt


# --- changes and history --------------------------------------------------------------------------------
def iter_changes(
    s: Session,
    *,
    since: datetime | None = None,
    topic: str | None = None,
    until_id: int | None = None,
    after_id: int | None = None,
) -> Iterator[Change]:
    """Changes in detection order (id ascending); topic filtering happens on the JSON list in Python."""
    q = select(Change).order_by(Change.id)
    if since is not None:
        q = q.where(Change.detected_at >= since)
    if after_id is not None:
        q = q.where(Change.id > after_id)
    if until_id is not None:
        q = q.where(Change.id <= until_id)
    for change in s.scalars(q.execution_options(yield_per=500)):
        if topic is None or topic in (change.topics or []):
            yield change


def versions_of(s: Session, page_id: int) -> list[Version]:
    """In capture order (a backfill stores old captures after live ones)."""
    return list(
        s.scalars(select(Version).where(Version.page_id == page_id).order_by(Version.captured_at, Version.id))
    )


def version_at(s: Session, page_id: int, when: datetime) -> Version | None:
    return s.scalar(
        select(Version)
        .where(Version.page_id == page_id, Version.captured_at <= when)
        .order_by(Version.captured_at.desc(), Version.id.desc())
        .limit(1)
    )
