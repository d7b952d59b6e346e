"""The history database on SQLite and PostgreSQL: migrations, views, safety, and what analysts can query."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from policywatch.monitor.config import parse_config
from policywatch.monitor.pagework import FetchResult, PageWork
from policywatch.storage import StorageError, open_database
from policywatch.storage import queries as q
from policywatch.storage.db import head_revision
from policywatch.storage.models import Change, Fetch, Page, Version

GCWEB = """<html><head><title>{t}</title></head><body><main property="mainContentOfPage"><h1>{t}</h1>
<h2>Fees</h2><p>The work permit fee is {fee}.</p><script>{noise}</script>
<section class="pagedetails"><dl id="wb-dtmd"><dt>Date modified:</dt><dd><time>{noise}</time></dd></dl></section></main></body></html>"""


def _config(url: str):
    return parse_config(
        {
            "storage": {"url": url},
            "crawl": {"allowed_domains": ["www.canada.ca"]},
            "watch": [{"url": "https://www.canada.ca/en/wp.html", "topics": ["work-permits"]}],
        }
    )


def _night(db, cfg, fee: str, noise: str, *, status: int = 200, outcome: str = "ok"):
    with db.session() as s:
        run_id = q.open_run(s).id
    work = PageWork(db, cfg, run_id, first_run=run_id == 1)
    body = GCWEB.format(t="Work permits", fee=fee, noise=noise).encode()
    res = work.process(
        FetchResult(
            url="https://www.canada.ca/en/wp.html",
            outcome=outcome,
            status=status,
            body=body if outcome == "ok" else None,
            content_type="text/html; charset=utf-8",
        )
    )
    with db.session() as s:
        q.finish_run(s, run_id, "completed")
    return res


def test_migrations_views_and_history(db_url: str, db):
    cfg = _config(db_url)
    assert _night(db, cfg, "$155", "a").result == "new"
    assert _night(db, cfg, "$155", "b").result == "unchanged"  # noise only: hashes, no version
    assert _night(db, cfg, "$230", "c").result == "changed"
    assert _night(db, cfg, "", "", status=503, outcome="http_error").result == "failed"
    with db.engine.connect() as conn:
        log = conn.execute(
            sa.text("SELECT kind, significance, summary, topics FROM change_log ORDER BY change_id")
        ).all()
        assert [r[0] for r in log] == ["new_page", "changed"]
        assert "$155 → $230" in log[1][2]
        versions = conn.execute(sa.text("SELECT count(*) FROM page_versions")).scalar()
        assert versions == 2
        fetches = conn.execute(
            sa.text("SELECT outcome, content_changed FROM fetch_log ORDER BY fetch_id")
        ).all()
        assert [f[0] for f in fetches] == ["ok", "ok", "ok", "http_error"]
        assert [bool(f[1]) for f in fetches] == [True, False, True, False]
        runs = conn.execute(
            sa.text("SELECT status, pages_fetched, pages_changed, pages_failed FROM run_log ORDER BY run_id")
        ).all()
        assert [tuple(r) for r in runs] == [
            ("completed", 1, 0, 0),
            ("completed", 1, 0, 0),
            ("completed", 1, 1, 0),
            ("completed", 1, 0, 1),
        ]
        topics = conn.execute(sa.text("SELECT topic FROM change_topics ORDER BY change_id")).scalars().all()
        assert topics == ["work-permits", "work-permits"]
    with db.session() as s:
        page = q.get_page(s, "https://www.canada.ca/en/wp.html")
        vs = q.versions_of(s, page.id)
        assert [v.text.splitlines()[-1] for v in vs] == [
            "The work permit fee is $155.",
            "The work permit fee is $230.",
        ]
        assert q.version_at(s, page.id, vs[0].captured_at + timedelta(microseconds=1)).id == vs[0].id
        assert q.version_at(s, page.id, datetime(2000, 1, 1, tzinfo=UTC)) is None
        assert all(c.detected_at.tzinfo is not None for c in s.scalars(sa.select(Change)))


def test_identical_bodies_stored_once(db_url: str, db):
    with db.session() as s:
        q.store_body(s, "ab" * 32, b"same bytes", "text/html")
        q.store_body(s, "ab" * 32, b"same bytes", "text/html")
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM bodies")).scalar() == 1
    with db.session() as s:
        assert q.body_bytes(s, "ab" * 32) == b"same bytes"


def test_a_new_pages_body_already_stored_or_pruned_is_kept_once_and_restored(db_url: str, db):
    """A new page's body is inserted without a lookup first; the same bytes at a second URL must still be one
    row, and bytes whose row was pruned (data NULL) are stored again when a new page brings them back."""
    cfg = parse_config(
        {
            "storage": {"url": db_url},
            "crawl": {"allowed_domains": ["www.canada.ca"]},
            "watch": [{"url": f"https://www.canada.ca/en/{name}.html"} for name in ("a", "b", "c")],
        }
    )
    body = GCWEB.format(t="Same", fee="$155", noise="n1").encode()
    sha = hashlib.sha256(body).hexdigest()
    with db.session() as s:
        run_id = q.open_run(s).id
    work = PageWork(db, cfg, run_id, first_run=True)
    for name in ("a", "b"):
        assert (
            work.process(
                FetchResult(
                    url=f"https://www.canada.ca/en/{name}.html",
                    status=200,
                    body=body,
                    content_type="text/html",
                )
            ).result
            == "new"
        )
    with db.engine.begin() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM bodies")).scalar() == 1
        conn.execute(sa.text("UPDATE bodies SET data = NULL"))  # what `db prune` leaves
    assert (
        work.process(
            FetchResult(
                url="https://www.canada.ca/en/c.html", status=200, body=body, content_type="text/html"
            )
        ).result
        == "new"
    )
    with db.session() as s:
        assert q.body_bytes(s, sha) == body
        assert s.scalar(sa.select(sa.func.count()).select_from(Version).where(Version.raw_hash == sha)) == 3


@pytest.mark.parametrize("storage_error", [True, False])
def test_a_failed_page_transaction_leaves_nothing(db_url: str, db, storage_error: bool):
    """One transaction per page: an error midway rolls back the fetch, the version and the change together.
    A storage error is raised (every later page would meet it); any other error is that page's problem,
    recorded as its `unreadable` fetch and nothing else."""
    cfg = _config(db_url)
    _night(db, cfg, "$155", "a")
    with db.session() as s:
        run_id = q.open_run(s).id
    work = PageWork(db, cfg, run_id, first_run=False)
    original = q.insert_row

    error = (
        sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))
        if storage_error
        else RuntimeError("crash while writing the change")
    )

    def boom(s, model, **values):
        if model is Change:
            raise error
        return original(s, model, **values)

    q.insert_row = boom
    result = FetchResult(
        url="https://www.canada.ca/en/wp.html",
        status=200,
        content_type="text/html",
        body=GCWEB.format(t="Work permits", fee="$999", noise="z").encode(),
    )
    try:
        if storage_error:
            with pytest.raises(sa.exc.OperationalError):
                work.process(result)
        else:
            assert work.process(result).outcome == "unreadable"
    finally:
        q.insert_row = original
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM versions")).scalar() == 1
        outcomes = conn.execute(
            sa.text("SELECT outcome, message FROM fetches WHERE run_id = :r"), {"r": run_id}
        ).all()
    if storage_error:
        assert outcomes == []
    else:
        assert [o for o, _ in outcomes] == ["unreadable"] and "crash while writing" in outcomes[0][1]
    # and the next pass finds the change, compared with the last committed version
    assert _night(db, cfg, "$999", "y").result == "changed"


def _open(url: str) -> str:
    db = open_database(url)
    with db.engine.connect() as conn:
        from policywatch.storage.db import current_revision

        rev = current_revision(conn)
    db.dispose()
    return rev


def test_concurrent_first_use_migrates_once(db_url: str):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        revs = pool.map(_open, [db_url] * 4)
    assert revs == [head_revision()] * 4


def test_database_newer_than_code_is_refused(db_url: str):
    open_database(db_url).dispose()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(StorageError, match="newer version"):
        open_database(db_url)


def test_first_migration_upgrades_with_data_intact(db_url: str):
    """A database at the first revision, with data, upgrades to head and keeps its rows."""
    from alembic import command

    from policywatch.storage.db import alembic_config, make_engine

    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(
            sa.text(
                "INSERT INTO runs (started_at, status, pages_fetched, pages_new, pages_changed, "
                "pages_unchanged, pages_failed) "
                "VALUES (:t, 'completed', 3, 1, 1, 1, 0)"
            ),
            {"t": datetime(2024, 1, 1)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO pages (url, url_key, topics, source, status, gone_count, first_seen) "
                "VALUES ('https://www.canada.ca/x', 'https://www.canada.ca/x', '[]', 'watch', 'active', 0, "
                ":t)"
            ),
            {"t": datetime(2024, 1, 1)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO versions (page_id, captured_at, content_hash, text, blocks, meta) "
                "VALUES (1, :t, 'h', 'Fee $155', :b, '{}')"
            ),
            {"t": datetime(2024, 1, 1), "b": json.dumps(BLOCKS)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO fetches (page_id, fetched_at, outcome, attempts, raw_hash, content_hash, "
                "content_changed) "
                "VALUES (1, :t, 'ok', 1, :h, :h, false)"
            ),
            {"t": datetime(2024, 1, 1), "h": HASH},
        )
    engine.dispose()
    db = open_database(db_url)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pages_fetched FROM run_log")).scalar() == 3
            assert conn.execute(sa.text("SELECT text FROM page_versions")).scalar() == "Fee $155"
            assert conn.execute(sa.text("SELECT raw_hash, content_hash FROM fetch_log")).one() == (
                HASH,
                HASH,
            )  # hex for SQL
            from policywatch.storage.db import current_revision

            assert current_revision(conn) == head_revision()
        with db.session() as s:
            assert s.get(Version, 1).blocks == BLOCKS  # converted to compressed JSON, read back intact
            assert s.get(Fetch, 1).raw_hash == HASH  # stored as 32 bytes, read back as hex
        with db.engine.begin() as conn:  # and back down: the JSON column again, same content
            command.downgrade(alembic_config(conn), "0001")
            raw = conn.execute(sa.text("SELECT blocks FROM versions")).scalar()
            assert (json.loads(raw) if isinstance(raw, str) else raw) == BLOCKS
            assert conn.execute(sa.text("SELECT raw_hash FROM fetches")).scalar() == HASH
            command.upgrade(alembic_config(conn), "head")
    finally:
        db.dispose()


HASH = "ab" * 32
BLOCKS = [
    {"kind": "h2", "section": [], "text": "Fees"},
    {"kind": "p", "section": ["Fees"], "text": "Fee $155 — résidents"},
]


def test_sqlite_errors_are_one_line(tmp_path: Path):
    bad = tmp_path / "foreign.db"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StorageError, match="is not a policywatch database"):
        open_database(f"sqlite:///{bad}")
    with pytest.raises(StorageError, match="directory for the SQLite database does not exist"):
        open_database(f"sqlite:///{tmp_path}/missing/dir/x.db")


def test_unreachable_postgresql_is_one_line():
    with pytest.raises(
        StorageError, match=r"database postgresql://nobody:\*\*\*@127.0.0.1:1/x unusable: .*refused"
    ) as info:
        open_database("postgresql://nobody:secret@127.0.0.1:1/x")
    assert "secret" not in str(info.value)  # secrets never reach messages or logs


def test_lost_postgresql_connection_recovers(pg_url: str):
    """A backend killed under us (pg_terminate_backend): the next session reconnects (pool pre-ping)."""
    db = open_database(pg_url)
    try:
        with db.engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            assert c.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar() is True
        admin.dispose()
        with db.session() as s:
            assert q.open_run(s).id >= 1
    finally:
        db.dispose()


def test_head_revision_constant_matches_the_migrations():
    """storage.db skips Alembic when a database is at HEAD_REVISION: the constant must name the real head."""
    from policywatch.storage.db import HEAD_REVISION

    assert HEAD_REVISION == head_revision()


def test_bodies_packed_against_the_host_template_read_back_and_downgrade_to_plain_zlib(db_url: str, db):
    """Raw bodies of one host share a dictionary (its page template); every body reads back byte-exact, WARC
    export included, and a downgrade to 0002 turns them back into plain zlib for the older code."""
    import io
    import zlib

    from alembic import command
    from warcio.archiveiterator import ArchiveIterator

    from policywatch.storage.db import alembic_config
    from policywatch.storage.maintenance import write_warc

    noise = sorted((Path(__file__).parent / "eval" / "noise").glob("*.html"))
    bodies = [f.read_bytes() for f in noise[::12]]  # three different real canada.ca pages
    urls = [f"https://www.canada.ca/en/p{i}.html" for i in range(len(bodies))]
    cfg = parse_config(
        {
            "storage": {"url": db_url},
            "crawl": {"allowed_domains": ["www.canada.ca"]},
            "watch": [{"url": u} for u in urls],
        }
    )
    with db.session() as s:
        run_id = q.open_run(s).id
    for u, b in zip(urls, bodies, strict=False):
        assert (
            PageWork(db, cfg, run_id, first_run=True)
            .process(FetchResult(url=u, status=200, body=b, content_type="text/html"))
            .result
            == "new"
        )
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT sha256, dict_id, length(data) FROM bodies")).all()
        assert conn.execute(sa.text("SELECT count(*) FROM body_dicts")).scalar() == 1
    assert len(rows) == 3 and len({r[1] for r in rows}) == 1 and rows[0][1] is not None
    packed = sum(r[2] for r in rows)
    plain = sum(len(zlib.compress(b, 6)) for b in bodies)
    assert packed < 0.8 * plain  # the shared template is stored once, in the dictionary
    with db.session() as s:
        for b in bodies:
            assert q.body_bytes(s, hashlib.sha256(b).hexdigest()) == b
        out = io.BytesIO()
        assert write_warc(s, out) == 3
    payloads = {
        rec.content_stream().read()
        for rec in ArchiveIterator(io.BytesIO(out.getvalue()))
        if rec.rec_type == "response"
    }
    assert payloads == set(bodies)
    with db.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")
        stored = conn.execute(sa.text("SELECT sha256, data FROM bodies")).all()
        assert {sha: zlib.decompress(d) for sha, d in stored} == {
            hashlib.sha256(b).hexdigest(): b for b in bodies
        }
        for blob, text in conn.execute(sa.text("SELECT blocks, text FROM versions")).all():
            whole = json.loads(zlib.decompress(blob))  # 0002's format: whole blocks, text included
            assert isinstance(whole, list) and "\n".join(b["text"] for b in whole if b["text"]) == text
        command.upgrade(alembic_config(conn), "head")


def test_versions_store_block_structure_once_and_text_once(db_url: str):
    """versions.blocks keeps the structure; each block's text comes back from versions.text, exactly."""
    from policywatch.storage import blockpack

    noise = sorted((Path(__file__).parent / "eval" / "noise").glob("*.html"))[0]
    from policywatch.monitor.detection.extract import extract_html

    ex = extract_html(noise.read_bytes(), "https://www.canada.ca/en/x.html")
    ex.blocks.append(
        {
            "kind": "img",
            "section": ["Fees"],
            "text": "",
            "images": [{"src": "https://www.canada.ca/a.png", "alt": ""}],
        }
    )
    stored = blockpack.strip(ex.blocks, ex.text)
    assert stored["textless"] == 2 and not any(
        b["text"] in json.dumps(stored, ensure_ascii=False) for b in ex.blocks if b["kind"] == "p"
    )
    assert len(stored["paths"]) < len(stored["kinds"]) == len(ex.blocks)  # each section path stored once
    assert blockpack.restore(stored, ex.text) == ex.blocks
    old_form = {
        "textless": 1,
        "blocks": [
            {
                "kind": b["kind"],
                "section": b["section"],
                **({} if b["text"] else {"text": ""}),
                **{k: v for k, v in b.items() if k not in ("kind", "section", "text")},
            }
            for b in ex.blocks
        ],
    }
    assert (
        blockpack.restore(old_form, ex.text) == ex.blocks
    )  # versions written by release 0003 still read back
    odd = [{"kind": "p", "section": [], "text": "a\nb"}]  # cannot be rebuilt from the text: kept whole
    assert blockpack.strip(odd, "a\nb") == odd
    cfg = parse_config(
        {
            "storage": {"url": db_url},
            "crawl": {"allowed_domains": ["www.canada.ca"]},
            "watch": [{"url": "https://www.canada.ca/en/x.html"}],
        }
    )
    db = open_database(db_url)
    try:
        with db.session() as s:
            run_id = q.open_run(s).id
        PageWork(db, cfg, run_id, first_run=True).process(
            FetchResult(
                url="https://www.canada.ca/en/x.html",
                status=200,
                body=noise.read_bytes(),
                content_type="text/html",
            )
        )
        with db.session() as s:
            v = s.get(Version, 1)
            assert v.stored_blocks["textless"] == 2
            assert v.blocks == ex.blocks[:-1]
    finally:
        db.dispose()


