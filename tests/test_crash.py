"""kill -9 mid-pass, of the pass process or of its crawl (which stores the pages): the history stays
consistent, no process lingers, and after the next pass every change of the night has gone out exactly once
(a real SMTP server on loopback)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, permits_config_body, policywatch
from tests.smtp_server import SmtpSink

pytestmark = pytest.mark.slow


def _config(site, write_config, smtp_port: int) -> str:
    return str(
        write_config(
            f"""
[mail]
host = "127.0.0.1"
port = {smtp_port}
sender = "policywatch <alerts@policywatch.test>"
timeout = 5

[[subscriber]]
email = "alice@example.org"
"""
            + permits_config_body(site)
        )
    )


def _q(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _pids_with(text: str) -> list[int]:
    """Processes whose command line mentions `text` (the crawl child and its page workers name the config)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (d / "stat").read_text().split(")")[-1].split()[0]
            except OSError:
                continue
            if text in cmd and state != "Z":
                out.append(int(d.name))
    return out


def _worker_pids(crawl_pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().split(")")[-1].split()[1]) == crawl_pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _consistent(db: Path) -> None:
    assert _q(db, "PRAGMA integrity_check") == [("ok",)]
    assert _q(
        db, "SELECT count(*) FROM versions v LEFT JOIN fetches f ON f.id = v.fetch_id WHERE f.id IS NULL"
    ) == [(0,)]
    assert _q(
        db,
        "SELECT count(*) FROM changes c LEFT JOIN versions v ON v.id = c.to_version_id "
        "WHERE c.to_version_id IS NOT NULL AND v.id IS NULL",
    ) == [(0,)]
    assert _q(
        db,
        "SELECT count(*) FROM versions v LEFT JOIN bodies b ON b.sha256 = v.raw_hash WHERE b.sha256 IS NULL",
    ) == [(0,)]


@pytest.mark.parametrize("victim", ["pass", "crawl"])
def test_kill_9_mid_pass_loses_and_doubles_nothing(victim, permits_site, write_config, tmp_path):
    sink = SmtpSink()
    db = tmp_path / "history.db"
    with sink:
        cfg = _config(permits_site, write_config, sink.port)
        assert policywatch("run", "--config", cfg).returncode == 0  # night 1: baselines, nothing to tell

        permits_site.night(2)
        permits_site.server.delay = 0.5  # slow enough to be killed mid-crawl
        proc = subprocess.Popen(
            [str(BIN / "policywatch"), "run", "--config", cfg, "--quiet"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _q(
                db, "SELECT 1 FROM fetches WHERE run_id = 2 LIMIT 1"
            ):
                time.sleep(0.05)
            crawl = [p for p in _pids_with("run-2.request.json") if p != proc.pid]  # its typed request
            assert crawl, "no crawl child found"
            workers = _worker_pids(crawl[0])
            os.kill(proc.pid if victim == "pass" else crawl[0], signal.SIGKILL)
            proc.communicate(timeout=60)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                _pids_with("run-2.request.json") or any(map(_alive, workers))
            ):
                time.sleep(0.1)
            assert not any(map(_alive, workers)), "page workers outlived the kill"
            assert not _pids_with("run-2.request.json"), "the crawl outlived the kill"
        finally:
            if proc.poll() is None:
                proc.kill()
        _consistent(db)

        permits_site.server.delay = 0
        p = policywatch(
            "run", "--config", cfg
        )  # the next pass: what the killed one did not store, and the mail
        assert p.returncode == 0, p.stderr
        _consistent(db)

    assert _q(db, "SELECT count(*) FROM runs WHERE status = 'running'") == [(0,)]
    assert _q(db, "SELECT status FROM runs WHERE id = 2") == [
        ("failed",)
    ]  # the killed pass, marked by the next
    pages = _q(db, "SELECT count(*) FROM pages")[0][0]
    assert _q(db, "SELECT count(*) FROM fetches WHERE run_id = 3")[0][0] == pages  # the next pass covered all
    changed = {u for (u,) in _q(db, "SELECT url FROM changes WHERE run_id > 1")}
    assert len(changed) >= 3  # the night's real changes (fee, a new round, a new release, the hub's list)
    per_change = _q(
        db,
        "SELECT change_id, count(*) FROM digest_items GROUP BY subscriber_id, change_id HAVING count(*) > 1",
    )
    assert per_change == []  # no change in two digests
    told = {u for (u,) in _q(db, "SELECT c.url FROM digest_items i JOIN changes c ON c.id = i.change_id")}
    assert told == changed  # every change of the night went out
    sent = [m for m in sink.parsed() if m["To"] == "alice@example.org"]
    assert 1 <= len(sent) <= 2 and len({m["Message-ID"] for m in sent}) == len(sent)
    body = "\n".join(
        part.get_content() for m in sent for part in m.walk() if part.get_content_type() == "text/plain"
    )
    for url in changed:
        assert body.count(url) >= 1
