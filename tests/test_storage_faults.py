"""A locked or full SQLite database during a real pass: a one-line error and exit 3, nothing half-written, and
the next pass (once the lock is gone or space is free) reports the night's changes exactly once."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import permits_config_body, policywatch

pytestmark = pytest.mark.slow
TABLES = ("runs", "fetches", "versions", "changes", "bodies", "pages")


def _snapshot(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        con.close()


def _changes_by_run(db: Path) -> dict[int, int]:
    con = sqlite3.connect(db)
    try:
        return dict(
            con.execute("SELECT run_id, count(*) FROM changes WHERE kind != 'new_page' GROUP BY run_id")
        )
    finally:
        con.close()


def _run(cfg: Path) -> subprocess.CompletedProcess[str]:
    return policywatch("run", "--config", str(cfg), "--quiet")


def test_locked_sqlite_fails_clearly_and_writes_nothing(permits_site, write_config, tmp_path):
    db = tmp_path / "history.db"
    cfg = write_config(permits_config_body(permits_site), storage=f"sqlite:///{db.as_posix()}?timeout=1")
    assert _run(cfg).returncode == 0
    before = _snapshot(db)

    permits_site.night(2)  # a night with real changes, which must not be lost
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer (a backup, a long analyst transaction) holds the lock
    try:
        p = _run(cfg)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert p.returncode == 3, p.stderr
    assert "is locked" in p.stderr and "timeout" in p.stderr and "Traceback" not in p.stderr
    assert _snapshot(db) == before  # not even a run row

    p = _run(cfg)  # the lock is gone: the night's changes arrive, once
    assert p.returncode == 0, p.stderr
    changes = _changes_by_run(db)
    assert sum(changes.values()) >= 2 and set(changes) == {max(changes)}


def test_database_size_cap_reached_mid_pass_stops_the_crawl_and_keeps_committed_pages(
    permits_site, write_config, tmp_path
):
    """`max_size_mb` in storage.url caps the file; reaching it is SQLITE_FULL, the error a full disk gives."""
    db = tmp_path / "history.db"
    cfg = write_config(permits_config_body(permits_site))
    assert _run(cfg).returncode == 0
    con = sqlite3.connect(db)
    size_mb = (
        con.execute("PRAGMA page_count").fetchone()[0]
        * con.execute("PRAGMA page_size").fetchone()[0]
        / 1024
        / 1024
    )
    con.close()
    before = _snapshot(db)

    permits_site.night(2)
    capped = write_config(
        permits_config_body(permits_site),
        name="capped.toml",
        storage=f"sqlite:///{db.as_posix()}?max_size_mb={size_mb + 0.01:.3f}",
    )
    p = _run(capped)
    assert p.returncode in (1, 3), p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    assert "could not be stored" in p.stderr and "disk is full" in p.stderr, p.stderr
    log = (tmp_path / "reports" / "logs" / "run-2.log").read_text(encoding="utf-8")
    assert (
        "stopping the crawl" in log and "storage_error" in log
    )  # no point fetching pages that cannot be stored
    after = _snapshot(db)  # integrity holds; whatever was committed is whole
    assert after["runs"] == before["runs"] + 1

    p = _run(cfg)  # space again: the pages not stored last time are compared with the last stored versions
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(db)
    try:
        urls = [u for (u,) in con.execute("SELECT url FROM change_log WHERE kind != 'new_page'")]
        statuses = [s for (s,) in con.execute("SELECT status FROM runs ORDER BY id")]
    finally:
        con.close()
    assert len(urls) == len(set(urls)) >= 2  # each real change once, none lost, none doubled
    assert statuses == ["completed", "failed", "completed"]


def test_a_really_full_disk(permits_site, write_config, tiny_disk):
    db = tiny_disk / "history.db"
    cfg = write_config(permits_config_body(permits_site), storage=f"sqlite:///{db.as_posix()}")
    assert _run(cfg).returncode == 0
    before = _snapshot(db)
    filler = tiny_disk / "filler"
    with open(filler, "wb") as f:  # fill the disk to the last block
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    permits_site.night(2)
    p = _run(cfg)
    assert p.returncode in (1, 3), p.stdout + p.stderr
    assert "Traceback" not in p.stderr and "full" in p.stderr, p.stderr
    filler.unlink()
    mid = _snapshot(db)
    assert mid["versions"] >= before["versions"]
    p = _run(cfg)
    assert p.returncode == 0, p.stderr
    urls = [u for (u,) in sqlite3.connect(db).execute("SELECT url FROM change_log WHERE kind != 'new_page'")]
    assert len(urls) == len(set(urls)) >= 2
