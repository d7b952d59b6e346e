"""One pass at a time: a second `policywatch run` while one is running exits 4 with a clear message."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time

import pytest

from tests.conftest import BIN

pytestmark = pytest.mark.slow


def _cfg(permits_site, write_config, storage=None):
    return write_config(
        f"""
[crawl]
allowed_domains = ["{permits_site.host}"]
download_delay = 0
[[watch]]
url = "{permits_site.url("/en/work-permits.html")}"
""",
        storage=storage,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_second_run_is_refused(backend, permits_site, write_config, tmp_path, request):
    storage = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    cfg = _cfg(permits_site, write_config, storage)
    permits_site.server.hold = threading.Event()  # the first pass waits on its page until we let it go
    first = subprocess.Popen(
        [str(BIN / "policywatch"), "run", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert permits_site.server.arrived.wait(60)  # the first pass is crawling (and holds the lock)
    second = subprocess.run(
        [str(BIN / "policywatch"), "run", "--config", str(cfg)], capture_output=True, text=True, timeout=120
    )
    permits_site.server.hold.set()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 4
    assert "another policywatch pass is running" in second.stderr
    assert "1 fetched" in out
    # exactly one run was recorded
    if backend == "sqlite":
        con = sqlite3.connect(tmp_path / "history.db")
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
        con.close()


def test_stale_lock_after_crash_does_not_block(permits_site, write_config, tmp_path):
    """A pass killed with SIGKILL leaves its lock file behind; the next pass runs anyway (flock died with
    it)."""
    cfg = _cfg(permits_site, write_config)
    permits_site.server.hold = threading.Event()  # the first pass is mid-crawl when it is killed
    first = subprocess.Popen(
        [str(BIN / "policywatch"), "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert permits_site.server.arrived.wait(60)  # the first pass is crawling (and holds the lock)
    first.kill()
    first.wait()
    assert (tmp_path / "history.db.lock").exists()
    permits_site.server.hold.set()
    permits_site.server.hold = None
    p = subprocess.run(
        [str(BIN / "policywatch"), "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(tmp_path / "history.db")
    runs = con.execute("SELECT status, message FROM run_log ORDER BY run_id").fetchall()
    con.close()
    assert runs[0][0] == "failed" and "interrupted" in runs[0][1] and runs[1][0] == "completed"


def _kill_backend(engine, pid: int) -> None:
    import sqlalchemy as sa

    with engine.connect() as c:
        assert c.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar() is True


def test_postgresql_pass_lock_lost_with_its_connection_is_taken_again(pg_url):
    """A server restart or pg_terminate_backend drops the lock with its connection: the heartbeat takes it
    again, so no second pass can start beside this one."""
    import sqlalchemy as sa

    from policywatch.storage.db import upgrade
    from policywatch.storage.locks import LockBusy, LockGuard, pass_lock

    engine = sa.create_engine(pg_url)
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    upgrade(engine)  # the lock is a table's
    try:
        with pass_lock(engine) as guard:
            pid = guard.conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            _kill_backend(admin, pid)
            deadline = time.monotonic() + LockGuard.HEARTBEAT * 3
            while guard.retaken == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert guard.retaken == 1
            with pytest.raises(LockBusy):
                with pass_lock(engine):
                    pass
            guard.check()  # still ours
        with pass_lock(engine):  # released at the end as usual
            pass
    finally:
        engine.dispose()
        admin.dispose()


def test_postgresql_pass_lock_taken_by_another_pass_stops_this_one(pg_url):
    import sqlalchemy as sa

    from policywatch.storage.db import upgrade
    from policywatch.storage.locks import LockGuard, LockLost, pass_lock

    engine = sa.create_engine(pg_url)
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    upgrade(engine)
    other = LockGuard(engine)
    try:
        with pass_lock(engine) as guard:
            guard._stop.set()  # no heartbeat: the other pass wins the race for the free lock
            guard._thread.join()
            pid = guard.conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            _kill_backend(admin, pid)
            assert other.acquire()  # a second pass starts in the gap
            with pytest.raises(LockLost, match="another pass holds it"):
                guard.check()
        other.check()  # this pass's exit did not release the other pass's lock
    finally:
        other.release()
        engine.dispose()
        admin.dispose()
