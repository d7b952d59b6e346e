"""`policywatch backfill`: history from a web archive (a loopback stand-in for the Wayback Machine serving the
Innovation Stream story) and from WARC files, through the real command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from policywatch.monitor.backfill.captures import Capture, aliases, archive_day, clean, parse_cdx, spread
from tests.archive_fixture import CODES, HUB, PILOT, FakeArchive, innovation_story
from tests.conftest import BIN, cli, policywatch, scripted_server


def config(
    write_config,
    port: int,
    *,
    storage: str | None = None,
    extra: str = "",
    delay: float = 0,
    name: str = "pw.toml",
) -> Path:
    return write_config(
        f"""[crawl]
allowed_domains = ["www.canada.ca"]

[archive]
url = "http://127.0.0.1:{port}"
delay = {delay}
retries = 2

[[watch]]
url = "{HUB}"
topics = ["innovation-stream"]

[[watch]]
url = "{CODES}"

[[watch]]
url = "{PILOT}"
topics = ["innovation-stream"]
{extra}""",
        storage=storage,
        name=name,
    )


def changes(cfg: Path) -> list[dict]:
    p = cli("changes", "--config", str(cfg), "--format", "json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture
def story():
    archive = FakeArchive()
    innovation_story(archive)
    with scripted_server(archive.answer) as port:
        yield archive, port


def history(db_url: str) -> dict[str, list]:
    """What a backfill leaves, without ids: versions, changes and the captures read, per page."""
    from policywatch.storage import open_database
    from policywatch.storage.models import Change, Fetch, Page, Version

    db = open_database(db_url)
    try:
        with db.session() as s:
            url = {p.id: p.url for p in s.scalars(select(Page))}
            return {
                "versions": sorted(
                    (url[v.page_id], v.captured_at.isoformat(), v.content_hash)
                    for v in s.scalars(select(Version))
                ),
                "changes": sorted(
                    (url[c.page_id], c.detected_at.isoformat(), c.summary, c.significance)
                    for c in s.scalars(select(Change))
                ),
                "captures": sorted(
                    (url[f.page_id], f.archive_capture, f.outcome) for f in s.scalars(select(Fetch))
                ),
            }
    finally:
        db.dispose()


# --- the story, end to end ----------------------------------------------------------------------------------
def test_the_innovation_stream_story_from_the_archive(story, write_config, tmp_path, db_url):
    """A new user's first command after `init` can be backfill: the history then holds the pilot's release on
    March 22, 2024 as details released, high, with the $155 fee, dated at the capture; nothing on the other
    dates (the furniture-only capture, the archive's error page, the maintenance page, the recovery, the
    alias and the duplicates are no change); a second run stores nothing more. On SQLite and PostgreSQL."""
    archive, port = story
    cfg = config(write_config, port, storage=db_url)
    p = policywatch("backfill", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert "2 changes stored from 13 captures read" in p.stdout
    assert "the archive's own page, not a capture of the site" in p.stderr
    assert "error page served with status 200" in p.stderr  # the maintenance pages

    got = changes(cfg)
    assert {c["detected_at"][:10] for c in got} == {"2024-03-22"}
    hub = next(c for c in got if c["url"] == HUB)
    assert hub["details_released"] and hub["significance"] == "high" and hub["backfilled"] is True
    assert hub["detected_at"] == "2024-03-22T17:00:00+00:00"
    assert "$155" in hub["summary"]
    assert any(f["value"] == "$155" for f in hub["facts"]["added"])
    codes = next(c for c in got if c["url"] == CODES)
    assert codes["details_released"] and "C88" in codes["summary"]
    assert all(c["backfilled"] for c in got)

    # requests went to the archive only, each capture once, every listing for the page and its alias
    paths = [p for _, p in archive.requests]
    assert all(p.startswith(("/cdx/search/cdx?", "/web/")) for p in paths)
    assert len(archive.capture_requests()) == 13
    assert any("content/canadasite" in p for p in paths if p.startswith("/cdx"))

    again = policywatch("backfill", "--config", str(cfg))
    assert (
        again.returncode == 0 and "0 changes stored from 0 captures read (13 already stored)" in again.stdout
    )
    assert len(archive.capture_requests()) == 13  # nothing read twice
    assert changes(cfg) == got

    # the site shows them at their historic dates, marked as from the archive
    index = (tmp_path / "reports" / "site" / "index.html").read_text()
    assert "from the archive" in index and "2024-03-22" in index
    assert "[From the archive]" in (tmp_path / "reports" / "site" / "feed.atom").read_text()


def test_a_new_users_first_command_after_init_can_be_backfill(story, tmp_path):
    """`init` writes the starter watchlist (it watches the hub, the pilot and the codes pages); pointing its
    `[archive]` at the archive is all a backfill needs."""
    archive, port = story
    cfg = tmp_path / "starter.toml"
    assert cli("init", str(cfg)).returncode == 0
    assert "# [archive]" in cfg.read_text()
    cfg.write_text(cfg.read_text() + f'\n[archive]\nurl = "http://127.0.0.1:{port}"\ndelay = 0\n')
    p = policywatch("backfill", "--config", str(cfg), "--quiet")
    assert p.returncode == 0, p.stderr
    got = changes(cfg)
    assert [c["detected_at"][:10] for c in got] == ["2024-03-22", "2024-03-22"]
    assert any(c["details_released"] and "$155" in c["summary"] for c in got)


def test_backfilled_changes_are_never_emailed(story, write_config, tmp_path):
    """Digests cover live changes only: a subscriber who exists before a backfill gets nothing from it, and
    watermarks are left as they were."""
    import sqlite3

    from tests.smtp_server import SmtpSink

    archive, port = story
    with SmtpSink() as smtp:
        cfg = config(
            write_config,
            port,
            extra=f"""
