"""English/French parity on a loopback canada.ca-like pair (real Scrapy crawls): only the English page
is watched; its French twin (named by `hreflang` and the `#wb-lng` toggle) is found and stored; an
English-only fee change puts English ahead (`parity --format json`, the run report, the site); once the French
follows, the pair is in step. French pages read fact first too ("155 $ → 230 $")."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from policywatch.monitor.demo import NightServer
from tests.conftest import cli, policywatch

pytestmark = pytest.mark.slow

EN = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Work permits - Canada.ca</title>
<link rel="alternate" hreflang="fr" href="{base}/fr/permis-travail.html"></head><body>
<section id="wb-lng"><ul><li><a lang="fr" href="/fr/permis-travail.html">Français</a></li></ul></section>
<main property="mainContentOfPage"><h1>Work permits</h1><h2>Fees</h2>
<p>The work permit processing fee is {fee}.</p></main></body></html>"""
FR = """<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">
<title>Permis de travail - Canada.ca</title>
<link rel="alternate" hreflang="en" href="{base}/en/work-permits.html"></head><body>
<section id="wb-lng"><ul><li><a lang="en" href="/en/work-permits.html">English</a></li></ul></section>
<main property="mainContentOfPage"><h1>Permis de travail</h1><h2>Frais</h2>
<p>Les frais de traitement d'un permis de travail sont de {fee}.</p></main></body></html>"""


def _night(server: NightServer, en_fee: str, fr_fee: str) -> None:
    html = "text/html; charset=utf-8"
    server.pages = {
        "/en/work-permits.html": (EN.format(base=server.base, fee=en_fee).encode(), html),
        "/fr/permis-travail.html": (FR.format(base=server.base, fee=fr_fee).encode(), html),
    }


def _config(
    write_config, server: NightServer, url: str, *, grace_days: int | None = 0, topics: str = ""
) -> str:
    """A loopback crawl of one watched English page with [parity] on."""
    grace = f"grace_days = {grace_days}\n" if grace_days is not None else ""
    watch_topics = f'topics = ["{topics}"]\n' if topics else ""
    return str(
        write_config(
            f'[crawl]\nallowed_domains = ["127.0.0.1:{server.port}"]\ndownload_delay = 0\nretries = 0\n\n'
            f'[parity]\nlanguages = ["en", "fr"]\n{grace}\n[[watch]]\nurl = "{url}"\n{watch_topics}'
        )
    )


def test_a_french_twin_is_watched_and_falls_behind_then_catches_up(write_config, tmp_path):
    with NightServer() as server:
        cfg = _config(write_config, server, f"{server.base}/en/work-permits.html", topics="work-permits")

        def run() -> None:
            p = policywatch("run", "--config", cfg)
            assert p.returncode == 0, p.stderr

        def parity() -> list[dict]:
            p = cli("parity", "--config", cfg, "--format", "json")
            assert p.returncode == 0, p.stderr
            return json.loads(p.stdout)

        _night(server, "$155", "155 $")
        run()
        con = sqlite3.connect(tmp_path / "history.db")
        try:
            pages = dict(con.execute("SELECT url, source FROM pages").fetchall())
        finally:
            con.close()
        assert pages == {
            f"{server.base}/en/work-permits.html": "watch",
            f"{server.base}/fr/permis-travail.html": "discovered",  # found, not listed
        }
        (pair,) = parity()
        assert pair == {
            "page": f"{server.base}/en/work-permits.html",
            "twin": f"{server.base}/fr/permis-travail.html",
            "status": "in_step",
            "ahead": None,
            "since": None,
            "days": None,
        }

        _night(server, "$230", "155 $")  # English only
        run()
        (pair,) = parity()
        assert pair["status"] == "ahead" and pair["ahead"] == "en" and pair["days"] == 0 and pair["since"]
        report = (tmp_path / "reports" / "latest.md").read_text(encoding="utf-8")
        assert "## Language parity" in report and "French version not updated yet: Fee: $155 → $230" in report
        index = (tmp_path / "reports" / "site" / "index.html").read_text(encoding="utf-8")
        assert "French version not updated" in index
        table = cli("parity", "--config", cfg, env={"COLUMNS": "250"})
        assert "en ahead" in table.stdout

        _night(server, "$230", "230 $")  # the French follows
        run()
        (pair,) = parity()
        assert pair["status"] == "in_step" and pair["ahead"] is None
        changes = json.loads(cli("changes", "--config", cfg, "--format", "json").stdout)
        french = [c for c in changes if "/fr/" in c["url"] and c["kind"] == "changed"]
        assert [c["summary"].split(" (")[0] for c in french] == [
            "Fee: 155 $ → 230 $"
        ]  # fact first, in French


