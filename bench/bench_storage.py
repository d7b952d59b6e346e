#!/usr/bin/env python3
"""Benchmark: history database cost on SQLite — bytes per unchanged fetch, total size vs the compressed size of
the distinct content, and a change_log topic/date query.

Usage: python bench/bench_storage.py [--pages N] [--nights K] [--change-rate R] [--out FILE]

Runs the production per-page path (monitor.pagework.PageWork) for N pages × K nights, R of the pages changing
each night (a real fee edit), the others served byte-identical (the 304-like path) — every fetch is recorded.
Writes figures to --out (default bench/results/storage.json); asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--nights", type=int, default=10)
    ap.add_argument("--change-rate", type=float, default=0.01)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "storage.json")
    args = ap.parse_args()

    import sqlalchemy as sa

    from monitor.config import parse_config
    from monitor.demo import _shell, gcweb_page, markdown_to_html
    from monitor.pagework import FetchResult, PageWork
    from storage import open_database
    from storage import queries as q

    md = (ROOT / "tests" / "eval" / "pages" / "ircc-pdi-innovation-stream-pilot__2024-12-24.md").read_text()
    title, body = markdown_to_html(md)
    shell = _shell(1)
    rnd = random.Random(7)
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    db_path = tmp / "bench.db"
    url = f"sqlite:///{db_path}"
    base = "https://www.canada.ca/en/bench/page-{}.html"
    cfg = parse_config({"storage": {"url": url}, "crawl": {"allowed_domains": ["www.canada.ca"]},
                        "watch": [{"url": base.format(i), "topics": ["t%d" % (i % 5)]} for i in range(args.pages)]})
    db = open_database(url)
    state = {i: 0 for i in range(args.pages)}  # edit counter per page
    distinct_compressed = 0

    def page(i: int) -> bytes:
        text = body.replace("$155", f"${155 + state[i]}", 1) + f"<p>Page {i} of the benchmark site.</p>"
        return gcweb_page(shell, f"{title} {i}", text, "2025-01-01").encode()

    sizes = []
    night_secs = []
    for night in range(1, args.nights + 1):
        changing = set(rnd.sample(range(args.pages), max(1, int(args.pages * args.change_rate)))) if night > 1 else set()
        for i in changing:
            state[i] += 1
        with db.session() as s:
            run_id = q.open_run(s).id
        work = PageWork(db, cfg, run_id, first_run=night == 1)
        t = time.perf_counter()
        for i in range(args.pages):
            b = page(i)
            if night == 1 or i in changing:
                distinct_compressed += len(zlib.compress(b, 6))
            work.process(FetchResult(url=base.format(i), status=200, body=b, content_type="text/html"))
        night_secs.append(time.perf_counter() - t)
        with db.session() as s:
            q.finish_run(s, run_id, "completed")
        with db.engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        sizes.append(os.path.getsize(db_path))
    # an unchanged night: size growth per fetch row
    with db.session() as s:
        run_id = q.open_run(s).id
    work = PageWork(db, cfg, run_id, first_run=False)
    before = os.path.getsize(db_path)
    for i in range(args.pages):
        work.process(FetchResult(url=base.format(i), status=200, body=page(i), content_type="text/html"))
    with db.engine.connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        row_bytes = c.exec_driver_sql("SELECT avg(length(coalesce(etag,'')) + length(coalesce(last_modified,'')) + length(coalesce(raw_hash,'')) + length(coalesce(content_hash,'')) + 40) FROM fetches").scalar()
    per_fetch_file_growth = (os.path.getsize(db_path) - before) / args.pages
    query = sa.text("SELECT c.change_id, c.detected_at, c.summary FROM change_log c JOIN change_topics t ON t.change_id = c.change_id "
                    "WHERE t.topic = 't3' AND c.detected_at >= :since ORDER BY c.detected_at")
    times = []
    with db.engine.connect() as c:
        for _ in range(20):
            t = time.perf_counter()
            c.execute(query, {"since": "2000-01-01"}).all()
            times.append((time.perf_counter() - t) * 1000)
    db.dispose()
    total = os.path.getsize(db_path)
    res = {
        "pages": args.pages, "nights": args.nights + 1, "change_rate": args.change_rate,
        "db_bytes": total, "distinct_content_compressed_bytes": distinct_compressed,
        "db_over_distinct_compressed": round(total / distinct_compressed, 2),
        "unchanged_night_file_growth_per_fetch_bytes": round(per_fetch_file_growth, 1),
        "fetch_row_payload_bytes_estimate": round(float(row_bytes), 1),
        "change_log_topic_query_ms_median": round(statistics.median(times), 2),
        "night_seconds": [round(x, 2) for x in night_secs],
        "pages_per_second_first_night": round(args.pages / night_secs[0], 1),
        "pages_per_second_unchanged_night": round(args.pages / statistics.median(night_secs[1:]), 1) if len(night_secs) > 1 else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
