#!/usr/bin/env python3
"""Benchmark: history database cost on SQLite — bytes per unchanged fetch, total size vs the compressed size
of the distinct content, and a change_log topic/date query.

Usage: python bench/bench_storage.py [--pages N] [--nights K] [--change-rate R] [--template real|text-heavy]
[--out FILE]

Templates: `real` (default) — the three real canada.ca captures in tests/eval/noise (24–34 KB, GCWeb shell,
real menus and footer), each page made unique by a paragraph of its own; `text-heavy` — a long IRCC
instruction page (≈15 KB of text per page) in the demo shell, the worst case for the plain `versions.text`
column.

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
    ap.add_argument(
        "--year-changes",
        type=int,
        default=36500,
        help="changes to add across 365 days for the year-long change_log query (1 %% of 10,000 pages a "
        "night)",
    )
    ap.add_argument("--template", choices=("real", "text-heavy"), default="real")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "storage.json")
    args = ap.parse_args()

    import sqlalchemy as sa

    from policywatch.monitor.config import parse_config
    from policywatch.monitor.demo import _shell, gcweb_page, markdown_to_html
    from policywatch.monitor.pagework import FetchResult, PageWork
    from policywatch.storage import open_database
    from policywatch.storage import queries as q

    md = (ROOT / "tests" / "eval" / "pages" / "ircc-pdi-innovation-stream-pilot__2024-12-24.md").read_text()
    title, body = markdown_to_html(md)
    shell = _shell(1)
    rnd = random.Random(7)
    tmp = Path(tempfile.mkdtemp(prefix="pw-bench-"))
    db_path = tmp / "bench.db"
    url = f"sqlite:///{db_path}"
    base = "https://www.canada.ca/en/bench/page-{}.html"
    cfg = parse_config(
        {
            "storage": {"url": url},
            "crawl": {"allowed_domains": ["www.canada.ca"]},
            "watch": [{"url": base.format(i), "topics": [f"t{i % 5}"]} for i in range(args.pages)],
        }
    )
    db = open_database(url)
    state = {i: 0 for i in range(args.pages)}  # edit counter per page
    distinct_compressed = 0

    captures = [
        f.read_text(encoding="utf-8")
        for f in sorted((ROOT / "tests" / "eval" / "noise").glob("*__20241221T1201Z.html"))
    ]
    assert captures, "tests/eval/noise: the real canada.ca captures are missing"

    def page(i: int) -> bytes:
        if args.template == "text-heavy":
            text = body.replace("$155", f"${155 + state[i]}", 1) + f"<p>Page {i} of the benchmark site.</p>"
            return gcweb_page(shell, f"{title} {i}", text, "2025-01-01").encode()
        html = captures[i % len(captures)]
        own = (
            f"<h2>Program {i}</h2><p>The processing fee for program {i} is ${155 + state[i]} per applicant "
            f"(reference {i * 7919 % 100000:05d}).</p>"
        )
        at = html.index(">", html.index("<main")) + 1
        return (html[:at] + own + html[at:]).encode("utf-8")

    sizes = []
    night_secs = []
    for night in range(1, args.nights + 1):
        changing = (
            set(rnd.sample(range(args.pages), max(1, int(args.pages * args.change_rate))))
            if night > 1
            else set()
        )
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
        row_bytes = c.exec_driver_sql(
            "SELECT avg(length(coalesce(etag,'')) + length(coalesce(last_modified,'')) + "
            "length(coalesce(raw_hash,'')) + length(coalesce(content_hash,'')) + 40) FROM fetches"
        ).scalar()
    per_fetch_file_growth = (os.path.getsize(db_path) - before) / args.pages
    query = sa.text(
        "SELECT c.change_id, c.detected_at, c.summary FROM change_log c JOIN change_topics t ON t.change_id "
        "= c.change_id "
        "WHERE t.topic = 't3' AND c.detected_at >= :since ORDER BY c.detected_at"
    )
    times = []
    with db.engine.connect() as c:
        for _ in range(20):
            t = time.perf_counter()
            c.execute(query, {"since": "2000-01-01"}).all()
            times.append((time.perf_counter() - t) * 1000)
    with db.engine.connect() as c:
        breakdown = {
            "bodies_data": c.exec_driver_sql("SELECT coalesce(sum(length(data)), 0) FROM bodies").scalar(),
            "versions_text": c.exec_driver_sql(
                "SELECT coalesce(sum(length(CAST(text AS BLOB))), 0) FROM versions"
            ).scalar(),
            "versions_blocks": c.exec_driver_sql(
                "SELECT coalesce(sum(length(blocks)), 0) FROM versions"
            ).scalar(),
            "fetch_rows": c.exec_driver_sql("SELECT count(*) FROM fetches").scalar(),
            "versions": c.exec_driver_sql("SELECT count(*) FROM versions").scalar(),
        }
    with db.engine.connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    total = os.path.getsize(
        db_path
    )  # the size figures end here: the year of changes below is for the query only
    year = _year_query(db, args.year_changes, args.pages)
    db.dispose()
    res = {
        "pages": args.pages,
        "nights": args.nights + 1,
        "change_rate": args.change_rate,
        "db_bytes": total,
        "distinct_content_compressed_bytes": distinct_compressed,
        "db_over_distinct_compressed": round(total / distinct_compressed, 2),
        "template": args.template,
        "breakdown_bytes": breakdown,
        "year_of_changes": year,
        "unchanged_night_file_growth_per_fetch_bytes": round(per_fetch_file_growth, 1),
        "fetch_row_payload_bytes_estimate": round(float(row_bytes), 1),
        "change_log_topic_query_ms_median": round(statistics.median(times), 2),
        "night_seconds": [round(x, 2) for x in night_secs],
        "pages_per_second_first_night": round(args.pages / night_secs[0], 1),
        "pages_per_second_unchanged_night": round(args.pages / statistics.median(night_secs[1:]), 1)
        if len(night_secs) > 1
        else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


def _year_query(db, n_changes: int, pages: int) -> dict:
    """A year of history for the analysts' question "changes to pages tagged X between two dates": n_changes
    change rows (with real-looking summaries and topics) spread over 365 nights, then the documented
    change_log + change_topics query, for a quarter and for the whole year (medians of 20). Added after the
    size figures are taken, so they do not count in them."""
    import datetime as dt
    import statistics as st

    import sqlalchemy as sa

    from policywatch.storage.models import Change, Run

    rnd = random.Random(11)
    start = dt.datetime(2025, 1, 1, 2, 0, tzinfo=dt.UTC)
    with db.session() as s:
        page_ids = [r[0] for r in s.execute(sa.text("SELECT id, url FROM pages ORDER BY id")).all()][:pages]
        urls = dict(s.execute(sa.text("SELECT id, url FROM pages")).all())
        per_night = max(1, n_changes // 365)
        for night in range(365):
            when = start + dt.timedelta(days=night)
            run = Run(started_at=when, finished_at=when, status="completed", scope="bench-year")
            s.add(run)
            s.flush()
            rows = []
            for pid in rnd.sample(page_ids, min(per_night, len(page_ids))):
                topics = [f"t{pid % 5}"] + (["fees"] if rnd.random() < 0.3 else [])
                rows.append(
                    dict(
                        page_id=pid,
                        run_id=run.id,
                        detected_at=when,
                        kind="changed",
                        significance="medium",
                        topics=topics,
                        details_released=False,
                        url=urls[pid],
                        title=f"Page {pid}",
                        summary=f"Fee changed: ${rnd.randint(100, 900)} → ${rnd.randint(100, 900)}",
                        details={"facts": {"changed": [{"type": "fee"}]}},
                    )
                )
            s.execute(sa.insert(Change), rows)
    q = sa.text(
        "SELECT c.change_id, c.detected_at, c.summary FROM change_log c JOIN change_topics t ON t.change_id "
        "= c.change_id "
        "WHERE t.topic = :topic AND c.detected_at >= :since AND c.detected_at < :until ORDER BY c.detected_at"
    )
    out = {"changes": per_night * 365}
    with db.engine.connect() as c:
        for label, since, until in (
            ("quarter", "2025-04-01", "2025-07-01"),
            ("year", "2025-01-01", "2026-01-01"),
        ):
            times, n = [], 0
            for _ in range(20):
                t = time.perf_counter()
                n = len(c.execute(q, {"topic": "t3", "since": since, "until": until}).all())
                times.append((time.perf_counter() - t) * 1000)
            out[f"{label}_rows"] = n
            out[f"{label}_query_ms_median"] = round(st.median(times), 2)
    return out


if __name__ == "__main__":
    sys.exit(main())
