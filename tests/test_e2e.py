"""End to end: `policywatch run` (real Scrapy in a child process) over four nights of a loopback site."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import cli, permits_config_body, policywatch, scripted_server

pytestmark = pytest.mark.slow


def _config(site, write_config) -> str:
    return str(write_config(permits_config_body(site)))


def _changes(cfg: str) -> list[dict]:
    p = cli("changes", "--config", cfg, "--format", "json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _fetches(tmp_path) -> list[tuple]:
    con = sqlite3.connect(tmp_path / "history.db")
    try:
        return con.execute(
            "SELECT url, run_id, outcome, http_status FROM fetch_log ORDER BY fetch_id"
        ).fetchall()
    finally:
        con.close()


def test_four_nights_exact_changes(permits_site, write_config, tmp_path):
    cfg = _config(permits_site, write_config)
    wp, study = permits_site.url("/en/work-permits.html"), permits_site.url("/en/study.html")
    rounds, release2 = permits_site.url("/data/rounds.json"), permits_site.url("/en/news/2023/release-2.html")

    # night 1: baseline — every watched page recorded once, all marked as baseline, nothing else
    p = policywatch("run", "--config", cfg)
    assert p.returncode == 0, p.stderr
    assert "5 fetched" in p.stdout and "0 failed" in p.stdout
    night1 = _changes(cfg)
    assert {c["kind"] for c in night1} == {"new_page"}
    assert all(c["baseline"] for c in night1)
    assert len(night1) == 5  # 4 watched + release-1 discovered from the hub

    # night 2: the fee and the eligibility list changed; study is noise only; a release and a round appear
    permits_site.night(2)
    p = policywatch("run", "--config", cfg)
    assert p.returncode == 0, p.stderr
    night2 = [c for c in _changes(cfg) if c["run_id"] == 2]
    by_url = {c["url"]: c for c in night2}
    assert set(by_url) == {wp, rounds, release2, permits_site.url("/en/news/index.html")}
    assert study not in by_url  # noise only: rotated scripts, menu, footer, date modified
    w = by_url[wp]
    assert w["kind"] == "changed"
    assert w["facts"]["changed"] == [{"type": "fee", "before": "$155", "after": "$230", "section": ["Fees"]}]
    added = [b for b in w["blocks"] if b["op"] == "added"]
    assert [(b["section"], b["text"]) for b in added] == [
        (["Eligibility"], "You must have no criminal record.")
    ]
    assert "$155 → $230" in w["summary"]
    assert w["topics"][0] == "work-permits" and "fees" in w["topics"]
    r = by_url[rounds]
    assert [a["id"] for a in r["records"]["added"]] == ["3"]
    assert "round 3" in r["summary"] and "4,500 invitations" in r["summary"]
    rel = by_url[release2]
    assert rel["kind"] == "new_page" and rel["details_released"] is True and rel["significance"] == "high"
    assert "innovation-stream" in rel["topics"]

    # night 3: maintenance page (200), study 404, truncated JSON → failures recorded, no change, no version
    permits_site.night(3)
    p = policywatch("run", "--config", cfg)
    assert p.returncode == 0, p.stderr
    assert "2 failed" in p.stdout or "3 failed" in p.stdout
    assert [c for c in _changes(cfg) if c["run_id"] == 3] == []
    outcomes = {(u, o) for u, run, o, _ in _fetches(tmp_path) if run == 3}
    assert (
        (wp, "soft_error") in outcomes
        and (study, "http_error") in outcomes
        and (rounds, "soft_error") in outcomes
    )
    report = (tmp_path / "reports" / "run-3.md").read_text()
    assert "soft_error" in report and "http_error" in report

    # night 4: work-permits back as on night 2 → compared with the last good version: no change;
    # study 404 a second time in a row → removed
    permits_site.night(4)
    p = policywatch("run", "--config", cfg)
    assert p.returncode == 0, p.stderr
    night4 = [c for c in _changes(cfg) if c["run_id"] == 4]
    outcomes4 = {u: o for u, run, o, _ in _fetches(tmp_path) if run == 4}
    assert (
        outcomes4[rounds] == "not_modified"
    )  # conditional GET with night 2's ETag → 304, nothing downloaded
    assert any(path == "/data/rounds.json" and inm for path, inm in permits_site.server.requests)
    assert [(c["url"], c["kind"]) for c in night4] == [(study, "removed")]
    con = sqlite3.connect(tmp_path / "history.db")
    versions = dict(con.execute("SELECT url, count(*) FROM page_versions GROUP BY url").fetchall())
    con.close()
    assert versions[wp] == 2 and versions[study] == 1 and versions[rounds] == 2


def test_unreachable_and_non_html(write_config, permits_site, tmp_path):
    """A refused connection and a PDF are recorded as failures with reasons; the pass still exits 0."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead_port = s.getsockname()[1]
    s.close()  # nothing listens there now
    permits_site.server.pages["/doc.pdf"] = (b"%PDF-1.4 fake", "application/pdf")
    cfg = write_config(f"""
[crawl]
allowed_domains = ["{permits_site.host}", "127.0.0.1:{dead_port}"]
download_delay = 0
retries = 0

[[watch]]
url = "http://127.0.0.1:{dead_port}/gone.html"

[[watch]]
url = "{permits_site.url("/doc.pdf")}"
""")
    p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert "2 failed" in p.stdout and "connection_error: 1" in p.stdout and "soft_error: 1" in p.stdout
    outcomes = {u: o for u, _run, o, _status in _fetches(tmp_path)}
    assert outcomes[f"http://127.0.0.1:{dead_port}/gone.html"] == "connection_error"
    con = sqlite3.connect(tmp_path / "history.db")
    msg = con.execute("SELECT message FROM fetch_log WHERE url LIKE '%doc.pdf'").fetchone()[0]
    assert "application/pdf" in msg
    assert con.execute("SELECT count(*) FROM versions").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM changes").fetchone()[0] == 0
    con.close()


