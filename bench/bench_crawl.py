#!/usr/bin/env python3
"""Benchmark: whole passes of policywatch vs a bare Scrapy spider (the ceiling) vs urlwatch (the peer), same
URLs, same nights, same run.

Usage: python bench/bench_crawl.py [--pages N] [--urlwatch PATH] [--change-rate R] [--out FILE]
       python bench/bench_crawl.py --polite [--pages 200] [--nights 2]

`--polite`: policywatch alone at the shipped politeness (the `[crawl]` defaults: download_delay, AutoThrottle,
robots.txt), against its floor, pages × download_delay (Scrapy spaces requests to one host by the delay
whatever the concurrency): the night a user actually gets.

The corpus (bench/corpus_server.py, its own process): N pages in canada.ca's real GCWeb shell, 30–120 KB each.
Nights: 1 first pass; 2 unchanged, byte-identical (conditional requests get 304); 3 unchanged, every page's
bytes differ by noise only (rotated script hash, analytics token: the common case on canada.ca); 4 noise plus
a real fee edit on R of the pages. Politeness is off for every tool (no delay, no AutoThrottle, 16
connections), so CPU is what is compared. Per night and tool: wall time (process start to exit), pages/s, CPU
seconds of the process tree, peak RSS (largest process, and the whole process tree: policywatch runs a pass
and its crawl), and for policywatch the database bytes added and the changes reported. The bare spider sends
the same conditional requests (the ETag and Last-Modified it got the night before), so it is the ceiling on
the 304 night too. Writes bench/results/crawl-N.json; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NIGHTS = [(1, "first"), (2, "same"), (3, "noise"), (4, "change")]
BARE = '''
import json, os
import scrapy
class Bare(scrapy.Spider):
    """Fetch only, with the conditional requests any incremental crawler sends: each night it asks with the
    ETag and Last-Modified it got last (a file beside the URLs), so on the 304 night it does the same fetches
    as policywatch and is that night's ceiling too."""
    name = "bare"
    custom_settings = {"HTTPERROR_ALLOWED_CODES": [304]}
    def __init__(self, urls=None, validators=None, **kw):
        super().__init__(**kw)
        self.urls = open(urls).read().split()
        self.path = validators
        self.validators = json.load(open(validators)) if os.path.exists(validators) else {}
        self.statuses = {}
    async def start(self):
        for u in self.urls:
            etag, modified = self.validators.get(u, (None, None))
            headers = {k: v for k, v in (("If-None-Match", etag), ("If-Modified-Since", modified)) if v}
            yield scrapy.Request(u, dont_filter=True, headers=headers)
    def parse(self, response):
        self.statuses[str(response.status)] = self.statuses.get(str(response.status), 0) + 1
        if response.status == 200:
            h = response.headers
            self.validators[response.url] = [(h.get("ETag") or b"").decode() or None,
                                              (h.get("Last-Modified") or b"").decode() or None]
    def closed(self, reason):
        with open(self.path, "w") as f:
            json.dump(self.validators, f)
        with open(self.path + ".statuses", "w") as f:
            json.dump(self.statuses, f)