[mail]
host = "127.0.0.1"
port = {smtp.port}
sender = "policywatch@example.org"
timeout = 5

[[subscriber]]
email = "consultant@example.org"
topics = ["innovation-stream"]
""",
        )
        assert cli("digest", "send", "--config", str(cfg)).returncode == 0  # the subscriber's row
        assert policywatch("backfill", "--config", str(cfg)).returncode == 0
        assert any(c["details_released"] for c in changes(cfg))  # there is something worth a mail
        preview = cli("digest", "preview", "--config", str(cfg))
        assert preview.returncode == 0 and "$155" not in preview.stdout and "C88" not in preview.stdout
        assert cli("digest", "send", "--config", str(cfg)).returncode == 0
        assert smtp.messages == []
        con = sqlite3.connect(tmp_path / "history.db")
        try:
            assert con.execute("SELECT count(*) FROM digests").fetchone()[0] == 0
        finally:
            con.close()


# --- interleaving with live history -------------------------------------------------------------------------
def test_old_captures_go_into_history_in_time_order_never_against_the_live_page(
    story, write_config, tmp_path
):
    """Live history first (the page as it is today), then a backfill: the captures are stored before it in
    time, the March 22 change is recorded at its date, no change compares an old capture with today's page,
    and the next live night still compares with today's version."""
    from policywatch.monitor.config import load_config
    from policywatch.monitor.pagework import FetchResult, PageWork
    from policywatch.monitor.urls import normalize_url
    from policywatch.storage import open_database
    from policywatch.storage import queries as q
    from tests.archive_fixture import RELEASED, page

    archive, port = story
    cfg_path = config(write_config, port)
    cfg = load_config(cfg_path)
    from policywatch.monitor.demo import LATER, _md

    today = page(
        _md("tech-talent-strategy-backgrounder").replace(LATER, RELEASED + " Apply online."), 2, "2026-12-01"
    )
    db = open_database(cfg.storage_url)
    try:
        with db.session() as s:
            run_id = q.open_run(s).id
        live = PageWork(db, cfg, run_id, first_run=True).process(
            FetchResult(url=HUB, status=200, body=today, content_type="text/html; charset=UTF-8")
        )
        assert live.result == "new"
        with db.session() as s:
            q.finish_run(s, run_id, "completed")
    finally:
        db.dispose()

    assert policywatch("backfill", "--config", str(cfg_path), "--url", HUB).returncode == 0
    got = [c for c in changes(cfg_path) if c["backfilled"]]
    assert [c["detected_at"][:10] for c in got] == ["2024-03-22"]
    assert got[0]["details_released"]

    db = open_database(cfg.storage_url)
    try:
        with db.session() as s:
            pid = q.get_page(s, normalize_url(HUB)).id
            latest = q.last_version(s, pid)
            assert latest is not None and latest.captured_at.year == 2026  # today's version is still the last
            run_id = q.open_run(s).id
        again = PageWork(db, cfg, run_id, first_run=False).process(
            FetchResult(url=HUB, status=200, body=today, content_type="text/html; charset=UTF-8")
        )
        assert again.result == "unchanged"  # compared with today's version, not with a 2024 capture
    finally:
        db.dispose()


