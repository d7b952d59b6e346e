#!/usr/bin/env python3
"""Benchmark: a distributed pass with 1, 2 and 3 crawl workers vs a single-machine pass, same corpus, same run.

Usage: python bench/bench_cluster.py [--pages N] [--pg-admin URL] [--redis URL] [--out FILE]

Each measurement is a first pass into a fresh PostgreSQL database (created and dropped here) over an N-page local
site (a hub linking to every page; politeness off), so the figures compare like with like: wall time, pages/s,
and the coordinator's overhead (a 1-worker distributed pass / a local pass). Writes bench/results/cluster.json;
asserts nothing. Note the machine's core count in the output: workers on one machine share its CPUs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.demo import NightServer  # noqa: E402

PAGE = ('<html><head><title>Page {i}</title></head><body><main property="mainContentOfPage"><h1>Page {i}</h1>'
        "<h2>Fees</h2><p>The processing fee for program {i} is $155.</p>{filler}</main></body></html>")


def site(n: int) -> dict[str, tuple[bytes, str]]:
    filler = "<p>" + "Eligibility requirements and officer instructions. " * 60 + "</p>"
    links = "".join(f'<li><a href="/en/p/{i}.html">Program {i}</a></li>' for i in range(n))
    pages = {"/en/hub.html": (f'<html><body><main property="mainContentOfPage"><h1>Hub</h1><ul>{links}</ul></main>'
                              "</body></html>".encode(), "text/html; charset=utf-8")}
    for i in range(n):
        pages[f"/en/p/{i}.html"] = (PAGE.format(i=i, filler=filler).encode(), "text/html; charset=utf-8")
    return pages


def config(server: NightServer, storage: str, reports: Path, cluster: str = "") -> str:
    return (f'[storage]\nurl = "{storage}"\n\n[reports]\ndir = "{reports.as_posix()}"\n\n'
            f'[crawl]\nallowed_domains = ["127.0.0.1:{server.port}"]\ndownload_delay = 0\nautothrottle = false\n'
            f"retries = 0\nconcurrency_per_domain = 16\n\n[discovery]\nfollow_prefixes = [\"{server.base}/en/p/\"]\n"
            f"depth = 1\nmax_pages = 100000\n\n{cluster}\n[[watch]]\nurl = \"{server.base}/en/hub.html\"\n")


def make_db(admin: str) -> tuple[str, str]:
    import sqlalchemy as sa

    name = f"pwbench_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(admin.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    eng.dispose()
    return name, sa.engine.make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_db(admin: str, name: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(admin.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    eng.dispose()


def one_pass(server: NightServer, admin: str, workers: int, redis_url: str, work: Path) -> dict:
    exe = [sys.executable, "-m", "monitor"]
    name, url = make_db(admin)
    prefix = f"pwbench-{uuid.uuid4().hex[:8]}"
    cluster = f'[cluster]\nredis_url = "{redis_url}"\nkey_prefix = "{prefix}"\nidle_seconds = 2\n' if workers else ""
    cfg = work / f"{name}.toml"
    cfg.write_text(config(server, url, work / name, cluster), encoding="utf-8")
    try:
        subprocess.run([*exe, "db", "upgrade", "--config", str(cfg)], check=True, capture_output=True)
        started = time.monotonic()
        procs = [subprocess.Popen([*exe, "worker", "--config", str(cfg), "--wait", "60"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(workers)]
        p = subprocess.run([*exe, "run", "--config", str(cfg), "--quiet"], capture_output=True, text=True)
        for w in procs:
            w.wait(120)
        seconds = time.monotonic() - started
        fetched = int(p.stdout.split(" fetched")[0].split()[-1]) if " fetched" in p.stdout else 0
        return {"workers": workers or "local", "exit": p.returncode, "seconds": round(seconds, 2), "fetched": fetched,
                "pages_per_s": round(fetched / seconds, 1) if seconds else None}
    finally:
        drop_db(admin, name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--pg-admin", default=os.environ.get("POLICYWATCH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cluster.json")
    args = ap.parse_args()
    rows = []
    with NightServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.pages = site(args.pages)
        for workers in (0, 1, 2, 3):
            rows.append(one_pass(server, args.pg_admin, workers, args.redis, Path(tmp)))
            print(rows[-1])
    local = rows[0]["seconds"]
    result = {"pages": args.pages + 1, "cpu_count": os.cpu_count(), "passes": rows,
              "coordinator_overhead_1_worker": round(rows[1]["seconds"] / local, 2) if local else None,
              "speedup_vs_1_worker": {str(r["workers"]): round(rows[1]["seconds"] / r["seconds"], 2) for r in rows[1:]}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "passes"}), "→", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
