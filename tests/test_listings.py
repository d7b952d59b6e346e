"""A listing leads to its entries: a new row of IRCC's Program Delivery Updates (a table of linked updates)
reads "New program delivery update: … — date", and the page it links to is watched from the next pass on
(within allowed_domains), so its own changes are tracked — real Scrapy crawls against a loopback site."""

from __future__ import annotations

import sqlite3

import pytest

from policywatch.monitor.demo import NightServer
from tests.conftest import policywatch
from tests.test_meaning import LISTING  # IRCC's Program Delivery Updates table, as detection's tests read it

ROW = '<tr><td>Temporary residents</td><td><a href="{href}">{title}</a></td><td>{date}</td></tr>'
PGWP = ROW.format(href="/en/u/pgwp.html", title="Post-graduation work permit (PGWP)", date="August 15, 2024")
OFFSITE = ROW.format(
    href="https://elsewhere.example/x.html", title="Another site's notice", date="August 16, 2024"
)
INSTRUCTION = (
    '<html lang="en"><head><title>Post-graduation work permit (PGWP) - Canada.ca</title></head><body>'
    '<main property="mainContentOfPage"><h1>Post-graduation work permit (PGWP)</h1><h2>Fees</h2>'
    "<p>The work permit processing fee is {fee}.</p></main></body></html>"
)


def _page(html: str) -> tuple[bytes, str]:
    return html.encode(), "text/html; charset=utf-8"


@pytest.mark.slow
def test_a_listings_new_entry_is_reported_and_its_page_watched_from_then_on(write_config, tmp_path):
    with NightServer() as server:
        base = server.base
        site = {
            "/en/updates.html": _page(LISTING.format(rows="")),
            "/en/u/visitors.html": _page(INSTRUCTION.format(fee="$100")),
            "/en/u/pgwp.html": _page(INSTRUCTION.format(fee="$155")),
        }
        server.pages = dict(site)
        cfg = str(
            write_config(
                f"""
[crawl]
allowed_domains = ["127.0.0.1:{server.port}"]
download_delay = 0
retries = 0

[[watch]]
url = "{base}/en/updates.html"
topics = ["work-permits"]
"""
            )
        )
        con = sqlite3.connect(tmp_path / "history.db")

        def night() -> list[tuple[str, str, str]]:
            p = policywatch("run", "--config", cfg)
            assert p.returncode == 0, p.stderr
            run = con.execute("SELECT max(id) FROM runs").fetchone()[0]
            return con.execute(
                "SELECT url, kind, summary FROM change_log WHERE run_id = ? ORDER BY change_id", (run,)
            ).fetchall()

        night()  # watching begins: the listing's entries are not news, nor followed
        assert [path for path, _ in server.requests if path.startswith("/en/u/")] == []

        server.pages["/en/updates.html"] = _page(LISTING.format(rows=PGWP + OFFSITE))
        changes = night()
        assert [(k, s.split(";")[0]) for _, k, s in changes] == [
            ("changed", "New program delivery update: Post-graduation work permit (PGWP) — August 15, 2024")
        ]
        pages = dict(con.execute("SELECT url, source FROM pages").fetchall())
        assert pages.get(f"{base}/en/u/pgwp.html") == "discovered"  # watched from then on …
        assert "https://elsewhere.example/x.html" not in pages  # … inside the allowed domains only
        assert f"{base}/en/u/visitors.html" not in pages  # an entry already listed is not news

        changes = night()  # the entry's page is fetched and stored: news of its own
        assert [(u, k) for u, k, _ in changes] == [(f"{base}/en/u/pgwp.html", "new_page")]
        topics = con.execute("SELECT topics FROM pages WHERE url = ?", (f"{base}/en/u/pgwp.html",)).fetchone()
        assert "work-permits" in topics[0]  # the listing's topics

        server.pages["/en/u/pgwp.html"] = _page(INSTRUCTION.format(fee="$230"))
        changes = night()  # and its own changes are tracked
        assert [(u, k) for u, k, _ in changes] == [(f"{base}/en/u/pgwp.html", "changed")]
        assert "$155 → $230" in changes[0][2]
        con.close()