def test_parity_needs_its_section(write_config):
    cfg = write_config('[crawl]\nallowed_domains = ["www.canada.ca"]\n')
    p = cli("parity", "--config", str(cfg))
    assert p.returncode == 2 and "[parity]" in p.stderr


@pytest.mark.parametrize(
    "html, expected",
    [
        # canada.ca's language toggle only
        (
            '<html lang="en"><body><section id="wb-lng"><a lang="fr" href="/fr/a.html">Français</a></section>'
            "<main><p>x</p></main></body></html>",
            {"fr": "https://www.canada.ca/fr/a.html"},
        ),
        # a provincial site's link, and the head's hreflang alternates (the page's own language left out)
        (
            '<html lang="fr-CA"><head><link rel="alternate" hreflang="en-CA" href="https://gov.example/en/b">'
            '<link rel="alternate" hreflang="fr-CA" href="https://gov.example/fr/b"></head>'
            "<body><p>x</p></body></html>",
            {"en": "https://gov.example/en/b"},
        ),
        (
            '<html lang="en"><body><a hreflang="fr" href="b-fr.html">FR</a></body></html>',
            {"fr": "https://www.canada.ca/en/b-fr.html"},
        ),
        ('<html lang="en"><body><a lang="fr" href="#top">haut</a><p>x</p></body></html>', {}),
    ],
)
def test_a_pages_twin_is_read_from_its_language_links(html, expected):
    from policywatch.monitor.detection.decode import parse_html
    from policywatch.monitor.detection.headmeta import alternates

    assert alternates(parse_html(html.encode()), "https://www.canada.ca/en/a.html") == expected


def test_ircc_processing_times_still_read_as_facts():
    """Two real weekly captures of IRCC's in-Canada processing times (May 8 and 14, 2026): the work permit
    extension's 212 days → 209 days is a named record's field, and the one line says it."""
    from pathlib import Path

    from policywatch.monitor.detection.detect import detect_json
    from policywatch.monitor.detection.jsondiff import parse_json, to_records

    folder = Path(__file__).resolve().parent / "eval" / "json"
    name = "ircc-data-ptime-non-country-en-json__2026-05-{}.json"
    old, new = (to_records(parse_json((folder / name.format(d)).read_bytes())) for d in ("08", "14"))
    d = detect_json(
        url="https://www.canada.ca/content/dam/ircc/documents/json/data-ptime-non-country-en.json",
        title="data-ptime-non-country-en.json",
        old={"blocks": old},
        new_doc=new,
        watch_topics=[],
        topic_defs={},
    )
    assert d is not None and len(d.details["records"]["removed"]) == 1  # the caregivers block went
    changed = {r["id"]: r for r in d.details["records"]["changed"]}
    assert [(f["before"], f["after"]) for f in changed["work_extension"]["fields"]] == [
        ("212 days", "209 days")
    ]
    assert "work_extension: 212 days → 209 days" in d.summary, d.summary


NOISE = Path(__file__).parent / "eval" / "noise"
REAL = NOISE / "data-reference-standard-business-number__20241221T1201Z.html"


