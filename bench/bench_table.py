#!/usr/bin/env python3
"""Write the whole-pass table (policywatch beside urlwatch, both corpora) into BENCHMARKS.md from the figures
`bench/bench_crawl.py` wrote, with the commit and date they were measured at: `make bench-crawl` runs both and
this, so the table is never older than the code it describes.

Usage: python bench/bench_table.py [--pages 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench-crawl:start -->", "<!-- bench-crawl:end -->"
CORPORA = (("", "synthetic (54 KB of text a page)"), ("-real", "real canada.ca captures"))


def _commit() -> str:
    git = ["git", "-C", str(ROOT)]
    rev = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    # (the figures and this file are what a measurement writes: they do not make the code measured another)
    mine = ["--", ".", ":!bench/results", ":!BENCHMARKS.md"]
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no", *mine], capture_output=True, text=True
    )
    return rev + (" + uncommitted changes" if dirty.stdout.strip() else "")


def table(pages: int) -> str:
    rows = [
        "| corpus | night | policywatch | urlwatch | speed vs urlwatch | CPU per page (pw / urlwatch) |",
        "|---|---|---|---|---|---|",
    ]
    for suffix, name in CORPORA:
        path = ROOT / "bench" / "results" / f"crawl-{pages}{suffix}.json"
        if not path.exists():
            rows.append(f"| {name} | not measured (`{path.relative_to(ROOT)}` missing) | | | | |")
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        by = {(r["tool"], r["night"]): r for r in data["rows"]}
        for night in sorted({n for _, n in by}):
            pw, uw = by.get(("policywatch", night)), by.get(("urlwatch", night))
            if pw is None or uw is None:
                continue
            pw_cell = (
                f"{pw['seconds']:.1f} s, {pw['cpu_seconds']:.1f} s CPU, tree {pw['peak_rss_tree_mb']:.0f} MB"
            )
            uw_cell = f"{uw['seconds']:.1f} s, {uw['cpu_seconds']:.1f} s CPU, {uw['peak_rss_tree_mb']:.0f} MB"
            per_page = f"{pw['cpu_seconds'] / pages * 1000:.1f} / {uw['cpu_seconds'] / pages * 1000:.1f} ms"
            speed = uw["seconds"] / pw["seconds"]
            rows.append(
                f"| {name} | {night} {pw['mode']} | {pw_cell} | {uw_cell} | **{speed:.2f}×** | {per_page} |"
            )
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    head = (
        f"{pages} pages a corpus, measured {when} at commit {_commit()} by `make bench-crawl` (politeness "
        "off, both tools' state on tmpfs, urlwatch 2.29 with `xpath: //main` + `html2text`, each night's "
        "figures from one run, both tools on the same night in the same run; `bench/results/crawl-"
        f"{pages}.json`, `crawl-{pages}-real.json`):"
    )
    return f"{START}\n{head}\n\n" + "\n".join(rows) + f"\n{END}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=2000)
    args = ap.parse_args()
    bench = ROOT / "BENCHMARKS.md"
    text = bench.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"BENCHMARKS.md has no {START} … {END} section to write")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    bench.write_text(before + table(args.pages) + after, encoding="utf-8")
    print(f"BENCHMARKS.md: the whole-pass table at {args.pages} pages written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
