"""The benchmark scripts run (tiny sizes, no timing assertions), so the harness never rots."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_detect_smoke(tmp_path: Path):
    out = tmp_path / "detect.json"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_detect.py"), "--repeat", "2", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    data = json.loads(out.read_text())
    assert data["page_bytes"] > 100_000 and "$155 → $230" in data["change_found"]


def test_bench_storage_smoke(tmp_path: Path):
    out = tmp_path / "storage.json"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_storage.py"), "--pages", "20", "--nights", "2",
                        "--change-rate", "0.1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    data = json.loads(out.read_text())
    assert data["pages"] == 20 and data["db_bytes"] > 0