def test_offsite_redirect_is_dropped(write_config, permits_site, tmp_path):
    """A redirect to another port is never followed: offsite_redirect, and the other server sees nothing."""
    from policywatch.monitor.demo import NightServer

    with NightServer({"/secret.html": (b"<html><body>secret</body></html>", "text/html")}) as other:
        jump = (302, {"Location": f"{other.base}/secret.html"}, b"")
        with scripted_server(lambda path: jump) as port:
            cfg = write_config(f"""
[crawl]
allowed_domains = ["127.0.0.1:{port}"]
download_delay = 0

[[watch]]
url = "http://127.0.0.1:{port}/jump.html"
""")
            p = policywatch("run", "--config", str(cfg))
        assert p.returncode == 0, p.stderr
        assert "offsite_redirect: 1" in p.stdout
        assert other.requests == []  # not even robots.txt: the other port was never contacted
        con = sqlite3.connect(tmp_path / "history.db")
        row = con.execute("SELECT outcome, message FROM fetch_log").fetchone()
        con.close()
        assert row[0] == "offsite_redirect" and f"{other.base}/secret.html" in row[1]


def test_429_with_retry_after_is_retried(write_config, tmp_path):
    """A 429 with Retry-After is honoured and retried; the page is then fetched normally (attempts = 2)."""
    seen = []
    fees = (
        b'<html><body><main property="mainContentOfPage"><h1>Fees</h1>'
        b"<p>The work permit fee is $155.</p></main></body></html>"
    )

    def answer(path: str) -> tuple[int, dict[str, str], bytes]:
        seen.append(path)
        return (
            (429, {"Retry-After": "1"}, b"") if len(seen) == 1 else (200, {"Content-Type": "text/html"}, fees)
        )

    with scripted_server(answer) as port:
        cfg = write_config(f"""
[crawl]
allowed_domains = ["127.0.0.1:{port}"]
download_delay = 0
retries = 2

[[watch]]
url = "http://127.0.0.1:{port}/fees.html"
""")
        p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert seen == ["/fees.html", "/fees.html"]
    con = sqlite3.connect(tmp_path / "history.db")
    assert con.execute("SELECT outcome, attempts FROM fetch_log").fetchone() == ("ok", 2)
    con.close()
    assert (
        "server asked to wait 1.0s (Retry-After)" in (tmp_path / "reports" / "logs" / "run-1.log").read_text()
    )
