"""`policywatch demo` runs offline on a fresh directory and tells the Innovation Stream story night by
night."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import cli, policywatch


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One offline demo run for this module's tests: (its directory, its output)."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    p = policywatch("demo", "--out", str(out))
    assert p.returncode == 0, p.stderr
    return out, p


def test_demo_story(demo):
    out, p = demo
    assert "night 1 (run 1): 5 fetched, 5 new, 0 changed" in p.stdout
    assert "night 2 (run 2): 5 fetched, 0 new, 0 changed, 4 unchanged, 1 failed" in p.stdout
    assert "soft_error: malformed JSON" in p.stdout
    # night 3's line for the new pilot page: its facts first, the title once
    assert "★ [high] Innovation Stream pilot: $155 fee · C88 · TEER 0–3" in p.stdout
    report = (out / "reports" / "run-3.md").read_text()
    assert "R205(c) Designated by minister" in report  # the section of the new C88 row
    changes = json.loads(cli("changes", "--config", str(out / "policywatch.toml"), "--format", "json").stdout)
    released = [c for c in changes if c["details_released"]]
    assert {c["run_id"] for c in released} == {3}  # exactly on the right night
    assert {c["kind"] for c in released} == {"new_page", "changed"}
    assert all(c["significance"] == "high" and "innovation-stream" in c["topics"] for c in released)
    rounds = next(c for c in changes if c["url"].endswith("ee_rounds_123_en.json") and c["kind"] == "changed")
    assert [r["id"] for r in rounds["records"]["added"]] == ["337", "336"]
    assert rounds["records"]["changed"][0]["fields"] == [
        {
            "field": "drawCutOff",
            "before": "November 14, 2025 at 02:52:14 UTC",
            "after": "November 14, 2024 at 02:52:14 UTC",
        }
    ]
    # ranking: Innovation Stream details first in the report
    html = (out / "reports" / "index.html").read_text()
    assert html.index("Details released") < html.index("Start-up Visa")
    con = sqlite3.connect(out / "policywatch.db")
    assert (
        con.execute("SELECT count(*) FROM changes WHERE run_id = 2").fetchone()[0] == 0
    )  # noise night: silence
    con.close()


def test_every_local_link_of_the_demo_site_and_reports_resolves(demo):
    """Walk every href and src of the generated site and reports: each local one names a file that exists
    (the timelines once linked "now watching" notes to change pages that are never written). Every page with
    a change to show has its timeline, a page only recorded has none (nothing links to it: a first night
    writes no page per watch); the index puts details released first."""
    import re
    from urllib.parse import unquote, urlsplit

    out, _ = demo
    reports = out / "reports"
    checked, broken = 0, []
    for html in list(reports.rglob("*.html")) + list(reports.rglob("*.atom")):
        text = html.read_text(encoding="utf-8")
        for ref in re.findall(r'(?:href|src)="([^"]+)"', text):
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith(("#", "mailto:")):
                continue
            target = (html.parent / unquote(parts.path)).resolve() if parts.path else html
            checked += 1
            if not target.exists():
                broken.append(f"{html.relative_to(reports)} → {ref}")
    assert checked > 20 and not broken, broken[:10]
    # run reports link to the runs around them and to each change's diff page
    run2 = (reports / "run-2.html").read_text(encoding="utf-8")
    assert 'href="run-1.html"' in run2 and 'href="run-3.html"' in run2
    run3 = (reports / "run-3.html").read_text(encoding="utf-8")
    assert 'href="run-2.html"' in run3 and 'href="site/changes/' in run3
    # a diff page: context rows, the replaced paragraph as one changed row, per-page version numbers, times
    # in the configured zone with UTC on hover
    hub = next(p for p in (reports / "site" / "changes").glob("*.html") if "Tech Talent" in p.read_text())
    diff = hub.read_text(encoding="utf-8")
    assert 'class="context"' in diff and "version 2 of 2" in diff and "version 1 of this page" in diff
    assert "<del>More</del>" in diff and "<ins>Innovation</ins>" in diff
    assert re.search(r'<time datetime="[^"]+[+]00:00" title="[^"]+ UTC">[^<]+ (EST|EDT)</time>', diff)
    con = sqlite3.connect(out / "policywatch.db")
    try:
        page_ids = {r[0] for r in con.execute("SELECT id FROM pages")}
        changed = {
            r[0]
            for r in con.execute("SELECT page_id FROM changes WHERE details NOT LIKE '%\"baseline\": true%'")
        }
    finally:
        con.close()
    assert changed and page_ids - changed  # the demo has both kinds
    timelines = {int(p.stem) for p in (reports / "site" / "pages").glob("*.html")}
    assert timelines == changed
    index = (reports / "site" / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r"<tr><td>.*?</tr>", index, re.S)
    released = [i for i, r in enumerate(rows) if "Details released" in r]
    assert released and released == list(range(len(released)))  # details released first


def test_the_demo_has_subscribers_whose_digests_can_be_seen(demo):
    """The demo's digests go to a mailbox file (no SMTP server): the consultant (Innovation Stream only) and
    the analyst (everything) got theirs on night 3; `digest preview` works on the demo config, says nothing
    would be sent after that (no heartbeat line: heartbeat is off), and `--since` shows what was sent,
    with the changed field of the Express Entry round named."""
    import mailbox

    out, p = demo
    assert "digests.mbox" in p.stdout
    box = mailbox.mbox(str(out / "digests.mbox"))
    got = {m["To"].split("<")[-1].rstrip(">"): m for m in box}
    assert set(got) == {"consultant@demo.invalid", "analyst@demo.invalid"}
    assert all("details released" in m["Subject"] for m in got.values())
    analyst = got["analyst@demo.invalid"].get_payload(0).get_payload(decode=True).decode()
    assert "round 335: drawCutOff November 14, 2025 at 02:52:14 UTC → November 14, 2024" in analyst
    consultant = got["consultant@demo.invalid"].get_payload(0).get_payload(decode=True).decode()
    assert "C88" in consultant and "ee_rounds" not in consultant

    cfg = str(out / "policywatch.toml")
    now = cli("digest", "preview", "--config", cfg)
    assert now.returncode == 0, now.stderr
    assert "nothing would be sent" in now.stdout and "heartbeat" not in now.stdout
    since = cli("digest", "preview", "--config", cfg, "--since", "30d", "-s", "consultant@demo.invalid")
    assert since.returncode == 0 and "$155 fee" in since.stdout and "C88" in since.stdout


def test_the_demo_as_a_newcomer_reads_it(demo):
    """Issue 31's must-shows on the demo: one order everywhere (run report, site, feed, digest: the new pilot
    page with the $155 fee first), every time a person reads in the configured zone with the zone named (the
    charts' axes too), chart legends whole with their axes titled, `show PAGE --at TODAY` finds today's
    capture, and each page names itself (its canonical URL is its own)."""
    import mailbox
    import re
    from datetime import datetime
    from zoneinfo import ZoneInfo

    out, _p = demo
    reports = out / "reports"
    cfg = str(out / "policywatch.toml")
    zoned = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} E[SD]T")

    def pages_in(text: str) -> list[str]:
        keys = ("Innovation Stream pilot –", "Tech Talent Strategy", "Labour market impact", "Start-up Visa")
        found = sorted((text.find(k), k) for k in keys if k in text)
        return [k for _, k in found]

    run3 = (reports / "run-3.md").read_text(encoding="utf-8")
    order = pages_in(run3.split("## Crawl health")[0])
    assert order[0] == "Innovation Stream pilot –" and len(order) == 4, order
    assert pages_in((reports / "site" / "index.html").read_text(encoding="utf-8")) == order
    assert pages_in((reports / "site" / "feed.atom").read_text(encoding="utf-8")) == order
    assert zoned.search(run3) and not re.search(r"\d{2}:\d{2}:\d{2}\.\d{6}", run3)

    box = mailbox.mbox(str(out / "digests.mbox"))
    analyst = next(m for m in box if "analyst@" in m["To"]).get_payload(0).get_payload(decode=True).decode()
    assert zoned.search(analyst) and pages_in(analyst)[0] == "Innovation Stream pilot –", analyst[:600]

    charts = [p.read_text(encoding="utf-8") for p in (reports / "site" / "pages").glob("*.html")]
    crs = next(c for c in charts if "CRS cut-off by round type" in c)
    assert (
        "French language proficiency (Version 1)" in crs and "…" not in crs.split("CRS cut-off by round")[1]
    )
    assert "CRS cut-off score" in crs and "Draw date" in crs
    timelines = [c for c in charts if "Versions and changes over time" in c]
    assert timelines and all(
        re.search(r"Date(?: and time)? \((EST|EDT|America/Toronto)\)", c) for c in timelines
    )

    today = datetime.now(ZoneInfo("America/Toronto")).date().isoformat()
    shown = cli("show", "start-visa", "--config", cfg, "--at", today)
    assert shown.returncode == 0 and zoned.search(shown.stderr), shown.stderr
    explained = cli("explain", "start-visa", "--config", cfg)
    assert (
        "canonical_url = https://www.canada.ca/en/immigration-refugees-citizenship/services/"
        in explained.stdout
    )
    assert "data-reference-standard" not in explained.stdout
    rounds = cli("explain", "ee_rounds", "--config", cfg)
    assert "extractor: json" in rounds.stdout and "keyed by 'drawNumber'" in rounds.stdout, rounds.stdout
    assert "text density" not in rounds.stdout and "<body>" not in rounds.stdout


def test_each_topic_has_its_own_feed_whose_links_resolve(demo):
    """`site/topics/<topic>.atom` beside the site-wide feed: the topic's changes only, in the site's order,
    valid Atom whose relative links resolve from where the feed stands."""
    import xml.etree.ElementTree as ET

    out, _p = demo
    site = out / "reports" / "site"
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = ET.parse(site / "topics" / "innovation-stream.atom").getroot()
    entries = feed.findall("a:entry", ns)
    assert len(entries) == 3 and all(
        "innovation-stream" in [c.get("term") for c in e.findall("a:category", ns)] for e in entries
    )
    assert entries[0].findtext("a:title", namespaces=ns).startswith("[Details released] $155 fee")
    links = [link.get("href") for link in feed.iter("{http://www.w3.org/2005/Atom}link")]
    local = [h for h in links if h and not h.startswith("http")]
    assert local and all((site / "topics" / h).resolve().is_file() for h in local), local
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="topics/innovation-stream.atom"' in index
