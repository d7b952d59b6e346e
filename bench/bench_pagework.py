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
what lxml's parse alone and `extract_html` alone cost on the same bodies; the same again by page size (under
60, 60–89, 90 KB and more). With `--urlwatch-python` (the python of a venv with urlwatch and html2text), the
CPU of urlwatch's own filters (`xpath: //main` then `html2text`, its classes called on the same bodies in that
interpreter) by size beside them: the peer's per-page work without its fetching. CPU time, not wall time: this
machine kind shares its cores. Figures go to the --out file; nothing is asserted.
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


def _cpu_ms_per_page(fn, items: list, each: list[float] | None = None) -> float:
    """Mean CPU ms per item; `each` (if given) receives every item's own CPU ms, for the by-size figures."""
    start = time.process_time()
    if each is None:
        for item in items:
            fn(item)
    else:
        clock = time.process_time
        for item in items:
            t = clock()
            fn(item)
            each.append((clock() - t) * 1000)
    return round((time.process_time() - start) / len(items) * 1000, 3)


SIZE_BUCKETS = (
    (0, 60),
    (60, 90),
    (90, 1 << 20),
)  # KB: bench/corpus_server.py spreads its pages over 30–120 KB


def _by_size(sizes: list[int], series: dict[str, list[float]]) -> list[dict]:
    """Per size bucket: pages, mean KB, and the mean of each series (CPU ms per page) over the bucket's
    pages."""
    out = []
    for lo, hi in SIZE_BUCKETS:
        idx = [i for i, n in enumerate(sizes) if lo * 1024 <= n < hi * 1024]
        if not idx:
            continue
        label = f"< {hi}" if lo == 0 else f">= {lo}" if hi >= 1 << 20 else f"{lo}-{hi - 1}"
        row: dict = {
            "kb": label,
            "pages": len(idx),
            "avg_kb": round(sum(sizes[i] for i in idx) / len(idx) / 1024, 1),
        }
        for name, values in series.items():
            if len(values) == len(sizes):
                row[name] = round(sum(values[i] for i in idx) / len(idx), 3)
        out.append(row)
    return out


URLWATCH_FILTERS = r"""
import json, sys, time
from urlwatch.filters import FilterBase
class Job:
    def get_location(self): return "bench"
class State:
    job = Job()
state, out, clock = State(), [], time.process_time
data = open(sys.argv[1], "rb").read()
offsets = json.loads(open(sys.argv[2]).read())
for start, end in offsets:
    text = data[start:end].decode("utf-8")  # urlwatch hands str to a str filter chain
    t = clock()
    FilterBase.process("html2text", {}, state, FilterBase.process("xpath", {"path": "//main"}, state, text))
    out.append((clock() - t) * 1000)
print(json.dumps(out))
"""


def _urlwatch_filters_ms(python: str, bodies: list[bytes], tmp: Path) -> list[float]:
    """urlwatch's xpath + html2text filters on each body, CPU ms each, in urlwatch's own interpreter."""
    import subprocess

    offsets, pos = [], 0
    for b in bodies:
        offsets.append((pos, pos + len(b)))
        pos += len(b)
    (tmp / "bodies.bin").write_bytes(b"".join(bodies))
    (tmp / "offsets.json").write_text(json.dumps(offsets))
    (tmp / "uw_filters.py").write_text(URLWATCH_FILTERS)
    p = subprocess.run(
        [python, str(tmp / "uw_filters.py"), str(tmp / "bodies.bin"), str(tmp / "offsets.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(p.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument(
        "--urlwatch-python", help="python of a venv with urlwatch + html2text: time its filters by size too"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pagework.json")
    args = ap.parse_args()

    from corpus_server import Corpus

    from policywatch.monitor.config import parse_config
    from policywatch.monitor.detection.decode import parse_html
    from policywatch.monitor.detection.extract import extract_html
    from policywatch.monitor.pagework import FetchResult, PageWork
    from policywatch.storage import open_database
    from policywatch.storage import queries as q

    n = args.pages
    corpus = Corpus(n)
    urls = [f"http://127.0.0.1:1/en/p/{i}.html" for i in range(n)]
    rows: dict[str, dict] = {}
    each: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'pw.db'}"
        cfg = parse_config(
            {
                "storage": {"url": db_url},
                "crawl": {"allowed_domains": ["127.0.0.1:1"]},
                "watch": [{"url": u} for u in urls],
            }
        )
        db = open_database(db_url)
        for night, (name, mode) in enumerate(
            (("new", "first"), ("304", "same"), ("noise", "noise"), ("change", "change")), start=1
        ):
            corpus.set_night(night, mode, 0.01)
            if mode == "same":
                items = [FetchResult(url=u, outcome="not_modified", status=304) for u in urls]
            else:
                items = [
                    FetchResult(
                        url=u,
                        status=200,
                        body=corpus.body(i),
                        content_type="text/html; charset=utf-8",
                        etag=corpus.etag(i),
                    )
                    for i, u in enumerate(urls)
                ]
            with db.session() as s:
                run_id = q.open_run(s).id
            work = PageWork(db, cfg, run_id, first_run=night == 1)
            results: list[str] = []
            each[name] = []
            ms = _cpu_ms_per_page(
                lambda it, r=results, w=work: r.append(w.process(it).result), items, each[name]
            )
            with db.session() as s:
                q.finish_run(s, run_id, "completed")
            rows[name] = {
                "cpu_ms_per_page": ms,
                "results": {r: results.count(r) for r in sorted(set(results))},
            }
            print(name, rows[name], flush=True)
        db.dispose()
        db_bytes = (Path(tmp) / "pw.db").stat().st_size
    corpus.set_night(1, "first", 0)
    bodies = [corpus.body(i) for i in range(n)]
    each["lxml_parse"], each["extract_html"] = [], []
    baseline = {
        "lxml_parse_ms_per_page": _cpu_ms_per_page(
            lambda b: parse_html(b, "utf-8"), bodies, each["lxml_parse"]
        ),
        "extract_ms_per_page": _cpu_ms_per_page(
            lambda b: extract_html(b, urls[0], encoding="utf-8"), bodies, each["extract_html"]
        ),
    }
    if args.urlwatch_python:
        with tempfile.TemporaryDirectory() as tmp:
            each["urlwatch_filters"] = _urlwatch_filters_ms(args.urlwatch_python, bodies, Path(tmp))
        baseline["urlwatch_filters_ms_per_page"] = round(sum(each["urlwatch_filters"]) / n, 3)
    print("baseline", baseline, flush=True)
    by_size = _by_size([len(b) for b in bodies], {f"{k}_ms": v for k, v in each.items()})
    for row in by_size:
        print("size", row, flush=True)
    result = {
        "pages": n,
        "avg_page_kb": round(sum(map(len, bodies)) / n / 1024, 1),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "paths": rows,
        "baseline": baseline,
        "by_size": by_size,
        "new_page_vs_parse_alone": round(
            rows["new"]["cpu_ms_per_page"] / baseline["lxml_parse_ms_per_page"], 2
        ),
        "db_bytes_after_4_nights": db_bytes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("→", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
