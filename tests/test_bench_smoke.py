"""The benchmark scripts run (tiny sizes, no timing assertions), so the harness never rots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(script: str, out: Path, *args: str, timeout: int = 300) -> dict:
    """Run bench/<script> with `--out out` and return the figures it wrote (a failure shows its stderr)."""
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text())


def test_bench_detect_smoke(tmp_path: Path):
    data = _run("bench_detect.py", tmp_path / "detect.json", "--repeat", "2")
    assert data["page_bytes"] > 100_000 and "$155 → $230" in data["change_found"]


def test_bench_storage_smoke(tmp_path: Path):
    data = _run(
        "bench_storage.py",
        tmp_path / "storage.json",
        "--pages",
        "20",
        "--nights",
        "2",
        "--change-rate",
        "0.1",
        "--year-changes",
        "365",
    )
    assert data["pages"] == 20 and data["db_bytes"] > 0
    assert data["breakdown_bytes"]["versions"] >= 20 and data["breakdown_bytes"]["fetch_rows"] == 20 * 3
    assert data["year_of_changes"]["changes"] == 365 and data["year_of_changes"]["year_rows"] > 0


def test_bench_crawl_smoke(tmp_path: Path):
    data = _run(
        "bench_crawl.py", tmp_path / "crawl.json", "--pages", "40", "--change-rate", "0.1", timeout=600
    )
    pw = {r["night"]: r for r in data["rows"] if r["tool"] == "policywatch"}
    assert [pw[n]["exit"] for n in (1, 2, 3, 4)] == [0, 0, 0, 0]
    assert pw[2]["outcomes"] == {"not_modified": 40}  # the unchanged night is answered with 304s
    assert (
        pw[3]["changes_reported"] == 0 and pw[4]["changes_reported"] == 4
    )  # noise is silent, 10 % edits are not
    assert {r["tool"] for r in data["rows"]} == {"policywatch", "bare-scrapy"}
    bare = {r["night"]: r for r in data["rows"] if r["tool"] == "bare-scrapy"}
    assert bare[1]["statuses"] == {"200": 40} and bare[2]["statuses"] == {
        "304": 40
    }  # the ceiling asks conditionally too
    assert "policywatch_throughput_vs_bare_scrapy" in data["ratios"]["night 2 (same)"]
    assert all(r["peak_rss_tree_mb"] >= r["peak_rss_mb"] > 0 and r["cpu_seconds"] > 0 for r in pw.values())
    assert all(0 < r["peak_pss_tree_mb"] <= r["peak_rss_tree_mb"] for r in pw.values())


def test_bench_pagework_smoke(tmp_path: Path):
    data = _run("bench_pagework.py", tmp_path / "pagework.json", "--pages", "100")
    paths = data["paths"]
    assert paths["new"]["results"] == {"new": 100} and paths["304"]["results"] == {"not_modified": 100}
    assert paths["noise"]["results"] == {"unchanged": 100}
    assert paths["change"]["results"] == {
        "changed": 1,
        "unchanged": 99,
    }  # 1 % edited: exactly the edited page
    assert (
        all(v["cpu_ms_per_page"] > 0 for v in paths.values()) and data["baseline"]["extract_ms_per_page"] > 0
    )
    assert sum(row["pages"] for row in data["by_size"]) == 100  # every page in one size bucket
    assert all(row["new_ms"] > 0 and row["extract_html_ms"] > 0 for row in data["by_size"])
