"""Reports: scraped HTML is hostile — it is shown as text, never executed or interpreted."""
from __future__ import annotations

from datetime import datetime, timezone

from reports.data import ReportData
from reports.render import render_html, render_markdown
from storage.models import Change, Run

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)"> [click](javascript:alert(3))'


def _data() -> ReportData:
    run = Run(id=7, started_at=datetime(2024, 3, 22, tzinfo=timezone.utc), status="completed", pages_fetched=1, pages_new=0,
              pages_changed=1, pages_unchanged=0, pages_failed=0)
    ch = Change(id=1, page_id=1, run_id=7, detected_at=datetime(2024, 3, 22, tzinfo=timezone.utc), kind="changed",
                significance="high", topics=["innovation-stream"], details_released=True, url="https://www.canada.ca/en/x.html",
                title=EVIL, summary=EVIL, details={"blocks": [{"op": "changed", "kind": "p", "section": [EVIL], "text": EVIL, "before": "x",
                                                              "inline": [["del", "x"], ["ins", EVIL]]}],
                                                   "facts": {"changed": [{"type": "fee", "before": EVIL, "after": "$1", "section": []}]},
                                                   "reasons": [EVIL]})
    return ReportData(run, [ch], [("Innovation Stream", [ch])], [], {"fetched": 1, "failed": 0, "failure_rate": 0.0,
                      "failures_by_class": {}, "failures": [], "selector_drift": [], "stale_sources": [], "stale_after": 3,
                      "zero_fetches": False})


def test_html_escapes_scraped_text():
    html = render_html(_data())
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Content-Security-Policy" in html  # and no script could run even if something slipped through


def test_markdown_neutralizes_html_and_links():
    md = render_markdown(_data())
    import re

    assert "<script>" not in md and "<img" not in md
    assert not re.search(r"(?<!\\)\]\(javascript:", md)  # the link syntax is escaped: \](javascript:
    assert "&lt;script&gt;" in md
