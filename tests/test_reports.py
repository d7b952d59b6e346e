"""Reports: scraped HTML is hostile — it is shown as text, never executed or interpreted."""

from __future__ import annotations

from datetime import UTC, datetime

from policywatch.reports.data import ReportData
from policywatch.reports.render import render_html, render_markdown
from policywatch.storage.models import Change, Run

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)"> [click](javascript:alert(3))'


def _data() -> ReportData:
    run = Run(
        id=7,
        started_at=datetime(2024, 3, 22, tzinfo=UTC),
        status="completed",
        pages_fetched=1,
        pages_new=0,
        pages_changed=1,
        pages_unchanged=0,
        pages_failed=0,
    )
    ch = Change(
        id=1,
        page_id=1,
        run_id=7,
        detected_at=datetime(2024, 3, 22, tzinfo=UTC),
        kind="changed",
        significance="high",
        topics=["innovation-stream"],
        details_released=True,
        url="https://www.canada.ca/en/x.html",
        title=EVIL,
        summary=EVIL,
        details={
            "blocks": [
                {
                    "op": "changed",
                    "kind": "p",
                    "section": [EVIL],
                    "text": EVIL,
                    "before": "x",
                    "inline": [["del", "x"], ["ins", EVIL]],
                }
            ],
            "facts": {"changed": [{"type": "fee", "before": EVIL, "after": "$1", "section": []}]},
            "reasons": [EVIL],
        },
    )
    return ReportData(
        run,
        [ch],
        [("Innovation Stream", [ch])],
        [],
        {
            "fetched": 1,
            "failed": 0,
            "failure_rate": 0.0,
            "failures_by_class": {},
            "failures": [],
            "selector_drift": [],
            "stale_sources": [],
            "stale_after": 3,
            "zero_fetches": False,
        },
    )


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


def test_a_first_night_lists_every_baseline_from_a_streamed_light_load(tmp_path):
    """A first night of a large watchlist is one "now watching" note per page: the report lists each page
    (title escaped) from a light record, not the Change with its details, and a digest never sees them."""
    from policywatch.reports.data import BaselineEntry, load_run_report
    from policywatch.reports.outbox import news_between
    from policywatch.storage import open_database
    from policywatch.storage.models import Page

    db = open_database(f"sqlite:///{tmp_path / 'history.db'}")
    try:
        with db.session() as s:
            run = Run(started_at=datetime(2024, 3, 22, tzinfo=UTC), status="completed")
            s.add(run)
            s.flush()
            for i in range(302):
                page = Page(
                    url=f"https://www.canada.ca/en/p{i}.html",
                    url_key=f"www.canada.ca/en/p{i}.html",
                    source="watch",
                    topics=[],
                    status="active",
                    gone_count=0,
                )
                s.add(page)
                s.flush()
                baseline = i < 300
                s.add(
                    Change(
                        page_id=page.id,
                        run_id=run.id,
                        detected_at=datetime(2024, 3, 22, tzinfo=UTC),
                        kind="new_page" if baseline else "changed",
                        significance="low" if baseline else "high",
                        topics=[],
                        url=page.url,
                        title=EVIL if i == 7 else f"Page {i}",
                        summary="s",
                        details={"baseline": True} if baseline else {"blocks": []},
                    )
                )
            run_id = run.id
        with db.session() as s:
            data = load_run_report(s, run_id)
            assert len(data.baseline) == 300 and all(isinstance(b, BaselineEntry) for b in data.baseline)
            assert [c.title for c in data.changes] == ["Page 301", "Page 300"]  # same rank: newest first
            md, html = render_markdown(data), render_html(data)
            watching = md.split("## Now watching (300 pages")[1].split("## ")[0]
            assert sum(line.startswith("- ") for line in watching.splitlines()) == 300
            assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
            listed = html.split("pages recorded for the first time")[1].split("</ul>")[0]
            assert listed.count("<li>") == 300
            assert [c.title for c in news_between(s, 0, 10_000)] == ["Page 300", "Page 301"]
    finally:
        db.dispose()


