"""The Canada Gazette through its feeds (tests/fixtures/sites/gazette: its markup on a loopback host).

Its RSS lists issues, not notices, so a keyword on the feed entry matches nothing: a feed read with
`entries = "issues"` reads the newest issues' tables of contents and follows the items filed under or titled
with a keyword (an extra edition's entry is the document itself: followed when its heading says so). Real
Scrapy crawls: night 1 stores the immigration regulation, the Ministerial Instructions and the extra edition,
and fetches nothing else of the issues; night 2 the regulation's fee is corrected and reads fact first."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from lxml import html

from policywatch.crawler.discovery import read_issue
from policywatch.monitor.demo import NightServer
from policywatch.monitor.detection.headmeta import alternates
from tests.conftest import cli, policywatch

SITE = Path(__file__).parent / "fixtures" / "sites" / "gazette"
ISSUES = "/rp-pr/p1/2026/{date}/html/"
HTML = "text/html; charset=utf-8"


def page(content: str, *, lang: str = "en", title: str = "Canada Gazette", state: str = "a1") -> bytes:
    """A fixture's content in the Gazette's page shell."""
    fields = {
        "LANG": lang,
        "LANG3": {"en": "eng", "fr": "fra"}[lang],
        "OTHER": {"en": "fr", "fr": "en"}[lang],
        "OTHER_NAME": {"en": "Français", "fr": "English"}[lang],
        "TITLE": title,
        "DESCRIPTION": title,
        "ISSUED": "2026-09-26",
        "MODIFIED": "2026-09-26",
        "MODIFIED_LABEL": {"en": "Date modified:", "fr": "Date de modification :"}[lang],
        "SKIP": {"en": "Skip to main content", "fr": "Passer au contenu principal"}[lang],
        "STATE": state,
        "CRUMB": "",
        "CONTENT": content,
    }
    text = (SITE / "shell.html").read_text(encoding="utf-8")
    for key, value in fields.items():
        text = text.replace(f"@@{key}@@", value)
    return text.encode()


def fixture(name: str, **fill: str) -> str:
    text = (SITE / name).read_text(encoding="utf-8")
    for key, value in fill.items():
        text = text.replace(f"@@{key}@@", value)
    return text


def site(base: str, *, fee: str, state: str) -> dict[str, tuple[bytes, str]]:
    pages: dict[str, tuple[bytes, str]] = {
        "/rss/p1-eng.xml": (
            fixture("rss-p1-eng.xml").replace("{base}", base).encode(),
            "application/rss+xml",
        ),
    }
    for date in ("2026-09-12", "2026-09-19", "2026-09-26"):
        pages[ISSUES.format(date=date) + "index-eng.html"] = (page(fixture(f"index-{date}.html")), HTML)
    new = ISSUES.format(date="2026-09-26")
    pages[new + "reg1-eng.html"] = (page(fixture("reg1-eng.html", FEE=fee), state=state), HTML)
    pages[new + "reg1-fra.html"] = (page(fixture("reg1-fra.html", FEE=fee), lang="fr", state=state), HTML)
    pages[new + "reg2-eng.html"] = (page(fixture("reg2-eng.html"), state=state), HTML)
    extra = "/rp-pr/p1/2026/2026-09-24-x2/html/extra2-eng.html"  # an extra edition: the entry is the document
    pages[extra] = (page(fixture("extra2-eng.html"), state=state), HTML)
    pages[ISSUES.format(date="2026-09-19") + "notice-avis-eng.html"] = (
        page(fixture("notice-avis-eng.html"), state=state),
        HTML,
    )
    return pages


def test_an_issue_lists_its_items_with_the_headings_they_are_filed_under():
    base = "https://gazette.gc.ca" + ISSUES.format(date="2026-09-19")
    items = read_issue(page(fixture("index-2026-09-19.html")), base + "index-eng.html")
    said = {f.url: f.text for f in items}
    notice = said[base + "notice-avis-eng.html#ne1"]
    assert "Department of Citizenship and Immigration" in notice and "Express Entry" in notice
    assert "Department of the Environment" in said[base + "notice-avis-eng.html#ne2"]
    assert "Citizenship" not in said[base + "notice-avis-eng.html#ne2"]  # headings end where the next begins
    assert base + "commis-eng.html" not in said  # a heading's own link is not an item
    assert not any("#fn" in u for u in said) and not any("canada.ca" in u for u in said)  # anchors, chrome
    assert [f.matches(("immigration",)) for f in items].count(True) == 1


def test_the_gazettes_language_script_stands_for_the_page_in_the_other_language():
    url = "https://gazette.gc.ca" + ISSUES.format(date="2026-09-26") + "reg1-eng.html"
    doc = html.document_fromstring(page(fixture("reg1-eng.html", FEE="$230")))
    assert alternates(doc, url) == {"fr": url.replace("-eng.html", "-fra.html")}
    # a script toggle on a page whose URL names no language gives no twin (never the script itself)
    assert alternates(doc, "https://gazette.gc.ca/accueil.html") == {}


@pytest.mark.slow
def test_an_issue_feed_leads_to_the_immigration_items_of_the_newest_issues(write_config, tmp_path):
    with NightServer() as server:
        base = server.base
        server.pages = site(base, fee="$230", state="a1")
        cfg = str(
            write_config(f"""
