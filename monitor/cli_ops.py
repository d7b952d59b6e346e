"""Operational commands: `digest preview|send`, `site`, `status`, `schedule` (registered on the main app)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from policywatch.monitor.cli import EXIT_BUSY, EXIT_USAGE, ConfigOpt, _config, _opened, app, err, fail, out

digest_app = typer.Typer(help="E-mail digests: preview what a subscriber would get, send what is pending.",
                         no_args_is_help=True)
app.add_typer(digest_app, name="digest")


def _need_mail(cfg) -> None:
    if cfg.mail is None:
        fail("no [mail] section in the config: digests need an SMTP server (see docs/configuration.md#mail)", EXIT_USAGE)
    if not cfg.subscribers:
        fail("no [[subscriber]] in the config: nobody to send digests to", EXIT_USAGE)


@digest_app.command("preview")
def digest_preview(config: Optional[Path] = ConfigOpt,
                   subscriber: Optional[str] = typer.Option(None, "--subscriber", "-s", help="E-mail address (default: the first subscriber)."),
                   fmt: str = typer.Option("text", "--format", "-f", help="text | html")) -> None:
    """Render the digest a subscriber would receive now, to stdout. Nothing is recorded or sent."""
    from policywatch.monitor.delivery import outbox
    from policywatch.reports.digest import render_html, render_text

    if fmt not in ("text", "html"):
        fail(f"--format: {fmt!r} is not text or html", EXIT_USAGE)
    cfg = _config(config)
    _need_mail(cfg)
    sub = cfg.subscribers[0] if subscriber is None else next(
        (x for x in cfg.subscribers if x.email.lower() == subscriber.lower()), None)
    if sub is None:
        fail(f"--subscriber: {subscriber!r} is not a [[subscriber]] in the config", EXIT_USAGE)
    with _opened(cfg) as db:
        d = outbox(db, cfg).preview(sub)
        err.print(f"subject: {d.subject}")
        sys.stdout.write(render_html(d) if fmt == "html" else render_text(d))


@digest_app.command("send")
def digest_send(config: Optional[Path] = ConfigOpt) -> None:
    """Send pending digests now (what the pass does at its end): each subscriber gets every change since their
    last delivered digest, once. Waits for no one: exits 4 if a pass is running (it sends at its end)."""
    from policywatch.monitor.delivery import deliver
    from policywatch.storage.locks import LockBusy, pass_lock

    cfg = _config(config)
    _need_mail(cfg)
    with _opened(cfg) as db:
        try:
            with pass_lock(db.engine):
                report = deliver(db, cfg)
        except LockBusy as exc:
            fail(f"{exc}; it sends the digests when it ends", EXIT_BUSY)
    assert report is not None
    for line in report.lines():
        (err if line.startswith(("FAILED", "UNCERTAIN")) else out).print(line)
    if report.failed or report.pending:
        fail(f"{len(report.failed) + len(report.pending)} digest(s) not delivered; they stay in the outbox")


@app.command("site")
def site(config: Optional[Path] = ConfigOpt) -> None:
    """Rebuild the whole static report site (every change page, timelines, index, Atom feed) from the database."""
    from policywatch.monitor.delivery import rebuild_site, site_dir

    cfg = _config(config)
    with _opened(cfg, readonly=False) as db:
        n = rebuild_site(db, cfg)
    out.print(f"{n} change pages written; open {site_dir(cfg) / 'index.html'}")


@app.command("schedule")
def schedule(config: Optional[Path] = ConfigOpt,
             log_level: str = typer.Option("INFO", "--log-level", help="DEBUG | INFO | WARNING")) -> None:
    """Run the nightly daemon: a pass at `[schedule] cron` (and each `[[schedule.jobs]]`), one missed pass caught
    up at start, each pass in a child process. Stops cleanly on SIGTERM / Ctrl-C."""
    import logging

    from policywatch.monitor.scheduler import Daemon

    cfg = _config(config)
    cfg.require_watchlist()
    if cfg.path is None:
        fail("the daemon needs a config file on disk", EXIT_USAGE)
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING if log_level.upper() != "DEBUG" else logging.DEBUG)
    with _opened(cfg) as db:  # migrations happen here, once, not racing the first pass
        daemon = Daemon(cfg, db)
        daemon.serve()
    err.print("policywatch schedule: stopped")


@app.command("status")
def status(config: Optional[Path] = ConfigOpt,
           fmt: str = typer.Option("text", "--format", "-f", help="text | json")) -> None:
    """Last pass (result, counts, health), a pass running now, next scheduled passes, pending digests."""
    import json
    from datetime import datetime, timezone

    from sqlalchemy import func, select

    from policywatch.monitor.scheduler import describe
    from policywatch.storage.locks import pass_running
    from policywatch.storage.models import Digest, Run
    from policywatch.storage.serialize import iso

    if fmt not in ("text", "json"):
        fail(f"--format: {fmt!r} is not text or json", EXIT_USAGE)
    cfg = _config(config)
    now = datetime.now(timezone.utc)
    with _opened(cfg) as db, db.session() as s:
        last = s.scalar(select(Run).where(Run.status != "running").order_by(Run.id.desc()).limit(1))
        running = s.scalar(select(Run).where(Run.status == "running").order_by(Run.id.desc()).limit(1))
        # A run marked "running" whose pass no longer holds the lock was killed (kill -9, power loss): the next
        # pass records it as failed; until then it is reported as interrupted, never as running now.
        interrupted = None
        if running is not None and pass_running(db.engine) is False:
            interrupted, running = running, None
        outbox = dict(s.execute(select(Digest.status, func.count()).where(Digest.status.in_(("pending", "failed")))
                                .group_by(Digest.status)).all())
        last_error = s.scalar(select(Digest.last_error).where(Digest.status.in_(("pending", "failed")))
                              .order_by(Digest.id.desc()).limit(1))
        h = (last.health or {}) if last else {}
        data = {
            "last_pass": None if last is None else {
                "run_id": last.id, "scope": last.scope, "status": last.status, "started_at": iso(last.started_at),
                "finished_at": iso(last.finished_at), "message": last.message, "fetched": last.pages_fetched,
                "new": last.pages_new, "changed": last.pages_changed, "failed": last.pages_failed,
                "failures_by_class": h.get("failures_by_class", {}), "stale_sources": h.get("stale_sources", []),
                "selector_drift": h.get("selector_drift", [])},
            "running": None if running is None else {"run_id": running.id, "scope": running.scope,
                                                     "started_at": iso(running.started_at)},
            "interrupted": None if interrupted is None else {
                "run_id": interrupted.id, "scope": interrupted.scope, "started_at": iso(interrupted.started_at),
                "message": "its pass is no longer running (killed); the next pass records it as failed"},
            "next_passes": [{"job": j, "cron": c, "next": iso(t)} for j, c, t in describe(cfg, now)],
            "timezone": cfg.schedule.timezone,
            "digests": {"pending": outbox.get("pending", 0), "failed": outbox.get("failed", 0), "last_error": last_error,
                        "subscribers": len(cfg.subscribers), "mail_configured": cfg.mail is not None},
        }
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    lp = data["last_pass"]
    if lp is None:
        out.print("last pass: none yet (run `policywatch run`)")
    else:
        out.print(f"last pass: run {lp['run_id']} ({lp['scope']}) {lp['status']}, started {lp['started_at']}, "
                  f"finished {lp['finished_at']}")
        out.print(f"  {lp['fetched']} fetched, {lp['new']} new, {lp['changed']} changed, {lp['failed']} failed"
                  + (f" — {lp['message']}" if lp["message"] else ""))
        for cls, n in sorted(lp["failures_by_class"].items()):
            out.print(f"  {cls}: {n}")
        if lp["stale_sources"]:
            out.print(f"  STALE (no good fetch in several passes): {', '.join(lp['stale_sources'])}")
        if lp["selector_drift"]:
            out.print(f"  content selector stopped matching: {', '.join(lp['selector_drift'])}")
    if data["running"]:
        r = data["running"]
        out.print(f"running now: run {r['run_id']} ({r['scope']}) since {r['started_at']}")
    if data["interrupted"]:
        r = data["interrupted"]
        out.print(f"interrupted: run {r['run_id']} ({r['scope']}), started {r['started_at']}: {r['message']}")
    for p in data["next_passes"]:
        out.print(f"next {p['job']}: {p['next']} ({p['cron']}, {data['timezone']})")
    d = data["digests"]
    if d["mail_configured"]:
        out.print(f"digests: {d['pending']} pending, {d['failed']} failed, {d['subscribers']} subscribers"
                  + (f" — last error: {d['last_error']}" if d["last_error"] else ""))
    else:
        out.print("digests: no [mail] configured")