TABLE = (
    '<main property="mainContentOfPage"><h1>Exemption codes</h1><h2>Codes</h2><table>'
    "<tr><th>Exemption</th><th>Code</th></tr>{rows}</table><p>Last paragraph.</p></main>"
)


def _side_by_side(before_rows: str, after_rows: str):
    from types import SimpleNamespace

    from policywatch.monitor.detection.diff import diff_blocks
    from policywatch.monitor.detection.extract import extract_html
    from policywatch.reports.site import side_by_side

    old = extract_html(TABLE.format(rows=before_rows).encode(), "https://www.canada.ca/en/codes.html").blocks
    new = extract_html(TABLE.format(rows=after_rows).encode(), "https://www.canada.ca/en/codes.html").blocks
    change = SimpleNamespace(details={"blocks": diff_blocks(old, new)})
    return side_by_side(change, SimpleNamespace(blocks=old), SimpleNamespace(blocks=new))  # type: ignore[arg-type]


def test_a_diff_shows_a_tables_header_row_once():
    row = "<tr><td>{}</td><td>{}</td></tr>"
    one, two, three = (
        row.format("Reciprocal", "C20"),
        row.format("Significant benefit", "C10"),
        row.format("Innovation Stream pilot", "C88"),
    )
    for before, after in (
        (one + two, three + one + two),  # a row added right under the header
        (one + two, one + two + three),  # at the end
        (one + two, one.replace("C20", "C21") + two),  # a row changed
        (one + two + three, one + three),  # a row removed
        (one + two, three + two),  # one replaced by another (removed + added)
    ):
        rows = _side_by_side(before, after)
        texts = [" ".join(seg[1] for seg in r.left + r.right) for r in rows]
        headers = [t for t in texts if "Exemption" in t]
        assert len(headers) == 1, (after, texts)
        assert rows[0].op == "context" and "Exemption" in texts[0]  # it leads, as a context row
        assert any(r.op != "context" for r in rows)


def test_a_paragraph_replaced_by_another_is_one_row_with_the_word_diff_detection_recorded():
    """Removed and added in its place (too unlike to be "changed"): detection records the word diff
    (`replaced_by`, the one word diff: monitor.detection.diff), the diff page shows it as one changed row with
    the words both share left as they are."""
    from types import SimpleNamespace

    from policywatch.monitor.detection.detect import detect_html
    from policywatch.monitor.detection.extract import extract_html
    from policywatch.reports.site import side_by_side

    page = '<main property="mainContentOfPage"><h1>Pilot</h1><h2>How to apply</h2><p>{}</p><p>End.</p></main>'
    url = "https://www.canada.ca/en/pilot.html"
    old = extract_html(page.format("Applications are not yet open for this pilot.").encode(), url)
    new = extract_html(page.format("Submit the form IMM 5555 online from March 3 onward.").encode(), url)
    decision = detect_html(
        url=url,
        title="Pilot",
        old={"blocks": old.blocks, "meta": old.meta, "text": old.text},
        new_blocks=new.blocks,
        new_meta=new.meta,
        watch_topics=[],
        topic_defs={},
    )
    assert decision is not None
    ops = decision.details["blocks"]
    assert [op["op"] for op in ops] == ["removed", "added"] and ops[0]["replaced_by"]
    change = SimpleNamespace(details=decision.details)
    rows = side_by_side(change, SimpleNamespace(blocks=old.blocks), SimpleNamespace(blocks=new.blocks))  # type: ignore[arg-type]
    changed = [r for r in rows if r.op == "changed"]
    assert len(changed) == 1 and not any(r.op in ("added", "removed") for r in rows)
    assert {seg[0] for seg in ops[0]["replaced_by"]} == {"equal", "del", "ins"}  # word by word, not whole
    assert "".join(seg[1] for seg in changed[0].left) == "Applications are not yet open for this pilot."
    assert (
        "".join(seg[1] for seg in changed[0].right) == "Submit the form IMM 5555 online from March 3 onward."
    )