def _real_pair(server: NightServer, en_fee: str, fr_fee: str) -> tuple[str, str]:
    """A canada.ca pair in the page's real GCWeb markup (a real capture, its canada.ca links pointed at the
    loopback host): the English page with its `hreflang` alternates and `#wb-lng` toggle as published, the
    French one the same template with `lang="fr"`; a fee paragraph under each heading."""
    raw = REAL.read_text(encoding="utf-8").replace("https://www.canada.ca", server.base)
    en_path = re.search(r'hreflang="en" href="[^"]*?(/en/[^"]+)"', raw)
    fr_path = re.search(r'hreflang="fr" href="[^"]*?(/fr/[^"]+)"', raw)
    assert en_path and fr_path
    html = "text/html; charset=utf-8"
    en = raw.replace("</h1>", f"</h1><p>The processing fee is {en_fee}.</p>", 1)
    fr = raw.replace('lang="en" xmlns', 'lang="fr" xmlns', 1).replace(
        "</h1>", f"</h1><p>Les frais de traitement sont de {fr_fee}.</p>", 1
    )
    server.pages = {en_path.group(1): (en.encode(), html), fr_path.group(1): (fr.encode(), html)}
    return server.base + en_path.group(1), server.base + fr_path.group(1)


def test_a_real_canada_ca_page_finds_its_french_twin_and_says_which_is_behind(write_config, tmp_path):
    with NightServer() as server:
        en, fr = _real_pair(server, "$155", "155 $")
        cfg = _config(write_config, server, en)
        assert policywatch("run", "--config", cfg).returncode == 0
        _real_pair(server, "$230", "155 $")
        assert policywatch("run", "--config", cfg).returncode == 0
        (pair,) = json.loads(cli("parity", "--config", cfg, "--format", "json").stdout)
        assert (pair["page"], pair["twin"], pair["status"], pair["ahead"]) == (en, fr, "ahead", "en")


def test_a_twin_named_later_is_paired_though_neither_page_changed(write_config, tmp_path):
    """The English page names its French version only from night 2, in its head (no content change, so no
    new version records it), and the French page names no twin: the pair still comes from what the crawl
    read (pages.twins)."""
    with NightServer() as server:
        html = "text/html; charset=utf-8"
        en = EN.format(base=server.base, fee="$155")
        bare_en = en.replace(
            f'<link rel="alternate" hreflang="fr" href="{server.base}/fr/permis-travail.html">', ""
        )
        bare_en = bare_en.replace('<a lang="fr" href="/fr/permis-travail.html">Français</a>', "")
        fr = FR.format(base=server.base, fee="155 $")
        fr = fr.replace(f'<link rel="alternate" hreflang="en" href="{server.base}/en/work-permits.html">', "")
        fr = fr.replace('<a lang="en" href="/en/work-permits.html">English</a>', "")
        server.pages = {
            "/en/work-permits.html": (bare_en.encode(), html),
            "/fr/permis-travail.html": (fr.encode(), html),
        }
        cfg = _config(write_config, server, f"{server.base}/en/work-permits.html", grace_days=None)
        assert policywatch("run", "--config", cfg).returncode == 0
        assert json.loads(cli("parity", "--config", cfg, "--format", "json").stdout) == []
        server.pages["/en/work-permits.html"] = (
            bare_en.replace(
                "</title>",
                f'</title><link rel="alternate" hreflang="fr" href="{server.base}/fr/permis-travail.html">',
            ).encode(),
            html,
        )
        assert policywatch("run", "--config", cfg).returncode == 0
        con = sqlite3.connect(tmp_path / "history.db")
        try:
            versions = con.execute(
                "SELECT count(*) FROM versions v JOIN pages p ON p.id = v.page_id WHERE p.url LIKE '%/en/%'"
            ).fetchone()[0]
        finally:
            con.close()
        assert versions == 1  # no new version named the twin
        (pair,) = json.loads(cli("parity", "--config", cfg, "--format", "json").stdout)
        assert (pair["page"], pair["twin"], pair["status"]) == (
            f"{server.base}/en/work-permits.html",
            f"{server.base}/fr/permis-travail.html",
            "in_step",
        )
