"""Analyst tools on a real history: Datasette metadata and canned queries, retention, WARC export."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from policywatch.storage import open_database
from policywatch.storage import queries as q
from policywatch.storage.maintenance import datasette_metadata, prune_bodies, write_warc
from tests.conftest import cli
from tests.test_storage import _config, _night


@pytest.fixture
def history(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'policywatch.db'}"
    db = open_database(url)
    cfg = _config(url)
    for fee, noise in (("$155", "a"), ("$155", "b"), ("$230", "c"), ("$255", "d")):
        _night(db, cfg, fee, noise)
    db.dispose()
    return url


def test_datasette_loads_metadata_and_canned_queries(history: str, tmp_path: Path):
    from datasette.app import Datasette

    path = history.removeprefix("sqlite:///")
    meta = datasette_metadata(Path(path).stem)

    async def go():
        ds = Datasette([path], metadata=meta)
        r1 = await ds.client.get("/policywatch/change_log.json?_shape=array")
        r2 = await ds.client.get(
            "/policywatch/changes_by_topic.json?_shape=array&topic=work-permits&since=2000-01-01"
        )
        r3 = await ds.client.get(
            "/policywatch/page_as_of.json?_shape=array&url=https://www.canada.ca/en/wp.html&date=2999-01-01"
        )
        r4 = await ds.client.get("/-/metadata.json")
        return r1, r2, r3, r4

    r1, r2, r3, r4 = asyncio.run(go())
    assert r1.status_code == 200 and len(r1.json()) == 3
    assert [row["kind"] for row in r2.json()] == ["new_page", "changed", "changed"]
    assert "$255" in r3.json()[0]["text"]
    assert "innovation_stream_changes" in json.dumps(r4.json())


def test_cli_prints_metadata(write_config, history: str):
    cfg = write_config('[crawl]\nallowed_domains = ["www.canada.ca"]\n', storage=history)
    p = cli("db", "metadata", "--config", str(cfg))
    assert p.returncode == 0 and "policywatch" in json.loads(p.stdout)["databases"]


def test_prune_keeps_text_changes_and_latest_body(history: str):
    db = open_database(history)
    try:
        with db.session() as s:
            n, freed = prune_bodies(s, datetime.now(UTC) + timedelta(days=1))
        assert n == 2 and freed > 0  # 3 versions; the latest body is kept
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM bodies WHERE data IS NOT NULL")).scalar() == 1
            assert (
                conn.execute(sa.text("SELECT count(*) FROM page_versions WHERE text LIKE '%$155%'")).scalar()
                == 1
            )
            assert conn.execute(sa.text("SELECT count(*) FROM change_log")).scalar() == 3
        with db.session() as s:  # nothing old enough: nothing pruned
            assert prune_bodies(s, datetime(2000, 1, 1, tzinfo=UTC)) == (0, 0)
    finally:
        db.dispose()


def test_warc_export_replays(history: str, tmp_path: Path):
    from warcio.archiveiterator import ArchiveIterator

    db = open_database(history)
    out = tmp_path / "captures.warc.gz"
    try:
        with db.session() as s, open(out, "wb") as f:
            assert write_warc(s, f) == 3
        with db.session() as s:
            bodies = [q.body_bytes(s, v.raw_hash) for v in q.versions_of(s, 1)]
    finally:
        db.dispose()
    with open(out, "rb") as f:
        records = [
            (r.rec_headers.get_header("WARC-Target-URI"), r.content_stream().read())
            for r in ArchiveIterator(f)
            if r.rec_type == "response"
        ]
    assert [u for u, _ in records] == ["https://www.canada.ca/en/wp.html"] * 3
    assert [b for _, b in records] == bodies
    assert gzip.open(out).read(4) == b"WARC"


def test_cli_warc_and_prune(write_config, history: str, tmp_path: Path):
    cfg = write_config('[crawl]\nallowed_domains = ["www.canada.ca"]\n', storage=history)
    missing = cli("export", "warc", "--config", str(cfg))
    assert missing.returncode == 2 and "--out" in missing.stderr
    p = cli("export", "warc", "--config", str(cfg), "--out", str(tmp_path / "a.warc.gz"))
    assert p.returncode == 0 and "wrote 3 captures" in p.stderr and p.stdout == ""
    pr = cli("db", "prune", "--config", str(cfg), "--bodies-older-than", "2999-01-01", "--vacuum")
    assert pr.returncode == 0 and "pruned 2 raw bodies" in pr.stdout


def test_explain_latest_stored_capture(write_config, history: str):
    cfg = write_config('[crawl]\nallowed_domains = ["www.canada.ca"]\n', storage=history)
    p = cli("explain", "https://www.canada.ca/en/wp.html", "--config", str(cfg), "--blocks")
    assert p.returncode == 0, p.stderr
    assert "source: version 3 captured" in p.stdout and "[p] Fees: The work permit fee is $255." in p.stdout
    assert "furniture (section.pagedetails)" in p.stdout
    missing = cli("explain", "https://www.canada.ca/en/other.html", "--config", str(cfg))
    assert missing.returncode == 2 and "no page" in missing.stderr


def test_canned_date_filters_read_days_times_and_offsets(tmp_path: Path):
    """The Datasette canned queries compare times as times, not strings: a time given with 'T' does not
    return a version captured seconds after it, a plain day means that whole day, an offset is honoured."""
    import sqlite3

    from policywatch.monitor.config import parse_config
    from policywatch.monitor.pagework import FetchResult, PageWork

    url = "https://www.canada.ca/en/is.html"
    db_url = f"sqlite:///{tmp_path / 'h.db'}"
    cfg = parse_config(
        {
            "storage": {"url": db_url},
            "crawl": {"allowed_domains": ["www.canada.ca"]},
            "watch": [{"url": url, "topics": ["innovation-stream"]}],
        }
    )
    db = open_database(db_url)
    times = [datetime(2026, 12, 1, 23, 0, tzinfo=UTC), datetime(2026, 12, 2, 1, 3, 41, 412000, tzinfo=UTC)]
    try:
        for i, (when, fee) in enumerate(zip(times, ("$155", "$230"), strict=True)):
            with db.session() as s:
                run_id = q.open_run(s).id
            body = (
                '<main property="mainContentOfPage"><h1>Innovation Stream</h1><p>The fee is '
                + fee
                + ".</p></main>"
            )
            PageWork(db, cfg, run_id, first_run=i == 0).process(
                FetchResult(
                    url=url, status=200, body=body.encode(), content_type="text/html", fetched_at=when
                )
            )
            with db.session() as s:
                q.finish_run(s, run_id, "completed")
    finally:
        db.dispose()
    queries = datasette_metadata("h")["databases"]["h"]["queries"]
    con = sqlite3.connect(tmp_path / "h.db")
    try:

        def as_of(date: str) -> str:
            rows = con.execute(queries["page_as_of"]["sql"], {"url": url, "date": date}).fetchall()
            return rows[0][3] if rows else ""

        assert "$155" in as_of("2026-12-02T01:03:38")  # 3 s before the $230 capture: still $155
        assert "$230" in as_of("2026-12-02T01:03:41")  # the same second
        assert "$230" in as_of("2026-12-02")  # the whole day
        assert "$155" in as_of("2026-12-01")
        assert "$155" in as_of("2026-12-01T20:03:40-05:00")  # 01:03:40 UTC
        assert "$230" in as_of("2026-12-01T20:03:42-05:00")

        def since(value: str) -> int:
            return len(
                con.execute(
                    queries["changes_by_topic"]["sql"], {"topic": "innovation-stream", "since": value}
                ).fetchall()
            )

        # changes are dated when detected (now): a day, a time and a time with an offset, around now
        detected = datetime.fromisoformat(
            con.execute("SELECT max(detected_at) FROM change_log").fetchone()[0]
        )
        detected = detected.replace(tzinfo=UTC)
        assert since(detected.date().isoformat()) == 2
        assert since((detected.date() + timedelta(days=1)).isoformat()) == 0
        before = (detected - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-5)))
        assert since(before.isoformat(timespec="seconds")) == 2  # e.g. 2026-12-04T21:00:00-05:00
        after = (detected + timedelta(seconds=2)).isoformat(timespec="seconds").replace("+00:00", "")
        assert since(after) == 0
        facts = con.execute(
            queries["fact_changes"]["sql"], {"since": detected.date().isoformat(), "type": "fee"}
        ).fetchall()
        assert [(r[2], r[3], r[4], r[5]) for r in facts] == [("fee", "changed", "$155", "$230")]
    finally:
        con.close()


def test_canned_queries_read_dates_in_the_configured_zone(tmp_path: Path):
    """`db metadata` for a config in America/Toronto: a plain day is that day in Toronto (as every command
    reads it), across a change of daylight time; a time with an offset stays exact."""
    import sqlite3

    con = sqlite3.connect(tmp_path / "z.db")
    con.execute("CREATE TABLE page_versions (url, version_id, captured_at, text)")
    con.executemany(
        "INSERT INTO page_versions VALUES ('u', ?, ?, ?)",
        [
            (1, "2026-12-01 23:00:00.000000", "winter evening"),  # 18:00 EST on Dec 1
            (2, "2026-12-02 01:03:41.412000", "winter night"),  # 20:03 EST, still Dec 1 in Toronto
            (3, "2026-07-02 03:30:00.000000", "summer night"),  # 23:30 EDT on Jul 1
        ],
    )
    toronto = datasette_metadata("z", "America/Toronto")["databases"]["z"]["queries"]["page_as_of"]["sql"]
    utc = datasette_metadata("z")["databases"]["z"]["queries"]["page_as_of"]["sql"]
    assert "America/Toronto" in json.dumps(datasette_metadata("z", "America/Toronto"))

    def as_of(sql: str, date: str) -> str:
        rows = con.execute(sql, {"url": "u", "date": date}).fetchall()
        return rows[0][3] if rows else ""

    try:
        assert as_of(toronto, "2026-12-01") == "winter night"  # the end of Dec 1 in Toronto is 05:00 UTC
        assert as_of(utc, "2026-12-01") == "winter evening"
        assert as_of(toronto, "2026-07-01") == "summer night"  # EDT: the day ends at 04:00 UTC
        assert as_of(toronto, "2026-07-01T23:00") == ""  # 03:00 UTC, before the capture
        assert as_of(toronto, "2026-12-01T20:03:40") == "winter evening"  # 01:03:40 UTC
        assert as_of(toronto, "2026-12-02T01:03:41+00:00") == "winter night"  # exact
    finally:
        con.close()
