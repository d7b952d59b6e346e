"""Commands of the nightly pass: `run`, `schedule`, `status`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from policywatch.monitor.cli.common import (
    EXIT_BUSY,
    EXIT_USAGE,
    ConfigOpt,
    LogLevel,
    TextJson,
    _config,
    _opened,
    _terminated,
    app,
    err,
    fail,
    out,
)
from policywatch.reports import clock

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from policywatch.monitor.config import Config
    from policywatch.storage import Database


@app.command()
def run(
    config: Path | None = ConfigOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    job: str | None = typer.Option(
        None,
        "--job",
        help="Run a [[schedule.jobs]] entry instead: its watches only, "
        "no discovery; its changes go out with the next nightly digest.",
    ),
) -> None:
    """Run one monitoring pass: crawl the watchlist, store new versions, detect changes, render reports, send
    digests."""
    import signal

    from policywatch.monitor.nightly.passrun import PassError, run_pass
    from policywatch.storage.locks import LockBusy

    # Stop cleanly from the first moment: the crawl child is stopped and the run marked failed (interrupted).
    signal.signal(signal.SIGTERM, _terminated)
    cfg = _config(config)
    cfg.require_watchlist()
    if job is not None:
        cfg.job(job)  # unknown job: a config error (exit 2) before anything starts
    show = not quiet and err.is_terminal
    with Progress(
        SpinnerColumn(),
        TextColumn("crawling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not show,
    ) as progress:
        task = progress.add_task("crawl", total=len(cfg.watches))
        try:
            result = run_pass(
                cfg, progress=lambda done, total: progress.update(task, completed=done, total=total), job=job
            )
        except PassError as exc:
            fail(f"pass failed: {exc}")
        except LockBusy as exc:
            fail(f"{exc}; not starting a second one", EXIT_BUSY)
    c = result.counts
    from policywatch.reports.data import failure_summary

    failure = failure_summary(result.health)
    if failure:  # first, so that a pass where every fetch failed never reads like a quiet night
        err.print(f"policywatch: run {result.run_id}: {failure}")
    out.print(
        f"run {result.run_id}: {c['fetched']} fetched, {c['new']} new, {c['changed']} changed, "
        f"{c['unchanged']} unchanged, {c['failed']} failed"
        + (f", {c['removed']} removed" if c.get("removed") else "")
    )
    for cls, n in sorted((result.health.get("failures_by_class") or {}).items()):
        out.print(f"  {cls}: {n}")
    if result.health.get("stale_sources"):
        out.print(f"  stale sources: {', '.join(result.health['stale_sources'])}")
    out.print(f"report: {result.reports.get('html')}")
    out.print(f"        {result.reports.get('markdown')}")
    out.print(f"site:   {result.reports.get('site')}")
    if result.delivery is not None:
        for line in result.delivery.lines():
            (err if line.startswith(("FAILED", "UNCERTAIN")) else out).print(f"digest: {line}")
    if result.delivery_error:
        err.print(f"digest delivery crashed: {result.delivery_error} (pending digests stay in the outbox)")


@app.command("schedule")
def schedule(
    config: Path | None = ConfigOpt,
    log_level: LogLevel = typer.Option(
        LogLevel.INFO, "--log-level", case_sensitive=False, help="How much the daemon logs."
    ),
) -> None:
    """Run the nightly daemon: a pass at `[schedule] cron` (and each `[[schedule.jobs]]`), one missed pass
    caught up at start, each pass in a child process. Stops cleanly on SIGTERM / Ctrl-C."""
    import logging

    from policywatch.monitor.nightly.scheduler import Daemon

    cfg = _config(config)
    cfg.require_watchlist()
    if cfg.path is None:
        fail("the daemon needs a config file on disk", EXIT_USAGE)
    logging.basicConfig(
        level=log_level.value, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(
        logging.WARNING if log_level.value != "DEBUG" else logging.DEBUG
    )
    with _opened(cfg) as db:  # migrations happen here, once, not racing the first pass
        daemon = Daemon(cfg, db)
        daemon.serve()
    err.print("policywatch schedule: stopped")


@app.command("status")
def status(
    config: Path | None = ConfigOpt,
    fmt: TextJson = typer.Option(TextJson.text, "--format", "-f", help="Output format."),
) -> None:
    """Last pass (result, counts, health), a pass running now, next scheduled passes, pending digests."""
    cfg = _config(config)
    with _opened(cfg) as db, db.session() as s:
        data = _status_data(cfg, db, s)
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    _print_status(data, cfg.schedule.timezone)


def _run_dict(run: Any, **extra: Any) -> dict[str, Any] | None:
    from policywatch.storage.serialize import iso

    if run is None:
        return None
    return {"run_id": run.id, "scope": run.scope, "started_at": iso(run.started_at), **extra}


def _status_data(cfg: Config, db: Database, s: Session) -> dict[str, Any]:
    """What `status` says, as its JSON: read in one transaction."""
    from sqlalchemy import func, select

    from policywatch.monitor.nightly.scheduler import describe
    from policywatch.storage.locks import pass_running
    from policywatch.storage.models import Digest, Run
    from policywatch.storage.serialize import iso

    last = s.scalar(select(Run).where(Run.status != "running").order_by(Run.id.desc()).limit(1))
    running = s.scalar(select(Run).where(Run.status == "running").order_by(Run.id.desc()).limit(1))
    # A run marked "running" whose pass no longer holds the lock was killed (kill -9, power loss): the
    # next pass records it as failed; until then it is reported as interrupted, never as running now.
    interrupted = None
    if running is not None and pass_running(db.engine) is False:
        interrupted, running = running, None
    waiting = Digest.status.in_(("pending", "failed"))
    outbox = dict(s.execute(select(Digest.status, func.count()).where(waiting).group_by(Digest.status)).all())
    last_error = s.scalar(select(Digest.last_error).where(waiting).order_by(Digest.id.desc()).limit(1))
    h = (last.health or {}) if last else {}
    killed = "its pass is no longer running (killed); the next pass records it as failed"
    return {
        "last_pass": None
        if last is None
        else {
            "run_id": last.id,
            "scope": last.scope,
            "status": last.status,
            "started_at": iso(last.started_at),
            "finished_at": iso(last.finished_at),
            "message": last.message,
            "fetched": last.pages_fetched,
            "new": last.pages_new,
            "changed": last.pages_changed,
            "failed": last.pages_failed,
            "failures_by_class": h.get("failures_by_class", {}),
            "stale_sources": h.get("stale_sources", []),
            "selector_drift": h.get("selector_drift", []),
        },
        "running": _run_dict(running),
        "interrupted": _run_dict(interrupted, message=killed),
        "next_passes": [
            {"job": j, "cron": c, "next": iso(t)} for j, c, t in describe(cfg, datetime.now(UTC))
        ],
        "timezone": cfg.schedule.timezone,
        "digests": {
            "pending": outbox.get("pending", 0),
            "failed": outbox.get("failed", 0),
            "last_error": last_error,
            "subscribers": len(cfg.subscribers),
            "mail_configured": cfg.mail is not None,
        },
    }


def _print_status(data: dict[str, Any], zone: str) -> None:
    def when(key: str, row: dict[str, Any]) -> str:  # times as every human output shows them (reports.clock)
        return clock.human(datetime.fromisoformat(row[key]), zone) if row[key] else "—"

    lp = data["last_pass"]
    if lp is None:
        out.print("last pass: none yet (run `policywatch run`)")
    else:
        out.print(
            f"last pass: run {lp['run_id']} ({lp['scope']}) {lp['status']}, "
            f"started {when('started_at', lp)}, finished {when('finished_at', lp)}"
        )
        out.print(
            f"  {lp['fetched']} fetched, {lp['new']} new, {lp['changed']} changed, {lp['failed']} failed"
            + (f" — {lp['message']}" if lp["message"] else "")
        )
        for cls, n in sorted(lp["failures_by_class"].items()):
            out.print(f"  {cls}: {n}")
        if lp["stale_sources"]:
            out.print(f"  STALE (no good fetch in several passes): {', '.join(lp['stale_sources'])}")
        if lp["selector_drift"]:
            out.print(f"  content selector stopped matching: {', '.join(lp['selector_drift'])}")
    if r := data["running"]:
        out.print(f"running now: run {r['run_id']} ({r['scope']}) since {when('started_at', r)}")
    if r := data["interrupted"]:
        out.print(
            f"interrupted: run {r['run_id']} ({r['scope']}), started {when('started_at', r)}: {r['message']}"
        )
    for p in data["next_passes"]:
        out.print(f"next {p['job']}: {when('next', p)} ({p['cron']}, {data['timezone']})")
    d = data["digests"]
    if d["mail_configured"]:
        out.print(
            f"digests: {d['pending']} pending, {d['failed']} failed, {d['subscribers']} subscribers"
            + (f" — last error: {d['last_error']}" if d["last_error"] else "")
        )
    else:
        out.print("digests: no [mail] configured")
