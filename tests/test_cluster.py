"""Scale-out: a coordinator (`policywatch run` with [cluster]) and real `policywatch worker` processes share one
Redis frontier (scrapy-redis) and one PostgreSQL history, over a loopback site of a few hundred pages."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from monitor.demo import NightServer
from tests.conftest import BIN, policywatch
from tests.smtp_server import SmtpSink

pytestmark = pytest.mark.slow

N_PAGES = 240
PAGE = ('<html><head><title>Page {i}</title></head><body><main property="mainContentOfPage"><h1>Page {i}</h1>'
        "<h2>Fees</h2><p>The processing fee for program {i} is {fee}.</p></main></body></html>")


def site(night: int) -> dict[str, tuple[bytes, str]]:
    links = "".join(f'<li><a href="/en/p/{i}.html">Program {i}</a></li>' for i in range(N_PAGES))
    pages = {"/en/hub.html": (f'<html><head><title>Hub</title></head><body><main property="mainContentOfPage">'
                              f"<h1>Hub</h1><ul>{links}</ul></main></body></html>".encode(), "text/html; charset=utf-8")}
    for i in range(N_PAGES):
        fee = "$230" if night >= 2 and i % 24 == 0 else "$155"  # night 2: ten pages change their fee
        pages[f"/en/p/{i}.html"] = (PAGE.format(i=i, fee=fee).encode(), "text/html; charset=utf-8")
    return pages


def config_body(server: NightServer, extra: str = "") -> str:
    watches = "".join(f'[[watch]]\nurl = "{server.base}/en/p/{i}.html"\n' for i in range(0, N_PAGES, 12))
    return f"""
[crawl]
allowed_domains = ["127.0.0.1:{server.port}"]
download_delay = 0
autothrottle = false
retries = 0
concurrency_per_domain = 8

[discovery]
follow_prefixes = ["{server.base}/en/p/"]
depth = 1
max_pages = 1000

{extra}
[[watch]]
url = "{server.base}/en/hub.html"

{watches}"""


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "policywatch"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())


def _cluster_pass(cfg: str, workers: int, *, before: int = 1) -> tuple[subprocess.CompletedProcess, list[tuple[int, str]]]:
    """`before` workers start before the coordinator, the rest after it."""
    early = [_spawn("worker", "--config", cfg, "--wait", "60") for _ in range(before)]
    time.sleep(0.5)
    coord = _spawn("run", "--config", cfg)
    time.sleep(0.5)
    late = [_spawn("worker", "--config", cfg, "--wait", "60") for _ in range(workers - before)]
    out, errs = coord.communicate(timeout=300)
    results = [(w.wait(timeout=120), w.stderr.read()) for w in early + late]
    return subprocess.CompletedProcess(coord.args, coord.returncode, out, errs), results


def _changes(engine) -> set[tuple[str, str, str]]:
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT url, kind, summary FROM change_log WHERE run_id = 2")).all()
    return {(u.split("/", 3)[-1], k, s) for u, k, s in rows}


def test_three_workers_match_a_single_machine(write_config, tmp_path, pg_url, redis_prefix):
    redis_url, prefix = redis_prefix
    sink = SmtpSink()
    with NightServer() as server, sink:
        server.pages = site(1)
        mail = (f'[mail]\nhost = "127.0.0.1"\nport = {sink.port}\nsender = "pw <pw@policywatch.test>"\n\n'
                '[[subscriber]]\nemail = "alice@example.org"\n')
        single = write_config(config_body(server), name="single.toml")
        cluster = write_config(config_body(server, f'[cluster]\nredis_url = "{redis_url}"\nkey_prefix = "{prefix}"\n'
                                                   f"idle_seconds = 2\n\n{mail}"),
                               name="cluster.toml", storage=pg_url.replace("+psycopg", ""))
        for night in (1, 2):
            server.pages = site(night)
            server.requests.clear()
            p, workers = _cluster_pass(str(cluster), 3)
            assert p.returncode == 0, p.stderr
            assert [rc for rc, _ in workers] == [0, 0, 0], workers
            fetched = Counter(path for path, _ in server.requests if path != "/robots.txt")
            assert len(fetched) == N_PAGES + 1 and set(fetched.values()) == {1}  # every page exactly once
            p = policywatch("run", "--config", str(single))
            assert p.returncode == 0, p.stderr
        pg = sa.create_engine(pg_url)
        lite = sa.create_engine(f"sqlite:///{tmp_path / 'history.db'}")
        try:
            assert _changes(pg) == _changes(lite) and len(_changes(pg)) == 10  # the same ten fee changes
            for engine in (pg, lite):
                with engine.connect() as c:
                    assert c.execute(sa.text("SELECT count(*) FROM page_versions")).scalar() == N_PAGES + 1 + 10
                    dup = c.execute(sa.text("SELECT page_id, run_id FROM fetches GROUP BY page_id, run_id HAVING count(*) > 1")).all()
                    assert dup == []
            with pg.connect() as c:
                health = c.execute(sa.text("SELECT health FROM runs WHERE id = 2")).scalar()
        finally:
            pg.dispose()
            lite.dispose()
        import json

        health = health if isinstance(health, dict) else json.loads(health)
        assert health["cluster"]["workers_joined"] == 3 and health["not_completed"] == []
        # one digest, sent once by the coordinator, with the ten changes
        digests = [m for m in sink.parsed() if m["To"] == "alice@example.org"]
        assert len(digests) == 1 and digests[0]["Subject"].startswith("policywatch: 10 changes")
    import redis

    assert list(redis.Redis.from_url(redis_url).scan_iter(match=f"{prefix}*")) == []  # nothing leaks to the next night


def test_a_worker_killed_mid_pass(write_config, pg_url, redis_prefix):
    redis_url, prefix = redis_prefix
    with NightServer() as server:
        server.pages = site(1)
        server.delay = 0.05
        cfg = str(write_config(config_body(server, f'[cluster]\nredis_url = "{redis_url}"\nkey_prefix = "{prefix}"\n'
                                                   "idle_seconds = 2\n"),
                               storage=pg_url.replace("+psycopg", "")))
        victim = _spawn("worker", "--config", cfg, "--wait", "60")
        survivor = _spawn("worker", "--config", cfg, "--wait", "60")
        time.sleep(0.5)
        coord = _spawn("run", "--config", cfg)
        engine = sa.create_engine(pg_url)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    with engine.connect() as c:
                        n = c.execute(sa.text("SELECT count(*) FROM fetches")).scalar()
                except sa.exc.ProgrammingError:
                    n = 0
                if n >= 30:
                    break
                time.sleep(0.2)
            victim.send_signal(signal.SIGKILL)
            out, errs = coord.communicate(timeout=300)
            assert coord.returncode == 0, errs
            assert survivor.wait(timeout=120) == 0
            with engine.connect() as c:
                dup = c.execute(sa.text("SELECT page_id FROM fetches GROUP BY page_id, run_id HAVING count(*) > 1")).all()
                fetched = c.execute(sa.text("SELECT count(*) FROM fetches WHERE run_id = 1")).scalar()
                status, health = c.execute(sa.text("SELECT status, health FROM runs WHERE id = 1")).one()
        finally:
            engine.dispose()
        assert dup == []  # nothing recorded twice
        assert status == "completed"
        import json

        health = health if isinstance(health, dict) else json.loads(health)
        # the survivor finished the frontier; whatever the victim held is listed for the next pass, not lost silently
        assert fetched + len(health["not_completed"]) >= 1 + N_PAGES // 12
        assert health["cluster"]["workers_joined"] == 2
