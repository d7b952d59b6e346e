"""Analyst tools on a real history: Datasette metadata and canned queries, retention, WARC export."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from policywatch.storage import open_database
from policywatch.storage import queries as q
from policywatch.storage.maintenance import datasette_metadata, prune_bodies, write_warc
from tests.conftest import policywatch
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
    p = policywatch("db", "metadata", "--config", str(cfg))
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
    missing = policywatch("export", "warc", "--config", str(cfg))
    assert missing.returncode == 2 and "--out" in missing.stderr
    p = policywatch("export", "warc", "--config", str(cfg), "--out", str(tmp_path / "a.warc.gz"))
    assert p.returncode == 0 and "wrote 3 captures" in p.stderr and p.stdout == ""
    pr = policywatch("db", "prune", "--config", str(cfg), "--bodies-older-than", "2999-01-01", "--vacuum")
    assert pr.returncode == 0 and "pruned 2 raw bodies" in pr.stdout


def test_explain_latest_stored_capture(write_config, history: str):
    cfg = write_config('[crawl]\nallowed_domains = ["www.canada.ca"]\n', storage=history)
    p = policywatch("explain", "https://www.canada.ca/en/wp.html", "--config", str(cfg), "--blocks")
    assert p.returncode == 0, p.stderr
    assert "source: version 3 captured" in p.stdout and "[p] Fees: The work permit fee is $255." in p.stdout
    assert "furniture (section.pagedetails)" in p.stdout
    missing = policywatch("explain", "https://www.canada.ca/en/other.html", "--config", str(cfg))
    assert missing.returncode == 2 and "no page" in missing.stderr
