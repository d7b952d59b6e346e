#!/usr/bin/env python3
"""Benchmark: extraction + diff + facts for a ~100 KB canada.ca page, and the unchanged-content shortcuts.

Usage: python bench/bench_detect.py [--repeat N] [--out bench/results/detect.json]

Builds a real-size page (a real canada.ca GCWeb shell + the text of real IRCC instruction pages), changes one
fee, and times, as medians over N runs in this process:
  - extract (lxml parse + blocks)                    — the per-page cost on every noise-only night
  - extract + diff + facts + significance (detect)   — the cost when content changed
  - raw-body hash only                               — byte-identical night (no parse at all)
  - BeautifulSoup(html.parser) parse alone            — the baseline this design avoids, measured side by side
Figures are written to the --out file; nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def instruction_text(fee: str) -> str:
    """The text of three real IRCC instruction pages (about 100 KB as a page), the fee set to `fee`."""
    md = ""
    for name in (
        "ircc-pdi-work-permit-h1b-visa__2024-09-27.md",
        "ircc-pdi-c41-c46-family-high-skilled__2025-02-03.md",
        "ircc-pdi-innovation-stream-pilot__2024-12-24.md",
    ):
        md += (ROOT / "tests" / "eval" / "pages" / name).read_text(encoding="utf-8") + "\n\n"
    return md.replace("$155", fee)


def build_page(fee: str = "$155") -> bytes:
    from policywatch.monitor.demo import _shell, gcweb_page, markdown_to_html

    title, body = markdown_to_html(instruction_text(fee))
    return gcweb_page(_shell(1), title, body, "2025-02-03").encode("utf-8")


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 3)


def build_generic_page(fee: str = "$155") -> bytes:
    """The same text on another government template: the eval gate's ASP.NET WebForms shell (the whole body
    in one <form>, a table layout, a left column), so the generic extractor's landmark and density work is
    timed on a page of the same size."""
    from policywatch.monitor.demo import markdown_to_html

    title, body = markdown_to_html(instruction_text(fee))
    site = ROOT / "tests" / "eval" / "sites" / "aspnet-pnp"
    shell = (site / "shell.html").read_text(encoding="utf-8")
    html = (
        shell.replace("@@JUNK@@", "")
        .replace("@@BANNER@@", "")
        .replace("@@CONTENT@@", f"<h1>{title}</h1>{body}")
        .replace("@@SIDEBAR@@", (site / "sidebar.html").read_text(encoding="utf-8"))
        .replace("@@STATE@@", "a1b2c3")
        .replace("@@NIGHT@@", "1")
    )
    return html.encode("utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "detect.json")
    args = ap.parse_args()

    from bs4 import BeautifulSoup

    from policywatch.monitor.config import parse_config
    from policywatch.monitor.detection.detect import detect_html
    from policywatch.monitor.detection.extract import extract_html

    topics = parse_config({"crawl": {"allowed_domains": ["www.canada.ca"]}}).topics

    def detector(old_html: bytes, new_html: bytes, url: str):
        """Extraction of the new page, diff against the old one, facts, meaning and summary: one call."""
        old = extract_html(old_html, url)
        old_state = {"blocks": old.blocks, "meta": old.meta, "text": old.text}

        def detect():
            ex = extract_html(new_html, url)
            return detect_html(
                url=url,
                title=ex.title,
                old=old_state,
                new_blocks=ex.blocks,
                new_meta=ex.meta,
                watch_topics=[],
                topic_defs=topics,
            )

        return old, detect

    old_html, new_html = build_page("$155"), build_page("$230")
    url = "https://www.canada.ca/en/page.html"
    old, detect = detector(old_html, new_html, url)

    decision = detect()
    results = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "page_bytes": len(new_html),
        "blocks": len(old.blocks),
        "repeat": args.repeat,
        "extract_ms": median_ms(lambda: extract_html(new_html, url), args.repeat),
        "extract_diff_facts_ms": median_ms(detect, args.repeat),
        "raw_hash_only_ms": median_ms(lambda: hashlib.sha256(new_html).hexdigest(), args.repeat),
        "bs4_html_parser_parse_ms": median_ms(
            lambda: BeautifulSoup(new_html, "html.parser"), max(5, args.repeat // 3)
        ),
        "change_found": decision.summary if decision else None,
    }
    g_old, g_new = build_generic_page("$155"), build_generic_page("$230")
    g_url = "https://www.pnp.prairies.example.ca/immigrate/page.aspx"
    g_prev, detect_generic = detector(g_old, g_new, g_url)
    g_decision = detect_generic()
    results["generic"] = {
        "template": "ASP.NET WebForms (tests/eval/sites/aspnet-pnp)",
        "page_bytes": len(g_new),
        "blocks": len(g_prev.blocks),
        "extract_ms": median_ms(lambda: extract_html(g_new, g_url), args.repeat),
        "extract_diff_facts_ms": median_ms(detect_generic, args.repeat),
        "change_found": g_decision.summary if g_decision else None,
    }
    results["bs4_over_extract_ratio"] = round(results["bs4_html_parser_parse_ms"] / results["extract_ms"], 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
