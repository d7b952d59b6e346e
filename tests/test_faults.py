"""The fault catalogue (bench/faults.py) as a test: real passes against a fault-serving loopback server, one
scenario per outcome class. Every fault is recorded with its class, creates no version and no change, the next
real edit is reported exactly once, and the fault shows in the run report."""

from __future__ import annotations

import sys

import pytest

from policywatch.monitor.detection.decode import effective_encoding
from tests.conftest import BIN, ROOT

pytestmark = pytest.mark.slow


def test_fault_catalogue(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import faults
    finally:
        sys.path.pop(0)
    result = faults.run_catalogue(tmp_path, [str(BIN / "policywatch")])
    assert [n["exit"] for n in result["nights"]] == [0, 0, 0, 0], result["nights"]
    wrong = [
        (
            r["fault"],
            r["expected_outcome"],
            r["outcome"],
            r["false_changes"],
            r["lost_changes"],
            r["shown_in_report"],
        )
        for r in result["scenarios"]
        if not r["ok"]
    ]
    assert wrong == []
    assert len(result["scenarios"]) == 16
    assert result["offsite_requests"] == []  # the off-site redirect target never heard from us
    by_fault = {r["fault"]: r for r in result["scenarios"]}
    assert by_fault["429 with Retry-After, then OK"]["attempts"] == 2
    assert "robots.txt" in by_fault["robots.txt disallow"]["message"]


def test_effective_encoding():
    utf8 = "Résidents temporaires".encode()
    assert effective_encoding(utf8, "iso-8859-1") == "utf-8"  # mislabelled UTF-8
    assert effective_encoding("Résidents".encode("latin-1"), "iso-8859-1") == "iso-8859-1"  # real Latin-1
    assert effective_encoding(b"plain ascii", "windows-1252") == "windows-1252"
    assert effective_encoding(utf8, None) == "utf-8"
    assert effective_encoding("日本".encode("shift_jis"), "shift_jis") == "shift_jis"