'''


def _tree(root: int) -> list[int]:
    """root and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _proc_kb(pid: int, name: str, field: str) -> int:
    """A kB figure from /proc/<pid>/<name> (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _rss_kb(pid: int) -> int:
    return _proc_kb(pid, "status", "VmRSS:")


def _pss_kb(pid: int) -> int:
    """Proportional set size: each shared page (the interpreter, libraries) divided among the processes that
    map it, so a tree's PSS adds up to the memory it really occupies; its RSS sum counts shared pages once per
    process."""
    return _proc_kb(pid, "smaps_rollup", "Pss:")


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict:
    """Wall time, CPU time of the whole process tree, and peak RSS sampled every 0.1 s: of the largest single
    process and of the whole tree (the pass, its crawl and the page-work processes together), and the tree's
    peak PSS sampled every second (reading it costs more; see _pss_kb for why both)."""
    started = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    peak_one = peak_sum = peak_pss = 0
    samples = 0
    while p.poll() is None:
        tree = _tree(p.pid)
        rss = [_rss_kb(pid) for pid in tree]
        peak_one, peak_sum = max(peak_one, max(rss, default=0)), max(peak_sum, sum(rss))
        if samples % 10 == 0:
            peak_pss = max(peak_pss, sum(_pss_kb(pid) for pid in tree))
        samples += 1
        time.sleep(0.1)
    out, err = p.communicate()
    seconds = time.monotonic() - started
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru.ru_utime + ru.ru_stime
    cpu_before = timed.cpu_seen  # type: ignore[attr-defined]
    timed.cpu_seen = cpu  # type: ignore[attr-defined]
    return {
        "exit": p.returncode,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu - cpu_before, 2),
        "peak_rss_mb": round(peak_one / 1024, 1),
        "peak_rss_tree_mb": round(peak_sum / 1024, 1),
        "peak_pss_tree_mb": round(peak_pss / 1024, 1),
        "stdout": out[-500:],
        "stderr": err[-500:],
    }


timed.cpu_seen = 0.0  # type: ignore[attr-defined]


def db_bytes(path: Path) -> int:
    return sum(
        f.stat().st_size
        for f in path.parent.glob(path.name + "*")
        if f.is_file() and not f.name.endswith(".lock")
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--change-rate", type=float, default=0.01)
    ap.add_argument(
        "--urlwatch", help="path of a urlwatch executable (pip install urlwatch html2text); omit to skip"
    )
    ap.add_argument("--no-bare", action="store_true", help="skip the bare Scrapy ceiling")
    ap.add_argument(
        "--polite",
        action="store_true",
        help="policywatch alone at the shipped [crawl] defaults, against pages × download_delay",
    )
    ap.add_argument(
        "--nights",
        type=int,
        default=len(NIGHTS),
        choices=range(1, len(NIGHTS) + 1),
        help="run the first N nights only (e.g. 2: first pass and the 304 night, for a large N)",
    )
    ap.add_argument(
        "--corpus",
        choices=("synthetic", "real"),
        default="synthetic",
        help="synthetic pages (54 KB of text each) or copies of real canada.ca captures (corpus_server.py)",
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.polite:
        args.no_bare, args.urlwatch = True, None
    suffix = ("-real" if args.corpus == "real" else "") + ("-polite" if args.polite else "")
    out = args.out or ROOT / "bench" / "results" / f"crawl-{args.pages}{suffix}.json"
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "corpus_server.py"),
            "--pages",
            str(args.pages),
            "--corpus",
            args.corpus,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(server.stdout.readline())  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    rows: list[dict] = []
    try:
        # Both tools' state on tmpfs: on disk, urlwatch's commit per page would measure the disk, not the tool
        shm = Path("/dev/shm")
        with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
            work = Path(tmp)
            urls = [f"{base}/en/p/{i}.html" for i in range(args.pages)]
            (work / "urls.txt").write_text("\n".join(urls), encoding="utf-8")
            (work / "bare.py").write_text(BARE, encoding="utf-8")
            watches = "".join(f'[[watch]]\nurl = "{u}"\n' for u in urls)
            politeness = (
                ""
                if args.polite
                else "download_delay = 0\nautothrottle = false\nretries = 0\nconcurrency_per_domain = 16\n"
            )
            (work / "pw.toml").write_text(
                f'[storage]\nurl = "sqlite:///{(work / "pw.db").as_posix()}"\n\n[reports]\ndir = '
                f'"{(work / "reports").as_posix()}"\n\n'
                f'[crawl]\nallowed_domains = ["127.0.0.1:{port}"]\n{politeness}\n{watches}',
                encoding="utf-8",
            )
            (work / "urls.yaml").write_text(
                "\n---\n".join(
                    f"name: p{i}\nurl: {u}\nfilter:\n  - xpath: //main\n  - html2text"
                    for i, u in enumerate(urls)
                )
                + "\n",
                encoding="utf-8",
            )
            (work / "uw-config.yaml").write_text(
                "report:\n  stdout:\n    enabled: false\n  text:\n    details: true\n", encoding="utf-8"
            )
            env = {**os.environ, "SCRAPY_SETTINGS_MODULE": ""}
            for night, mode in NIGHTS[: args.nights]:
                urllib.request.urlopen(f"{base}/__night?n={night}&mode={mode}&rate={args.change_rate}").read()
                if not args.no_bare:
                    r = timed(
                        [
                            sys.executable,
                            "-m",
                            "scrapy",
                            "runspider",
                            str(work / "bare.py"),
                            "-a",
                            f"urls={work / 'urls.txt'}",
                            "-a",
                            f"validators={work / 'bare-validators.json'}",
                            "-s",
                            "CONCURRENT_REQUESTS=16",
                            "-s",
                            "CONCURRENT_REQUESTS_PER_DOMAIN=16",
                            "-s",
                            "LOG_LEVEL=WARNING",
                            "-s",
                            "ROBOTSTXT_OBEY=True",
                            "-s",
                            "DOWNLOAD_DELAY=0",
                            "-s",
                            "TELNETCONSOLE_ENABLED=False",
                        ],
                        env=env,
                        cwd=work,
                    )
                    statuses = (
                        json.loads((work / "bare-validators.json.statuses").read_text())
                        if r["exit"] == 0
                        else {}
                    )
                    rows.append(
                        {
                            "night": night,
                            "mode": mode,
                            "tool": "bare-scrapy",
                            **_rate(r, args.pages),
                            "statuses": statuses,
                        }
                    )
                before = db_bytes(work / "pw.db") if (work / "pw.db").exists() else 0
                r = timed(
                    [
                        sys.executable,
                        "-m",
                        "policywatch.monitor",
                        "run",
                        "--config",
                        str(work / "pw.toml"),
                        "--quiet",
                    ]
                )
                row = {
                    "night": night,
                    "mode": mode,
                    "tool": "policywatch",
                    **_rate(r, args.pages),
                    "db_bytes_added": db_bytes(work / "pw.db") - before,
                }
                con = sqlite3.connect(work / "pw.db")
                row["changes_reported"] = con.execute(
                    "SELECT count(*) FROM changes WHERE run_id = ? AND kind != 'new_page'", (night,)
                ).fetchone()[0]
                row["outcomes"] = dict(
                    con.execute(
                        "SELECT outcome, count(*) FROM fetches WHERE run_id = ? GROUP BY outcome", (night,)
                    ).fetchall()
                )
                con.close()
                rows.append(row)
                if args.urlwatch:
                    r = timed(
                        [
                            args.urlwatch,
                            "--urls",
                            str(work / "urls.yaml"),
                            "--config",
                            str(work / "uw-config.yaml"),
                            "--cache",
                            str(work / "uw-cache.db"),
                            "--hooks",
                            str(work / "none.py"),
                        ]
                    )
                    rows.append({"night": night, "mode": mode, "tool": "urlwatch", **_rate(r, args.pages)})
                for row in rows[-3:]:
                    if row["night"] == night:
                        print({k: v for k, v in row.items() if k not in ("stdout", "stderr")}, flush=True)
    finally:
        server.terminate()
    result = {
        "pages": args.pages,
        "cpu_count": os.cpu_count(),
        "change_rate": args.change_rate,
        "rows": rows,
        "ratios": _ratios(rows),
    }
    if args.polite:
        from policywatch.monitor.config import CrawlSettings

        floor = args.pages * CrawlSettings(allowed_domains=()).download_delay
        result["politeness_floor_s"] = floor
        result["ratios"]["night_seconds_vs_politeness_floor"] = {
            f"night {r['night']} ({r['mode']})": round(r["seconds"] / floor, 3)
            for r in rows
            if r["tool"] == "policywatch"
        }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["ratios"], indent=2), "→", out)
    return 0


def _rate(r: dict, pages: int) -> dict:
    r = dict(r)
    r["pages_per_s"] = round(pages / r["seconds"], 1) if r["seconds"] else None
    if r["exit"] == 0:
        r.pop("stderr")
    r.pop("stdout")
    return r


def _ratios(rows: list[dict]) -> dict:
    by = {(r["night"], r["tool"]): r for r in rows}
    out: dict = {}
    for night, mode in NIGHTS:
        pw = by.get((night, "policywatch"))
        if not pw:
            continue
        entry = {}
        if (night, "bare-scrapy") in by:
            entry["policywatch_throughput_vs_bare_scrapy"] = round(
                by[(night, "bare-scrapy")]["seconds"] / pw["seconds"], 2
            )
        if (night, "urlwatch") in by:
            entry["policywatch_speed_vs_urlwatch"] = round(
                by[(night, "urlwatch")]["seconds"] / pw["seconds"], 2
            )
        out[f"night {night} ({mode})"] = entry
    first, same = by.get((1, "policywatch")), by.get((2, "policywatch"))
    if first and same:
        out["unchanged_304_night_speedup_vs_first"] = round(first["seconds"] / same["seconds"], 2)
    bare_first, bare_same = by.get((1, "bare-scrapy")), by.get((2, "bare-scrapy"))
    if (
        bare_first and bare_same
    ):  # the ceiling's own ratio: how much a 304 night can save with Scrapy fetching
        out["bare_scrapy_304_night_speedup_vs_first"] = round(bare_first["seconds"] / bare_same["seconds"], 2)
    return out


if __name__ == "__main__":
    sys.exit(main())
