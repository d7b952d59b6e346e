"""PostgreSQL drops every connection mid-pass (pg_terminate_backend, as a server restart would): the pass
ends, nothing half-written stays, and the next pass fetches what the first could not store."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import sqlalchemy as sa

from tests.conftest import BIN, permits_config_body, policywatch

pytestmark = pytest.mark.slow


def test_postgresql_connections_killed_mid_pass(permits_site, write_config, pg_url):
    permits_site.server.delay = 0.4  # the pass is still crawling when the connections die
    cfg = str(write_config(permits_config_body(permits_site), storage=pg_url.replace("+psycopg", "")))
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    dbname = sa.engine.make_url(pg_url).database
    proc = subprocess.Popen(
        [str(BIN / "policywatch"), "run", "--config", cfg],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with engine.connect() as c:
                    if c.execute(sa.text("SELECT count(*) FROM fetches")).scalar():
                        break
            except sa.exc.ProgrammingError:  # tables not created yet
                pass
            time.sleep(0.1)
        with engine.connect() as c:
            killed = c.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": dbname},
            ).scalar()
        out, err = proc.communicate(timeout=180)
        assert killed >= 1
        assert proc.returncode in (0, 1), err  # finished, or failed with a message; never hung or crashed
        assert "Traceback" not in err
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM runs WHERE status = 'running'")).scalar() == 0
            # nothing half-written: every version has its fetch, every change its versions
            assert (
                c.execute(
                    sa.text(
                        "SELECT count(*) FROM versions v LEFT JOIN fetches f ON f.id = v.fetch_id "
                        "WHERE f.id IS NULL"
                    )
                ).scalar()
                == 0
            )
            assert (
                c.execute(
                    sa.text(
                        "SELECT count(*) FROM changes ch LEFT JOIN versions v ON v.id = ch.to_version_id "
                        "WHERE ch.to_version_id IS NOT NULL AND v.id IS NULL"
                    )
                ).scalar()
                == 0
            )
        permits_site.server.delay = 0
        p = policywatch("run", "--config", cfg)
        assert p.returncode == 0, p.stderr
        with engine.connect() as c:
            pages = c.execute(sa.text("SELECT count(*) FROM pages")).scalar()
            fetched = c.execute(
                sa.text("SELECT count(DISTINCT page_id) FROM fetches WHERE run_id = 2")
            ).scalar()
            per_page = c.execute(
                sa.text("SELECT max(n) FROM (SELECT count(*) AS n FROM versions GROUP BY page_id) x")
            ).scalar()
        assert fetched == pages and pages >= 4  # the next pass covered every page
        assert per_page == 1  # night 1 again: no page got a second (duplicate) version
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()
