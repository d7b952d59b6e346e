"""The nightly daemon: APScheduler 3.11's BlockingScheduler with cron triggers, each pass in a child process.

Why a child process per pass: Twisted's reactor cannot restart, and a crash or leak in one pass must not take
the daemon down. Why our own catch-up: APScheduler's memory job store forgets everything on restart, and
re-adding a job resets its next run time, so a machine that was down at 03:00 would silently skip the night.
At start, if the run history has no pass of a job since its last fire time inside the grace window, exactly
one pass runs (however many fire times were missed). The pass lock in the database makes a second pass
impossible anyway.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select

from policywatch.monitor.config import Config
from policywatch.monitor.nightly.child import python_module
from policywatch.storage.models import Run

log = logging.getLogger("policywatch.schedule")

NIGHTLY = "nightly"


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: `nightly` (the whole watchlist) or a `[[schedule.jobs]]` entry."""

    name: str
    cron: str

    def trigger(self, tz: str) -> CronTrigger:
        return CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(tz))


def job_specs(config: Config) -> list[JobSpec]:
    return [JobSpec(NIGHTLY, config.schedule.cron)] + [JobSpec(j.name, j.cron) for j in config.schedule.jobs]


def fire_times(trigger: CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time of `trigger` in (start, end], as distinct instants.

    APScheduler answers a wall-clock time that occurs twice (the hour repeated when DST ends) again and again;
    we step past it, so a cron inside that hour counts each instant once."""
    out: list[datetime] = []
    cursor = start + timedelta(microseconds=1)
    for _ in range(100_000):
        t = trigger.get_next_fire_time(None, cursor)
        if t is None or t > end:
            break
        if t < cursor or (out and t <= out[-1]):
            cursor += timedelta(minutes=1)  # APScheduler answered a time already passed: step past it
            continue
        out.append(t)
        cursor = t + timedelta(seconds=1)
    return out


def next_fire_time(spec: JobSpec, tz: str, now: datetime) -> datetime | None:
    return spec.trigger(tz).get_next_fire_time(None, now)


def missed_fire_time(
    spec: JobSpec, tz: str, now: datetime, grace: timedelta, last_start: datetime | None
) -> datetime | None:
    """The latest fire time inside the grace window that no pass of this job has started since, if any."""
    times = fire_times(spec.trigger(tz), now - grace, now)
    if not times:
        return None
    last = times[-1]
    if last_start is not None and last_start >= last:
        return None
    return last


def last_start(db, scope: str) -> datetime | None:
    with db.session() as s:
        return s.scalar(select(func.max(Run.started_at)).where(Run.scope == scope))


Runner = Callable[[str], int]


def pass_command(config_path: Path, job: str) -> list[str]:
    cmd = [*python_module("policywatch.monitor"), "run", "--config", str(config_path), "--quiet"]
    return cmd + (["--job", job] if job != NIGHTLY else [])


class Daemon:
    """Owns the scheduler, the child pass process, and a clean shutdown on SIGTERM/SIGINT."""

    def __init__(
        self, config: Config, db, *, runner: Runner | None = None, now: Callable[[], datetime] | None = None
    ):
        assert config.path is not None
        self.config = config
        self.db = db
        self.runner = runner or self._run_child
        self.now = now or (lambda: datetime.now(UTC))
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.results: list[tuple[str, int]] = []
        self.scheduler = BlockingScheduler(
            timezone=ZoneInfo(config.schedule.timezone),
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(config.schedule.misfire_grace_hours * 3600),
            },
        )

    # --- jobs ---------------------------------------------------------------------------------------------
    def _run_child(self, job: str) -> int:
        cmd = pass_command(self.config.path.resolve(), job)  # type: ignore[union-attr]
        log.info("starting pass %s: %s", job, " ".join(cmd))
        self.child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        try:
            return self.child.wait()
        finally:
            self.child = None

    def run_job(self, job: str) -> int:
        """Run one pass of `job`; whatever happens to it, the daemon lives on."""
        if self.stopping.is_set():
            return -1
        try:
            rc = self.runner(job)
        except Exception:  # the daemon must outlive any pass
            log.exception("pass %s could not be started", job)
            rc = -1
        stopped = rc in (143, -signal.SIGTERM) and self.stopping.is_set()
        meaning = {
            0: "completed",
            1: "failed (see the run report)",
            2: "configuration error",
            3: "database unusable",
            4: "skipped: another pass was running",
            143: "stopped (SIGTERM)",
        }.get(rc, f"crashed (exit {rc})")
        if stopped:  # our own SIGTERM, even one that reached the pass before it could catch it
            meaning = "stopped (SIGTERM)"
        (log.info if rc in (0, 4) or stopped else log.error)("pass %s: %s", job, meaning)
        self.results.append((job, rc))
        return rc

    def catch_up(self) -> list[str]:
        """Run (once) each job whose last fire time inside the grace window has no pass since."""
        grace = timedelta(hours=self.config.schedule.misfire_grace_hours)
        now = self.now()
        missed = []
        for spec in job_specs(self.config):
            when = missed_fire_time(
                spec, self.config.schedule.timezone, now, grace, last_start(self.db, spec.name)
            )
            if when is not None:
                log.warning(
                    "pass %s due at %s did not run (machine down?): running it now, once",
                    spec.name,
                    when.isoformat(),
                )
                missed.append(spec.name)
                self.run_job(spec.name)
        return missed

    def add_jobs(self) -> None:
        for spec in job_specs(self.config):
            self.scheduler.add_job(
                self.run_job,
                spec.trigger(self.config.schedule.timezone),
                args=[spec.name],
                id=spec.name,
                name=f"policywatch pass: {spec.name}",
                replace_existing=True,
            )

    # --- lifecycle ----------------------------------------------------------------------------------------
    def stop(self, signum: int | None = None, frame: object = None) -> None:
        """SIGTERM/SIGINT: pass SIGTERM on to a running pass (it stops its crawl and records the run), then
        exit."""
        log.info("stopping (signal %s)", signum)
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _stop_if_stopping(self, event: object) -> None:
        if self.stopping.is_set():
            self.scheduler.shutdown(wait=False)

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.catch_up()
        if self.stopping.is_set():
            return
        self.add_jobs()
        for spec in job_specs(self.config):
            nxt = next_fire_time(spec, self.config.schedule.timezone, self.now())
            log.info("scheduled %s: next pass %s", spec.name, nxt.isoformat() if nxt else "never")
        # A SIGTERM that lands between the catch-up and the scheduler's start found nothing running to shut
        # down: the scheduler, once started, stops at once in that case instead of waiting for tomorrow.
        self.scheduler.add_listener(self._stop_if_stopping, EVENT_SCHEDULER_STARTED)
        self.scheduler.start()  # blocks until stop()
        child = self.child
        if child is not None:
            child.wait(120)


def describe(config: Config, now: datetime) -> Sequence[tuple[str, str, datetime | None]]:
    """(job, cron, next fire time) for `policywatch status`."""
    return [(s.name, s.cron, next_fire_time(s, config.schedule.timezone, now)) for s in job_specs(config)]
