"""The example queries in docs/data-dictionary.md run, on SQLite and PostgreSQL, and answer correctly."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from policywatch.monitor.config import parse_config
from policywatch.monitor.pagework import FetchResult, PageWork
from policywatch.storage import open_database
from policywatch.storage import queries as q

DOC = Path(__file__).resolve().parent.parent / "docs" / "data-dictionary.md"
PAGE = (
    '<html><body><main property="mainContentOfPage"><h1>Innovation '
    "Stream</h1><h2>Status</h2><p>{p}</p></main>"
    "</body></html>"
)


def test_documented_queries(db_url):
    queries = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
    assert len(queries) == 7
    db = open_database(db_url)
    cfg = parse_config(
        {
            "storage": {"url": db_url},
            "crawl": {"allowed_domains": ["www.canada.ca"]},
            "watch": [{"url": "https://www.canada.ca/en/is.html", "topics": ["innovation-stream"]}],
        }
    )
    try:
        for text, outcome in (
            ("More details will be released later.", "ok"),
            ("", "timeout"),
            ("Employers of the Global Hypergrowth Project may apply under code C88.", "ok"),
        ):
            with db.session() as s:
                run_id = q.open_run(s).id
            PageWork(db, cfg, run_id, first_run=run_id == 1).process(
                FetchResult(
                    url="https://www.canada.ca/en/is.html",
                    outcome=outcome,
                    status=200 if outcome == "ok" else None,
                    body=PAGE.format(p=text).encode() if outcome == "ok" else None,
                    content_type="text/html",
                )
            )
            with db.session() as s:
                q.finish_run(s, run_id, "completed")
        from policywatch.monitor.config.ops import MailSettings, Subscriber
        from policywatch.reports.outbox import Outbox
        from tests.smtp_server import free_port

        # a digest for a subscriber who joined before pass 1, to a mail server that is down: stays in the
        # outbox
        Outbox(
            db, MailSettings(host="127.0.0.1", port=free_port(), timeout=2), base_url=None, topic_names={}
        ).deliver([Subscriber("a@example.org")], run_id=1)
        with db.engine.connect() as conn:
            results = [conn.execute(sa.text(sql)).all() for sql in queries]
    finally:
        db.dispose()
    tagged, first, failed, per_page, undelivered, runs, codes = results
    assert [r.kind for r in tagged] == ["changed", "new_page"]
    assert first[0].first_released is not None
    assert failed == []  # the last pass was good
    assert per_page[0].versions == 2
    assert [r.pages_failed for r in runs] == [0, 1, 0]
    assert [(r.recipient, r.status, r.attempts) for r in undelivered] == [("a@example.org", "failed", 1)]
    assert "Connection refused" in undelivered[0].last_error
    assert [r.code for r in codes] == ["C88"]  # the code that appeared on the third pass
