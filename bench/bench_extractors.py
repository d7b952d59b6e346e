#!/usr/bin/env python3
"""Benchmark: policywatch's generic extraction beside trafilatura, on the evaluation gate's template sites.

Usage: python bench/bench_extractors.py [--extra-path SITE_PACKAGES] [--out bench/results/extractors.json]

trafilatura is not a dependency: install it anywhere (`python -m venv /tmp/tv && /tmp/tv/bin/pip install
trafilatura lxml_html_clean`) and pass that venv's site-packages with --extra-path. For each labelled pair of
each template site (tests/eval/sites), it counts the pairs whose extracted text differs — what a text-diff
monitor built on that extractor would report — against policywatch's own verdicts (a change reported, and
at medium or above), and times both extractors on the same 110 KB ASP.NET page. Figures go to --out;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extra-path", help="a site-packages directory holding trafilatura")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "extractors.json")
    args = ap.parse_args()
    if args.extra_path:
        sys.path.append(args.extra_path)
    import trafilatura

    from bench.bench_detect import build_generic_page, median_ms
    from policywatch.monitor.detection.extract import extract_html
    from tests.eval import gate

    SEV = {"low": 0, "medium": 1, "high": 2}
    sites = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, case in enumerate(gate.site_cases()):
            texts = [
                trafilatura.extract(night.body, include_tables=True, favor_recall=True) or ""
                for night in case.nights
            ]
            ours = gate.run_case(case, Path(tmp), n)
            row = {
                "substantive": 0,
                "noise": 0,
                "trafilatura_text_changed": {"substantive": 0, "noise": 0},
                "policywatch_reported": {"substantive": 0, "noise": 0},
                "policywatch_medium_or_high": {"substantive": 0, "noise": 0},
            }
            for i, (label, _result, change) in enumerate(ours, start=1):
                kind = label.label
                row[kind] += 1
                row["trafilatura_text_changed"][kind] += texts[i] != texts[i - 1]
                row["policywatch_reported"][kind] += change is not None
                row["policywatch_medium_or_high"][kind] += bool(change) and SEV[change["significance"]] >= 1
            sites[case.name] = row
    page = build_generic_page()
    url = "https://www.pnp.prairies.example.ca/immigrate/page.aspx"
    results = {
        "trafilatura": getattr(trafilatura, "__version__", "?"),
        "sites": sites,
        "extract_ms_110kb_aspnet": {
            "policywatch": median_ms(lambda: extract_html(page, url), 15),
            "trafilatura": median_ms(
                lambda: trafilatura.extract(page, include_tables=True, favor_recall=True)
            ),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
