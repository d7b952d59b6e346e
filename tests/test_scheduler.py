"""The nightly daemon: cron in the configured time zone across DST, catch-up after downtime (exactly one
pass), a crashing pass that leaves the daemon alive, and real `policywatch schedule` processes stopped with
SIGTERM."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from policywatch.monitor.config import load_config
from policywatch.monitor.nightly.scheduler import (
    NIGHTLY,
    Daemon,
    JobSpec,
    fire_times,
    missed_fire_time,
    pass_command,
)
from policywatch.storage import open_database
from policywatch.storage import queries as q
from tests.conftest import BIN, permits_config_body, policywatch

TORONTO = ZoneInfo("America/Toronto")


def test_nightly_cron_stays_at_3am_local_across_dst():
    trigger = JobSpec(NIGHTLY, "0 3 * * *").trigger("America/Toronto")
    spring = fire_times(
        trigger, datetime(2026, 3, 6, 12, tzinfo=TORONTO), datetime(2026, 3, 10, tzinfo=TORONTO)
    )
    fall = fire_times(
        trigger, datetime(2026, 10, 30, 12, tzinfo=TORONTO), datetime(2026, 11, 3, tzinfo=TORONTO)
    )
    assert [t.astimezone(UTC).hour for t in spring] == [8, 7, 7]  # EST → EDT on 2026-03-08
    assert [t.astimezone(UTC).hour for t in fall] == [7, 8, 8]  # EDT → EST on 2026-11-01
    assert all(t.astimezone(TORONTO).hour == 3 for t in spring + fall)


def test_a_time_inside_the_repeated_hour_counts_once():
    """01:30 happens twice when DST ends; the catch-up arithmetic must not loop on APScheduler's answer."""
    trigger = JobSpec(NIGHTLY, "30 1 * * *").trigger("America/Toronto")
    times = fire_times(
        trigger, datetime(2026, 10, 31, 12, tzinfo=TORONTO), datetime(2026, 11, 2, 12, tzinfo=TORONTO)
    )
    assert len(times) == len(set(times)) and 2 <= len(times) <= 3


def test_missed_fire_time_inside_the_grace_window():
    spec = JobSpec(NIGHTLY, "0 3 * * *")
    now = datetime(2026, 11, 25, 8, 0, tzinfo=TORONTO)
    grace = timedelta(hours=6)
    tonight = datetime(2026, 11, 25, 3, 0, tzinfo=TORONTO)
    assert missed_fire_time(spec, "America/Toronto", now, grace, None) == tonight
    assert missed_fire_time(spec, "America/Toronto", now, grace, tonight - timedelta(days=3)) == tonight
    assert missed_fire_time(spec, "America/Toronto", now, grace, tonight + timedelta(minutes=1)) is None
    # outside the grace window: wait for tomorrow instead of running at noon
    assert missed_fire_time(spec, "America/Toronto", now + timedelta(hours=4), grace, None) is None


def _daemon_config(
    write_config,
    site_host: str,
    watch: str,
    cron: str = "0 3 * * *",
    tz: str = "America/Toronto",
    extra: str = "",
) -> str:
    return str(
        write_config(f"""
[crawl]
allowed_domains = ["{site_host}"]
download_delay = 0
autothrottle = false
retries = 0

[schedule]
cron = "{cron}"
timezone = "{tz}"
misfire_grace_hours = 6
{extra}
[[watch]]
url = "{watch}"
""")
    )


def test_catch_up_after_downtime_runs_exactly_one_pass(write_config, tmp_path):
    cfg = load_config(_daemon_config(write_config, "www.canada.ca", "https://www.canada.ca/en/x.html"))
    db = open_database(cfg.storage_url)
    try:
        with db.session() as s:  # the last pass ran three nights ago; the machine was down since
            run = q.open_run(s)
            run.started_at = datetime(2026, 11, 22, 3, 0, tzinfo=TORONTO)
            q.finish_run(s, run.id, "completed")
        calls: list[str] = []
        clock = [datetime(2026, 11, 25, 7, 30, tzinfo=TORONTO)]
        daemon = Daemon(cfg, db, runner=lambda job: calls.append(job) or 0, now=lambda: clock[0])
        assert daemon.catch_up() == [NIGHTLY]
        assert calls == [NIGHTLY]  # three missed nights → one pass
        with db.session() as s:  # that pass is now in the history
            run = q.open_run(s)
            run.started_at = clock[0]
            q.finish_run(s, run.id, "completed")
        assert daemon.catch_up() == [] and calls == [NIGHTLY]  # a restart right after does not run it again
    finally:
        db.dispose()


def test_a_crashing_pass_leaves_the_daemon_alive(write_config):
    cfg = load_config(_daemon_config(write_config, "www.canada.ca", "https://www.canada.ca/en/x.html"))
    db = open_database(cfg.storage_url)
    outcomes = iter([RuntimeError("cannot fork"), -9, 0])

    def runner(job: str) -> int:
        nxt = next(outcomes)
        if isinstance(nxt, Exception):
            raise nxt
        return nxt

    try:
        daemon = Daemon(cfg, db, runner=runner)
        assert [daemon.run_job(NIGHTLY) for _ in range(3)] == [-1, -9, 0]
        assert daemon.results == [(NIGHTLY, -1), (NIGHTLY, -9), (NIGHTLY, 0)]
    finally:
        db.dispose()


def _utc_cron_minutes_ago(minutes: int) -> str:
    t = datetime.now(UTC) - timedelta(minutes=minutes)
    return f"{t.minute} {t.hour} * * *"


