"""Discovery from a sitemap index (gzipped child sitemap), an Atom feed and a JSON feed, each revealing a page
that is not in the watchlist — real Scrapy crawls against a loopback server — plus the parsers on their
own."""

from __future__ import annotations

import gzip
import json
import sqlite3

import pytest

from policywatch.crawler.discovery import read_feed, read_sitemap
from policywatch.monitor.demo import NightServer
from policywatch.monitor.handoff import CrawlReport
from tests.conftest import policywatch

PAGE = (
    '<html><head><title>{t}</title></head><body><main property="mainContentOfPage"><h1>{t}</h1>'
    "<p>{t}: officer instructions for the Innovation Stream.</p></main></body></html>"
)


def _page(title: str) -> tuple[bytes, str]:
    return PAGE.format(t=title).encode(), "text/html; charset=utf-8"


def _site(base: str, night: int) -> dict[str, tuple[bytes, str]]:
    urlset = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>{base}/en/news/from-sitemap.html</loc><lastmod>2026-11-20</lastmod></url>
  <url><loc>{base}/en/other/outside-prefix.html</loc></url>
  <url><loc>https://elsewhere.example/en/news/offsite.html</loc></url>
</urlset>""".encode()
    index = f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{base}/sitemap-en.xml.gz</loc></sitemap>
</sitemapindex>""".encode()
    atom_entries = [
        "<entry><title>A</title><link "
        f'href="{base}/en/news/from-atom.html"/><updated>2026-11-21T10:00:00Z</updated></entry>'
    ]
    if night >= 2:
        atom_entries.append(
            f'<entry><title>New</title><link rel="alternate" href="{base}/en/news/night-2.html"/></entry>'
        )
    atom = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>IRCC '
        "news</title>" + "".join(atom_entries) + "</feed>"
    ).encode()
    news_json = json.dumps(
        {
            "feed": {
                "entry": [
                    {
                        "title": "Release",
                        "link": f"{base}/en/news/from-json.html",
                        "publishedDate": "2026-11-22",
                    }
                ]
            }
        }
    ).encode()
    pages = {
        "/en/hub.html": _page("Hub"),
        "/sitemap.xml": (index, "application/xml"),
        "/sitemap-en.xml.gz": (gzip.compress(urlset), "application/octet-stream"),
        "/feed.atom": (atom, "application/atom+xml"),
        "/news.json": (news_json, "application/json"),
        "/broken.json": (b'{"feed": {"entry": [', "application/json"),
    }
    for name in ("from-sitemap", "from-atom", "from-json", "night-2"):
        pages[f"/en/news/{name}.html"] = _page(name)
    pages["/en/other/outside-prefix.html"] = _page("outside")
    return pages


def _config(server: NightServer, discovery: str, watches: str = "") -> str:
    """A config for the loopback site: the hub page watched, links followed under /en/news/, its sitemap
    read."""
    base = server.base
    return f"""
[crawl]
allowed_domains = ["127.0.0.1:{server.port}"]
download_delay = 0
retries = 0

[discovery]
follow_prefixes = ["{base}/en/news/"]
sitemaps = ["{base}/sitemap.xml"]
{discovery}
[[watch]]
url = "{base}/en/hub.html"
{watches}"""


