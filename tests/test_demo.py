"""`policywatch demo` runs offline on a fresh directory and tells the Innovation Stream story night by
night."""

from __future__ import annotations

import json
import sqlite3

from tests.conftest import policywatch


def test_demo_story(tmp_path):
    out = tmp_path / "demo"
    p = policywatch("demo", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "night 1 (run 1): 5 fetched, 5 new, 0 changed" in p.stdout
    assert "night 2 (run 2): 5 fetched, 0 new, 0 changed, 4 unchanged, 1 failed" in p.stdout
    assert "soft_error: malformed JSON" in p.stdout
    report = (out / "reports" / "run-3.md").read_text()
    assert "R205(c) Designated by minister" in report  # the section of the new C88 row
    changes = json.loads(
        policywatch("changes", "--config", str(out / "policywatch.toml"), "--format", "json").stdout
    )
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


def test_every_local_link_of_the_demo_site_and_reports_resolves(tmp_path):
    """Walk every href and src of the generated site and reports: each local one names a file that exists
    (the timelines once linked "now watching" notes to change pages that are never written). Every watched
    page has its timeline; the index puts details released first."""
    import re
    from urllib.parse import unquote, urlsplit

    out = tmp_path / "demo"
    assert policywatch("demo", "--out", str(out)).returncode == 0
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
    con = sqlite3.connect(out / "policywatch.db")
    try:
        page_ids = [r[0] for r in con.execute("SELECT id FROM pages")]
    finally:
        con.close()
    assert all((reports / "site" / "pages" / f"{i}.html").exists() for i in page_ids)
    index = (reports / "site" / "index.html").read_text(encoding="utf-8")
    rows = re.findall(r"<tr><td>.*?</tr>", index, re.S)
    released = [i for i, r in enumerate(rows) if "Details released" in r]
    assert released and released == list(range(len(released)))  # details released first
