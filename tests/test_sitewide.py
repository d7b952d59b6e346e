"""A notice injected on many pages in one pass is one site-wide notice in reports and digests, not N changes;
the page that really changed keeps its own entry, and the notice's changes are still delivered exactly
once."""

from __future__ import annotations

from sqlalchemy import select

from policywatch.monitor.config.ops import Subscriber
from policywatch.reports.data import load_run_report
from policywatch.reports.digest import compose, render_text
from policywatch.reports.render import render_markdown
from policywatch.reports.sitewide import split_notices
from policywatch.storage import open_database
from policywatch.storage import queries as q
from policywatch.storage.models import Change
from policywatch.storage.types import utcnow

NOTICE = "Notice: ports of entry will be closed on December 25."


def _change(s, run_id: int, url: str, ops: list[dict], summary: str) -> None:
    page, _ = q.get_or_create_page(s, url, url, source="watch", topics=[])
    s.add(
        Change(
            page_id=page.id,
            run_id=run_id,
            detected_at=utcnow(),
            kind="changed",
            significance="medium",
            topics=[],
            details_released=False,
            url=url,
            title=url.rsplit("/", 1)[-1],
            summary=summary,
            details={"blocks": ops},
        )
    )


def test_notice_on_many_pages_is_one_entry(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        with db.session() as s:
            run_id = q.open_run(s).id
            for i in range(5):  # the notice alone on five instruction pages
                _change(
                    s,
                    run_id,
                    f"https://www.canada.ca/en/instr-{i}.html",
                    [{"op": "added", "section": [], "text": NOTICE, "index": 0}],
                    "notice added",
                )
            # the same notice plus a real fee change: stays a change of its own
            _change(
                s,
                run_id,
                "https://www.canada.ca/en/fees.html",
                [
                    {"op": "added", "section": [], "text": NOTICE, "index": 0},
                    {
                        "op": "changed",
                        "section": ["Fees"],
                        "before": "Fee $155",
                        "text": "Fee $230",
                        "inline": [["del", "Fee $155"], ["ins", "Fee $230"]],
                        "index": 3,
                    },
                ],
                "fee $155 → $230",
            )
            # an edit on only two pages is not site-wide
            for i in range(2):
                _change(
                    s,
                    run_id,
                    f"https://www.canada.ca/en/other-{i}.html",
                    [{"op": "removed", "section": [], "text": "Old paragraph", "index": 1}],
                    "paragraph removed",
                )
            q.finish_run(s, run_id, "completed")
        with db.session() as s:
            notices, rest = split_notices(s.scalars(select(Change).order_by(Change.id)))
            assert [(n.pages, n.ops) for n in notices] == [(5, (("added", NOTICE),))]
            assert [c.summary for c in rest] == ["fee $155 → $230", "paragraph removed", "paragraph removed"]
            report = render_markdown(load_run_report(s, run_id))
            assert "Site-wide notices" in report and "Site-wide notice on 5 pages" in report
            assert report.count("notice added") == 0  # no per-page entry for the notice
            d = compose(
                list(s.scalars(select(Change))), Subscriber("a@example.org"), base_url=None, topic_names={}
            )
            assert d.change_count == 3 and len(d.covered) == 8  # every change is still delivered, once
            text = render_text(d)
            assert "Site-wide notice on 5 pages" in text and "$230" in text
    finally:
        db.dispose()