@pytest.mark.slow
def test_sitemap_and_feeds_reveal_new_pages(write_config, tmp_path):
    with NightServer() as server:
        base = server.base
        server.pages = _site(base, 1)
        cfg = str(
            write_config(
                _config(
                    server,
                    f"""feeds = ["{base}/feed.atom", "{base}/news.json", "{base}/broken.json"]
""",
                )
            )
        )
        p = policywatch("run", "--config", cfg)
        assert p.returncode == 0, p.stderr
        con = sqlite3.connect(tmp_path / "history.db")
        rows = dict(con.execute("SELECT url, source FROM pages").fetchall())
        assert rows == {
            f"{base}/en/hub.html": "watch",
            f"{base}/en/news/from-sitemap.html": "discovered",
            f"{base}/en/news/from-atom.html": "discovered",
            f"{base}/en/news/from-json.html": "discovered",
        }
        requested = {path for path, _inm in server.requests}
        assert "/en/other/outside-prefix.html" not in requested  # listed, but outside the follow prefixes
        log = next((tmp_path / "reports" / "logs").glob("run-1.log")).read_text()
        assert "broken.json unusable: malformed JSON feed" in log  # a broken source is logged, nothing else
        # … and reaches the run's health through the crawl's typed report (monitor.handoff), not the log
        report = CrawlReport.read(tmp_path / "reports" / "logs" / "run-1.report.json")
        assert [(f.kind, f.url) for f in report.discovery_failed] == [("feed", f"{base}/broken.json")]
        assert report.pages_stored == 4 and report.pages_failed == 0
        health = json.loads(con.execute("SELECT health FROM runs WHERE id = 1").fetchone()[0])
        assert [f["url"] for f in health["discovery_failures"]] == [f"{base}/broken.json"]
        assert (
            con.execute(
                "SELECT count(*) FROM fetches WHERE page_id IN (SELECT id FROM pages WHERE url LIKE '%.json')"
            ).fetchone()[0]
            == 0
        )

        # night 2: the feed lists a new release → a new_page change (not a baseline: the run is not the first)
        server.pages = _site(base, 2)
        p = policywatch("run", "--config", cfg)
        assert p.returncode == 0, p.stderr
        new = con.execute("SELECT url, kind FROM change_log WHERE run_id = 2").fetchall()
        con.close()
        assert new == [(f"{base}/en/news/night-2.html", "new_page")]


def test_read_sitemap_orders_by_lastmod_and_rejects_html():
    body = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>https://www.canada.ca/a.html</loc><lastmod>2024-01-01</lastmod></url>
<url><loc>https://www.canada.ca/b.html</loc><lastmod>2026-06-01</lastmod></url>
<url><loc>https://www.canada.ca/c.html</loc></url></urlset>"""
    kind, entries = read_sitemap(gzip.compress(body), max_size=10_000_000)
    assert kind == "urlset" and [e.url[-6:] for e in entries] == ["b.html", "a.html", "c.html"]
    with pytest.raises(ValueError, match="not a sitemap"):
        read_sitemap(b"<html><body>Maintenance</body></html>", max_size=10_000_000)
    with pytest.raises(
        ValueError, match="unusable gzipped sitemap"
    ):  # a bomb: over the size limit once unpacked
        read_sitemap(gzip.compress(body * 10_000), max_size=100_000)
    with pytest.raises(ValueError, match="unusable gzipped sitemap"):
        read_sitemap(gzip.compress(body)[:40], max_size=10_000_000)


def test_read_feed_forms():
    rss = b"<rss><channel><item><link>https://www.canada.ca/en/news/r.html</link></item></channel></rss>"
    assert [f.url for f in read_feed(rss)] == ["https://www.canada.ca/en/news/r.html"]
    nested = json.dumps(
        [
            {"data": {"url": "https://www.canada.ca/x.html"}},
            {"link": {"href": "https://www.canada.ca/y.html"}},
            {"link": "mailto:nobody@example.org"},
        ]
    ).encode()
    assert [f.url for f in read_feed(nested, "application/json")] == [
        "https://www.canada.ca/x.html",
        "https://www.canada.ca/y.html",
    ]
    with pytest.raises(ValueError, match="not a feed"):
        read_feed(b"<html><body>WAF says no</body></html>")