def test_a_page_created_by_another_worker_meanwhile_is_updated_not_duplicated(db_url: str, db, monkeypatch):
    """A new page is inserted in one statement; if another writer created the same URL between this
    one's read and its write, the insert yields nothing and the page is read and updated through the ORM."""
    cfg = _config(db_url)
    original = q.insert_page_if_absent

    def racing(s, **values):
        other = open_database(db_url, migrate=False)  # the other worker's connection, committed first
        with other.session() as s2:
            q.get_or_create_page(s2, values["url"], values["url_key"], source="watch", topics=[])
        other.dispose()
        return original(s, **values)

    monkeypatch.setattr(q, "insert_page_if_absent", racing)
    assert _night(db, cfg, "$155", "a").result == "new"
    with db.session() as s:
        pages = s.scalars(sa.select(Page)).all()
        assert len(pages) == 1 and pages[0].title == "Work permits" and pages[0].extractor == "gcweb"
        assert pages[0].last_seen is not None and pages[0].topics == ["work-permits"]
        assert s.scalar(sa.select(sa.func.count()).select_from(Version)) == 1


def test_validators_are_the_last_good_fetchs_and_read_by_keys(db_url: str, db):
    """What the crawl sends as If-None-Match / If-Modified-Since: each page's last `ok` or `not_modified`
    fetch (a later failure keeps the old validators), read for the asked pages only (the crawl asks a chunk at
    a time)."""
    with db.session() as s:
        run_id = q.open_run(s).id
        pages = {
            k: q.insert_row(
                s,
                Page,
                url=f"https://www.canada.ca/en/{k}.html",
                url_key=f"www.canada.ca/en/{k}.html",
                host="www.canada.ca",
                source="watch",
            )
            for k in "abcd"
        }

        def fetch(k: str, outcome: str, etag: str | None = None, modified: str | None = None) -> None:
            q.insert_row(
                s,
                Fetch,
                page_id=pages[k],
                run_id=run_id,
                outcome=outcome,
                etag=etag,
                last_modified=modified,
            )

        fetch("a", "ok", '"a1"')
        fetch("a", "not_modified", '"a2"', "Mon, 02 Nov 2026 10:00:00 GMT")
        fetch("a", "timeout")  # a failure after: the validators stay a2's
        fetch("b", "ok", '"b1"')
        fetch("b", "http_error", '"b-error"')
        fetch("c", "timeout")  # never fetched well: nothing to send
        fetch("d", "ok")  # no ETag, no Last-Modified: nothing to send
    key = {k: f"www.canada.ca/en/{k}.html" for k in "abcd"}
    with db.session() as s:
        every = q.validators(s)
        assert every == {key["a"]: ('"a2"', "Mon, 02 Nov 2026 10:00:00 GMT"), key["b"]: ('"b1"', None)}
        assert q.validators(s, [key["b"], key["c"], "www.canada.ca/en/unknown.html"]) == {
            key["b"]: ('"b1"', None)
        }
        assert q.validators(s, []) == {}