# --- interrupted and resumed --------------------------------------------------------------------------------
def test_killed_midway_and_run_again_equals_one_uninterrupted_run(write_config, tmp_path):
    slow = FakeArchive(slow=0.15)
    innovation_story(slow)
    whole = FakeArchive()
    innovation_story(whole)
    with scripted_server(slow.answer) as port, scripted_server(whole.answer) as port2:
        killed_db = f"sqlite:///{(tmp_path / 'killed.db').as_posix()}"
        cfg = config(write_config, port, storage=killed_db)
        proc = subprocess.Popen(
            [str(BIN / "policywatch"), "backfill", "--config", str(cfg), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
        deadline = time.monotonic() + 60
        while len(slow.capture_requests()) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        read_before = len(slow.capture_requests())
        assert 0 < read_before < 13
        resumed = policywatch("backfill", "--config", str(cfg))
        assert resumed.returncode == 0, resumed.stderr
        assert "already stored" in resumed.stdout

        one_db = f"sqlite:///{(tmp_path / 'one.db').as_posix()}"
        one = config(write_config, port2, storage=one_db, name="one.toml")
        assert policywatch("backfill", "--config", str(one)).returncode == 0
        assert history(killed_db) == history(one_db)
        # at most the capture in flight when it was killed is read twice
        assert len(slow.capture_requests()) <= 13 + 1


# --- politeness and the archive's limits --------------------------------------------------------------------
def test_the_archives_429_and_retry_after_are_honoured(write_config):
    archive = FakeArchive(throttle_first=1, retry_after=1)
    innovation_story(archive)
    with scripted_server(archive.answer) as port:
        cfg = config(write_config, port)
        p = policywatch("backfill", "--config", str(cfg), "--url", PILOT)
        assert p.returncode == 0, p.stderr
        assert "the archive asked to wait 1s (HTTP 429, Retry-After)" in p.stderr
    assert archive.requests[0][1] == archive.requests[1][1]  # the same request again


def test_the_client_waits_as_long_as_retry_after_asks_and_keeps_its_delay():
    """The archive client on a clock of its own: it sleeps the Retry-After the archive sent (not its own
    delay) before asking again, and keeps one request per `delay` otherwise."""
    from policywatch.monitor.backfill.wayback import ArchiveClient
    from policywatch.monitor.config import ArchiveSettings

    archive = FakeArchive(throttle_first=1, retry_after=7)
    innovation_story(archive)
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with scripted_server(archive.answer) as port:
        client = ArchiveClient(
            ArchiveSettings(url=f"http://127.0.0.1:{port}", delay=2.0, retries=2),
            "policywatch-test",
            sleep=sleep,
            clock=lambda: now[0],
        )
        captures = client.list_captures(PILOT).captures
        client.fetch(captures[0])
    assert [round(x, 3) for x in slept] == [7.0, 2.0, 2.0]  # Retry-After, then the delay between requests
    assert len(captures) == 3


def test_requests_never_leave_the_archive(write_config, tmp_path):
    """A capture that redirects off the archive's host is not followed (and the watched site, here a loopback
    server of its own, is never asked anything)."""
    site_hits: list[str] = []

    def site(path: str):
        site_hits.append(path)
        return 200, {"Content-Type": "text/html"}, b"<html><h1>live</h1></html>"

    with scripted_server(site) as site_port:
        archive = FakeArchive()
        innovation_story(archive)
        real = archive.answer

        def answer(path: str):
            if path.startswith("/web/20240801120000"):
                return 302, {"Location": f"http://127.0.0.1:{site_port}/elsewhere"}, b""
            return real(path)

        with scripted_server(answer) as port:
            cfg = config(write_config, port)
            p = policywatch("backfill", "--config", str(cfg), "--url", PILOT)
    assert site_hits == []
    assert p.returncode == 1 and "redirected off its host" in p.stderr
    assert "run backfill again to retry them" in p.stderr


def test_max_captures_and_period(story, write_config):
    archive, port = story
    cfg = config(write_config, port)
    p = policywatch(
        "backfill",
        "--config",
        str(cfg),
        "--url",
        HUB,
        "--from",
        "2024-01-01",
        "--to",
        "2024-12-31",
        "--max-captures",
        "2",
    )
    assert p.returncode == 0, p.stderr
    assert "2 captures listed, 2 read" in p.stderr
    cdx = [p for _, p in archive.requests if p.startswith("/cdx")]
    # plain dates are days in [schedule] timezone (America/Toronto here), sent as the archive's UTC digits
    assert all("from=20240101050000" in q and "to=20250101045959" in q for q in cdx), cdx
    p = policywatch("backfill", "--config", str(cfg), "--url", HUB, "--from", "20240101", "--to", "20241231")
    cdx = [p for _, p in archive.requests if p.startswith("/cdx")][-1]
    assert "from=20240101&" in cdx + "&" and "to=20241231" in cdx  # archive digits are the archive's own
    bad = policywatch("backfill", "--config", str(cfg), "--from", "last spring")
    assert bad.returncode == 2 and "--from" in bad.stderr and "not a date" in bad.stderr


# --- WARC files ---------------------------------------------------------------------------------------------
def test_warc_import_is_the_reverse_of_export(story, write_config, tmp_path):
    """The captures exported from one history as WARC, imported into an empty one, give the same history."""
    archive, port = story
    cfg = config(write_config, port)
    assert policywatch("backfill", "--config", str(cfg)).returncode == 0
    warc = tmp_path / "history.warc.gz"
    assert cli("export", "warc", "--config", str(cfg), "--out", str(warc)).returncode == 0

    fresh_db = f"sqlite:///{(tmp_path / 'fresh.db').as_posix()}"
    fresh = config(write_config, port, storage=fresh_db, name="fresh.toml")
    requests_before = len(archive.requests)
    p = policywatch("backfill", "--config", str(fresh), "--warc", str(warc))
    assert p.returncode == 0, p.stderr
    assert len(archive.requests) == requests_before  # no archive needed
    mine = changes(fresh)
    theirs = changes(cfg)
    assert [(c["url"], c["detected_at"], c["summary"]) for c in mine] == [
        (c["url"], c["detected_at"], c["summary"]) for c in theirs
    ]
    assert (
        policywatch("backfill", "--config", str(fresh), "--warc", str(tmp_path / "nope.warc")).returncode == 2
    )


# --- the archive's quirks, unit by unit ---------------------------------------------------------------------
def test_captures_are_cleaned_of_the_archives_quirks():
    https = "https://www.canada.ca/en/x.html"
    http = "http://www.canada.ca/en/x.html"
    listed = [
        Capture("20240101000000", http, "AAA"),
        Capture("20240101000000", https, "AAA"),  # the same timestamp twice: https kept
        Capture("20240201000000", https, "AAA"),  # the same content again: dropped
        Capture("20240301000000", http, "BBB"),
        Capture("20240401000000", https, "AAA"),  # back to the old content: a change, kept
    ]
    got = clean(listed[::-1])
    assert [(c.timestamp, c.original, c.digest) for c in got] == [
        ("20240101000000", https, "AAA"),
        ("20240301000000", http, "BBB"),
        ("20240401000000", https, "AAA"),
    ]
    assert aliases(https) == [https, "https://www.canada.ca/content/canadasite/en/x.html"]
    assert (
        aliases("https://www.canada.ca/content/canadasite/fr/y.html")[1] == "https://www.canada.ca/fr/y.html"
    )
    assert aliases("https://www.alberta.ca/aaip.aspx") == ["https://www.alberta.ca/aaip.aspx"]
    assert [c.timestamp for c in spread(got, 2)] == ["20240101000000", "20240401000000"]
    assert archive_day("2023-06-27") == "20230627" and archive_day("2023-06-27T10:15:00") == "20230627101500"
    rows = (
        b'[["urlkey","timestamp","original","mimetype","statuscode","digest","length"],'
        b'["ca,canada)/en/x.html","20240101000000","https://www.canada.ca/en/x.html","text/html","200","AAA","9"]]'
    )
    assert parse_cdx(rows) == [Capture("20240101000000", https, "AAA", "text/html", "200")]
    assert parse_cdx(b"[]") == [] and parse_cdx(b"") == []
    with pytest.raises(ValueError):
        parse_cdx(b"<html>rate limited</html>")


def test_charsets_that_differ_between_captures_are_no_change(write_config, tmp_path):
    """One capture served as windows-1252, the next as UTF-8, the same words: no change."""
    text = "<p>Les résidents temporaires doivent présenter une demande en ligne.</p>"
    html = (
        "<!DOCTYPE html><html><head><title>Résidents</title></head><body><main><h1>Résidents</h1>{}</main>"
        "</body></html>"
    )
    archive = FakeArchive()
    url = "https://www.canada.ca/fr/immigration.html"
    archive.add(url, "20230101000000", html.format(text).encode("cp1252"), "text/html; charset=windows-1252")
    archive.add(url, "20230601000000", html.format(text).encode("utf-8"), "text/html; charset=UTF-8")
    archive.add(url, "20231201000000", html.format(text).encode("utf-8"), "text/html; charset=iso-8859-1")
    with scripted_server(archive.answer) as port:
        cfg = config(write_config, port)
        p = policywatch("backfill", "--config", str(cfg), "--url", url)
    assert p.returncode == 0, p.stderr
    assert "1 versions, 0 changes" in p.stderr


def test_history_show_and_diff_find_a_page_by_id_or_part_of_its_url(story, write_config):
    """Over a backfilled history: a page is named by its id, its URL or a unique part of it; an ambiguous
    or unknown part gets the candidates or the closest URLs; a page with one version says so in `diff`."""
    archive, port = story
    cfg = str(config(write_config, port))
    assert policywatch("backfill", "--config", cfg, "--quiet").returncode == 0
    by_part = cli("history", "canadas-tech-talent-strategy", "--config", cfg, "--format", "json")
    assert by_part.returncode == 0, by_part.stderr
    versions = json.loads(by_part.stdout)
    assert [v["captured_at"][:10] for v in versions] == ["2023-06-27", "2024-03-22"]  # in capture order
    page_id = cli(
        "sql", "SELECT id FROM pages WHERE url LIKE '%tech-talent%'", "--config", cfg, "--format", "json"
    )
    pid = json.loads(page_id.stdout)[0]["id"]
    assert json.loads(cli("history", str(pid), "--config", cfg, "--format", "json").stdout) == versions
    assert "$155" in cli("show", "tech-talent-strategy", "--config", cfg).stdout
    d = cli("diff", "tech-talent-strategy", "--config", cfg)
    assert d.returncode == 0 and "$155" in d.stdout
    several = cli("history", "foreign-workers", "--config", cfg)
    assert (
        several.returncode == 2
        and "matches several pages" in several.stderr
        and "exemption-codes" in several.stderr
    )
    unknown = cli("history", "innovation-stream-pilott.html", "--config", cfg)
    assert (
        unknown.returncode == 2
        and "did you mean" in unknown.stderr
        and "innovation-stream-pilot.html" in unknown.stderr
    )
    one = cli("diff", "innovation-stream-pilot", "--config", cfg)
    assert (
        one.returncode == 0 and "has one stored version" in one.stdout and "nothing to compare" in one.stdout
    )