[crawl]
allowed_domains = ["127.0.0.1:{server.port}"]
download_delay = 0
retries = 0

[discovery]
feeds = [{{ url = "{base}/rss/p1-eng.xml", entries = "issues", max_issues = 3, keywords = ["immigration"] }}]
""")
        )
        p = policywatch("run", "--config", cfg)
        assert p.returncode == 0, p.stderr
        new, old = ISSUES.format(date="2026-09-26"), ISSUES.format(date="2026-09-19")
        requested = {path for path, _inm in server.requests}
        con = sqlite3.connect(tmp_path / "history.db")
        try:
            found = {r[0] for r in con.execute("SELECT url FROM pages WHERE source = 'discovered'")}
        finally:
            con.close()
        extra = base + "/rp-pr/p1/2026/2026-09-24-x2/html/extra2-eng.html"
        assert found == {base + new + "reg1-eng.html", base + old + "notice-avis-eng.html", extra}
        assert new + "reg2-eng.html" not in requested  # another department's regulation
        assert ISSUES.format(date="2026-09-12") + "index-eng.html" not in requested  # older than max_issues
        assert "/cgi-bin/language.pl" not in requested

        server.pages = site(base, fee="$255", state="b2")  # night 2: the fee corrected, furniture rotated
        p = policywatch("run", "--config", cfg)
        assert p.returncode == 0, p.stderr
        con = sqlite3.connect(tmp_path / "history.db")
        try:
            summaries = [
                r[0]
                for r in con.execute(
                    "SELECT c.summary FROM changes c JOIN pages p ON p.id = c.page_id "
                    "WHERE c.kind = 'changed' AND p.url = ?",
                    (base + new + "reg1-eng.html",),
                )
            ]
        finally:
            con.close()
        assert len(summaries) == 1 and summaries[0].startswith("Fee: $230 → $255"), summaries
        p = cli("history", "--config", cfg, base + old + "notice-avis-eng.html")
        assert p.returncode == 0 and "changed" not in p.stdout.lower(), p.stdout  # rotating furniture only


def test_a_feed_of_issues_is_a_feed_setting():
    from policywatch.monitor.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="issues"):
        parse_config(
            {
                "crawl": {"allowed_domains": ["g.example"]},
                "discovery": {"sitemaps": [{"url": "https://g.example/s.xml", "entries": "issues"}]},
            }
        )
    cfg = parse_config(
        {
            "crawl": {"allowed_domains": ["g.example"]},
            "discovery": {
                "feeds": [{"url": "https://g.example/p1.xml", "entries": "issues"}, "https://g.example/n"]
            },
        }
    )
    assert cfg.discovery.issues_read("https://g.example/p1.xml") == 4  # the newest month of a weekly
    assert cfg.discovery.issues_read("https://g.example/n") == 0
