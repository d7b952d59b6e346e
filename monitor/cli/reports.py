"""Commands that deliver: `digest preview|send`, `site`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from policywatch.monitor.cli.common import (
    EXIT_BUSY,
    EXIT_USAGE,
    ConfigOpt,
    TextHtml,
    _config,
    _opened,
    app,
    err,
    fail,
    out,
    parse_when,
)

digest_app = typer.Typer(
    rich_markup_mode=None,
    help="E-mail digests: preview what a subscriber would get, send what is pending.",
    no_args_is_help=True,
)
app.add_typer(digest_app, name="digest")


def _need_mail(cfg) -> None:
    if cfg.mail is None:
        fail(
            "no [mail] section in the config: digests need an SMTP server (see docs/configuration.md#mail)",
            EXIT_USAGE,
        )
    if not cfg.subscribers:
        fail("no [[subscriber]] in the config: nobody to send digests to", EXIT_USAGE)


@digest_app.command("preview")
def digest_preview(
    config: Path | None = ConfigOpt,
    subscriber: str | None = typer.Option(
        None, "--subscriber", "-s", help="E-mail address (default: the first subscriber)."
    ),
    fmt: TextHtml = typer.Option(TextHtml.text, "--format", "-f", help="Output format."),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="DATE",
        help="Every change detected from then on (2024-03-01, an ISO date-time, or 30d), not only those "
        "since the subscriber's last digest.",
    ),
) -> None:
    """Render the digest a subscriber would receive now, to stdout. Nothing is recorded or sent."""
    from policywatch.monitor.nightly.delivery import outbox
    from policywatch.reports.digest import render_html, render_text

    cfg = _config(config)
    _need_mail(cfg)
    sub = (
        cfg.subscribers[0]
        if subscriber is None
        else next((x for x in cfg.subscribers if x.email.lower() == subscriber.lower()), None)
    )
    if sub is None:
        known = ", ".join(x.email for x in cfg.subscribers) or "none"
        fail(f"--subscriber: no [[subscriber]] {subscriber!r} in the config (known: {known})", EXIT_USAGE)
    when = parse_when(since, zone=cfg.schedule.timezone)
    with _opened(cfg) as db:
        d = outbox(db, cfg).preview(sub, since=when)
        err.print(f"subject: {d.subject}")
        sys.stdout.write(render_html(d) if fmt == "html" else render_text(d))


@digest_app.command("send")
def digest_send(config: Path | None = ConfigOpt) -> None:
    """Send pending digests now (what the pass does at its end): each subscriber gets every change since their
    last delivered digest, once. Waits for no one: exits 4 if a pass is running (it sends at its end)."""
    from policywatch.monitor.nightly.delivery import deliver
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
def site(config: Path | None = ConfigOpt) -> None:
    """Rebuild the whole static report site (every change page, timelines, index, Atom feed) from the
    database."""
    from policywatch.monitor.nightly.delivery import rebuild_site, site_dir

    cfg = _config(config)
    with _opened(cfg, readonly=False) as db:
        n = rebuild_site(db, cfg)
    out.print(f"{n} change pages written; open {site_dir(cfg) / 'index.html'}")