def _runs(tmp_path) -> list[tuple]:
    con = sqlite3.connect(tmp_path / "history.db")
    try:
        return con.execute("SELECT run_id, status, scope, message FROM run_log ORDER BY run_id").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def _wait(predicate, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _stop_daemon_when(
    cfg: str, ready: Callable[[str], bool], on_stop: Callable[[], object] | None = None
) -> tuple[int, str, bool]:
    """Start `policywatch schedule`, wait until `ready(stderr so far)` (the daemon's own log lines, read as
    they come: no sleeps), send SIGTERM; (exit code, stderr, alive before SIGTERM)."""
    daemon = subprocess.Popen(
        [str(BIN / "policywatch"), "schedule", "--config", cfg],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    lines: list[str] = []
    seen = threading.Condition()

    def read() -> None:
        assert daemon.stderr is not None
        for line in daemon.stderr:
            with seen:
                lines.append(line)
                seen.notify_all()
        with seen:
            lines.append("")  # EOF
            seen.notify_all()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        end = time.monotonic() + 120
        with seen:  # woken by each log line; a predicate on another event (a request) is re-read each 0.2 s
            while not (ready("".join(lines)) or (lines and lines[-1] == "")):
                assert time.monotonic() < end, lines
                seen.wait(0.2)
        alive = daemon.poll() is None
        daemon.send_signal(signal.SIGTERM)
        if on_stop is not None:
            on_stop()
        daemon.wait(timeout=90)
        reader.join(30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    return daemon.returncode, "".join(lines), alive


@pytest.mark.slow
def test_daemon_process_catches_up_then_stops_on_sigterm(permits_site, write_config, tmp_path):
    """A real `policywatch schedule`: the pass due 2 minutes ago runs at start (once), SIGTERM stops it
    cleanly."""
    cfg = _daemon_config(
        write_config,
        permits_site.host,
        permits_site.url("/en/work-permits.html"),
        cron=_utc_cron_minutes_ago(2),
        tz="UTC",
    )
    # "scheduled …" is logged once the catch-up pass has ended (its child exited) and the daemon waits
    rc, err, alive = _stop_daemon_when(cfg, lambda log: "scheduled nightly: next pass" in log)
    assert alive  # still serving after the catch-up pass, waiting for tomorrow
    assert rc == 0, err
    assert "did not run" in err and "pass nightly: completed" in err and "scheduled nightly: next pass" in err
    assert [r[:3] for r in _runs(tmp_path)] == [(1, "completed", "nightly")]


@pytest.mark.slow
def test_sigterm_during_a_pass_stops_it_cleanly(permits_site, write_config, tmp_path):
    permits_site.server.hold = threading.Event()  # every response waits: the pass is crawling when we stop it
    cfg = _daemon_config(
        write_config,
        permits_site.host,
        permits_site.url("/en/work-permits.html"),
        cron=_utc_cron_minutes_ago(1),
        tz="UTC",
    )
    hold = permits_site.server.hold
    rc, err, _alive = _stop_daemon_when(cfg, lambda log: bool(permits_site.server.requests), hold.set)
    assert rc == 0, err
    runs = _runs(tmp_path)
    assert (
        len(runs) == 1 and runs[0][1] == "failed" and "interrupted" in runs[0][3]
    )  # recorded, not half-written
    assert "stopped (SIGTERM)" in err and "crashed" not in err
    permits_site.server.hold = None
    p = policywatch("run", "--config", cfg)  # the lock was released: the next pass runs
    assert p.returncode == 0, p.stderr


@pytest.mark.slow
def test_job_pass_covers_its_watches_only(permits_site, write_config, tmp_path):
    """A `[[schedule.jobs]]` pass (e.g. IRCC's JSON hourly) fetches only its prefixes and is recorded with its
    scope."""
    extra = f"""
[[schedule.jobs]]
name = "data-hourly"
cron = "0 * * * *"
url_prefixes = ["{permits_site.url("/data/")}"]
"""
    cfg = str(
        write_config(f"""
[crawl]
allowed_domains = ["{permits_site.host}"]
download_delay = 0
retries = 0

[schedule]
cron = "0 3 * * *"
{extra}
[[watch]]
url = "{permits_site.url("/en/work-permits.html")}"

[[watch]]
url = "{permits_site.url("/data/rounds.json")}"
""")
    )
    p = policywatch("run", "--config", cfg, "--job", "data-hourly")
    assert p.returncode == 0, p.stderr
    assert "1 fetched" in p.stdout
    assert [r[2] for r in _runs(tmp_path)] == ["data-hourly"]
    p = policywatch("run", "--config", cfg, "--job", "nope")
    assert p.returncode == 2 and "no job named 'nope'" in p.stderr and "data-hourly" in p.stderr
    p = policywatch("status", "--config", cfg)
    assert p.returncode == 0, p.stderr
    assert "last pass: run 1 (data-hourly) completed" in p.stdout
    assert "next nightly:" in p.stdout and "next data-hourly:" in p.stdout


@pytest.mark.slow
def test_passes_run_from_a_directory_that_holds_the_reports_folder(permits_site, write_config, tmp_path):
    """The daemon starts each pass as `python -P -m policywatch.monitor run` in the user's directory, which
    holds the reports folder from the first night on (and may hold folders named like policywatch's other
    packages). With the editable install `make` does, `-m` put that directory first on sys.path and its
    `reports` folder shadowed the package: the second night failed. Both nights must complete, the crawl child
    included."""
    cfg = write_config(permits_config_body(permits_site))
    for decoy in ("reports/site", "storage", "monitor", "crawler"):
        (tmp_path / decoy).mkdir(parents=True, exist_ok=True)
    for night in (1, 2):
        p = subprocess.run(
            pass_command(cfg, NIGHTLY),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert p.returncode == 0, f"night {night}: {p.stderr[-2000:]}"
    assert [r[:2] for r in _runs(tmp_path)] == [(1, "completed"), (2, "completed")]