@pytest.mark.slow
def test_watched_pages_linked_from_a_hub_or_a_sitemap_are_fetched_once(write_config, tmp_path):
    """The spider makes its watch requests lazily (the scheduler holds a few, not the whole watchlist), so a
    hub page's links and a sitemap are read while most watches are not requested yet: those watched pages must
    still be fetched once, as watches — not again as discovered pages."""
    from collections import Counter

    with NightServer() as server:
        base = server.base
        names = [f"p{i}" for i in range(60)]
        hub = (
            '<html><head><title>Hub</title></head><body><main property="mainContentOfPage"><h1>Hub</h1>'
            + "".join(f'<p><a href="/en/news/{n}.html">{n}</a></p>' for n in names)
            + "</main></body></html>"
        )
        urlset = (
            '<?xml version="1.0" encoding="UTF-8"?><urlset '
            'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + "".join(f"<url><loc>{base}/en/news/{n}.html</loc></url>" for n in reversed(names))
            + "</urlset>"
        )
        server.pages = {
            "/en/hub.html": (hub.encode(), "text/html; charset=utf-8"),
            "/sitemap.xml": (urlset.encode(), "application/xml"),
            **{f"/en/news/{n}.html": _page(n) for n in names},
        }
        watches = "".join(f'[[watch]]\nurl = "{base}/en/news/{n}.html"\n' for n in names)
        cfg = str(write_config(_config(server, "depth = 1\n", watches)))
        p = policywatch("run", "--config", cfg)
        assert p.returncode == 0, p.stderr
        fetched = Counter(path for path, _inm in server.requests if path.startswith("/en/"))
        assert len(fetched) == 61 and set(fetched.values()) == {1}, fetched.most_common(3)
        con = sqlite3.connect(tmp_path / "history.db")
        assert con.execute("SELECT count(*) FROM pages WHERE source = 'watch'").fetchone()[0] == 61
        assert con.execute("SELECT count(*) FROM fetches").fetchone()[0] == 61
        con.close()


GAZETTE_RSS = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>
<title>Canada Gazette, Part I</title>
<item><title>Regulations Amending the Immigration and Refugee Protection Regulations</title>
<link>{base}/en/news/irpr.html</link>
<description>Department of Citizenship and Immigration</description></item>
<item><title>Fishery (General) Regulations</title><link>{base}/en/news/fisheries.html</link>
<description>Department of Fisheries and Oceans</description></item>
<item><title>Avis : règlement sur l'IMMIGRATION</title><link>{base}/en/news/avis.html</link></item>
</channel></rss>"""


def test_read_feed_keeps_what_each_entry_says_and_keywords_match_it():
    found = read_feed(GAZETTE_RSS.format(base="https://g.example").encode())
    assert [f.matches(("Immigration and Refugee Protection",)) for f in found] == [True, False, False]
    assert [f.matches(("immigration",)) for f in found] == [True, False, True]  # case aside
    assert [f.matches(("réglement",)) for f in found] == [False, False, True]  # accents aside
    assert all(f.matches(()) for f in found)  # no keywords: every entry


@pytest.mark.slow
def test_a_source_with_keywords_leads_only_to_the_entries_that_match(write_config, tmp_path):
    with NightServer() as server:
        base = server.base
        pages = _site(base, 1)
        pages["/gazette.rss"] = (GAZETTE_RSS.format(base=base).encode(), "application/rss+xml")
        for name in ("irpr", "fisheries", "avis"):
            pages[f"/en/news/{name}.html"] = _page(name)
        server.pages = pages
        feed = (
            f'feeds = [{{ url = "{base}/gazette.rss", keywords = ["Immigration and Refugee Protection"] }}]\n'
        )
        cfg = str(write_config(_config(server, feed).replace(f'sitemaps = ["{base}/sitemap.xml"]\n', "")))
        p = policywatch("run", "--config", cfg)
        assert p.returncode == 0, p.stderr
        con = sqlite3.connect(tmp_path / "history.db")
        try:
            found = {r[0] for r in con.execute("SELECT url FROM pages WHERE source = 'discovered'")}
        finally:
            con.close()
        assert found == {f"{base}/en/news/irpr.html"}
        requested = {path for path, _inm in server.requests}
        assert "/en/news/fisheries.html" not in requested and "/en/news/avis.html" not in requested
