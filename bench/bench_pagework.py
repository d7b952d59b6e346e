#!/usr/bin/env python3
"""Benchmark: the per-page work alone (classify, extract, hash, compare, store), in this process, per path.

Usage: python bench/bench_pagework.py [--pages N] [--out bench/results/pagework.json]

What the crawl's page-work processes do for each response, without Scrapy or processes around it, on the bench
corpus (bench/corpus_server.py pages, 30–120 KB, generated in memory) and a fresh SQLite history:
  - new      the first pass: every page is new (parse, blocks, content hash, body packed, five rows written)
  - noise    same content, bytes differ outside <main> (fingerprint match: no parse)
  - change   like noise, with a real fee edit on 1 % of the pages (those parsed, diffed, stored)
  - 304      the server answered Not Modified (one fetch row, the page marked seen)
Per path: CPU milliseconds per page, and — measured in the same run, as the baseline to read them against —
what lxml's parse alone and `extract_html` alone cost on the same bodies. CPU time, not wall time: this machine
kind shares its cores. Figures go to the --out file; nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _cpu_ms_per_page(fn, items: list) -> float:
    start = time.process_time()
    for item in items:
        fn(item)
    return round((time.process_time() - start) / len(items) * 1000, 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pagework.json")
    args = ap.parse_args()

    from corpus_server import Corpus

    from monitor.config import parse_config
    from monitor.extract import extract_html, parse_html
    from monitor.pagework import FetchResult, PageWork
    from storage import open_database
    from storage import queries as q

    n = args.pages
    corpus = Corpus(n)
    urls = [f"http://127.0.0.1:1/en/p/{i}.html" for i in range(n)]
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'pw.db'}"
        cfg = parse_config({"storage": {"url": db_url}, "crawl": {"allowed_domains": ["127.0.0.1:1"]},
                            "watch": [{"url": u} for u in urls]})
        db = open_database(db_url)
        for night, (name, mode) in enumerate((("new", "first"), ("304", "same"), ("noise", "noise"),
                                              ("change", "change")), start=1):
            corpus.set_night(night, mode, 0.01)
            if mode == "same":
                items = [FetchResult(url=u, outcome="not_modified", status=304) for u in urls]
            else:
                items = [FetchResult(url=u, status=200, body=corpus.body(i), content_type="text/html; charset=utf-8",
                                     etag=corpus.etag(i)) for i, u in enumerate(urls)]
            with db.session() as s:
                run_id = q.open_run(s).id
            work = PageWork(db, cfg, run_id, first_run=night == 1)
            results: list[str] = []
            ms = _cpu_ms_per_page(lambda it: results.append(work.process(it).result), items)
            with db.session() as s:
                q.finish_run(s, run_id, "completed")
            rows[name] = {"cpu_ms_per_page": ms, "results": {r: results.count(r) for r in sorted(set(results))}}
            print(name, rows[name], flush=True)
        db.dispose()
        db_bytes = (Path(tmp) / "pw.db").stat().st_size
    corpus.set_night(1, "first", 0)
    bodies = [corpus.body(i) for i in range(n)]
    baseline = {"lxml_parse_ms_per_page": _cpu_ms_per_page(lambda b: parse_html(b, "utf-8"), bodies),
                "extract_ms_per_page": _cpu_ms_per_page(lambda b: extract_html(b, urls[0], encoding="utf-8"), bodies)}
    print("baseline", baseline, flush=True)
    result = {"pages": n, "avg_page_kb": round(sum(map(len, bodies)) / n / 1024, 1), "machine": platform.machine(),
              "cpu_count": os.cpu_count(), "python": platform.python_version(), "paths": rows, "baseline": baseline,
              "new_page_vs_parse_alone": round(rows["new"]["cpu_ms_per_page"] / baseline["lxml_parse_ms_per_page"], 2),
              "db_bytes_after_4_nights": db_bytes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("→", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
