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
    help="Digests by e-mail and team channels: preview what a subscriber would get, send what is pending, "
    "test a subscriber's channels.",
    no_args_is_help=True,
)
app.add_typer(digest_app, name="digest")


def _need_mail(cfg) -> None:
    """Someone to deliver to, and a way to: `[mail]` for subscribers with an e-mail, `notify`/`notify_env`
    for the others."""
    if not cfg.subscribers:
        fail("no [[subscriber]] in the config: nobody to send digests to", EXIT_USAGE)
    if cfg.mail is None and not any(s.notify or s.notify_env for s in cfg.subscribers):
        fail(
            "no [mail] section and no subscriber with notify or notify_env: digests need an SMTP server "
            "(docs/configuration.md#mail) or a team channel",
            EXIT_USAGE,
        )


def _subscriber(cfg, ref: str | None):  # noqa: ANN202
    """The subscriber a user names: its e-mail address or its name (default: the first)."""
    if ref is None:
        return cfg.subscribers[0]
    key = ref.strip().lower()
    sub = next((x for x in cfg.subscribers if key in (x.email.lower(), x.name.lower())), None)
    if sub is None:
        known = ", ".join(x.email or x.name for x in cfg.subscribers) or "none"
        fail(f"--subscriber: no [[subscriber]] {ref!r} in the config (known: {known})", EXIT_USAGE)
    return sub


@digest_app.command("preview")
def digest_preview(
    config: Path | None = ConfigOpt,
    subscriber: str | None = typer.Option(
        None, "--subscriber", "-s", help="E-mail address or name (default: the first subscriber)."
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
    sub = _subscriber(cfg, subscriber)
    if not sub.email:  # channels only: what its first channel would get
        from policywatch.monitor.nightly.delivery import channel_subscribers

        chans, _problems = channel_subscribers((sub,))
        if not chans:
            fail(f"--subscriber {sub.owner!r}: no channel (is its notify_env variable set?)", EXIT_USAGE)
        sub = chans[0]
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


@digest_app.command("test")
def digest_test(
    config: Path | None = ConfigOpt,
    subscriber: str | None = typer.Option(
        None, "--subscriber", "-s", help="E-mail address or name (default: the first subscriber)."
    ),
) -> None:
    """Send a short test message through a subscriber's channels and e-mail, and say for each what happened.
    Nothing is recorded: digests and watermarks are untouched."""
    from policywatch.monitor.nightly.delivery import channels_of
    from policywatch.reports import channels as team
    from policywatch.reports.mail import SendError
    from policywatch.reports.outbox import send_test_mail

    cfg = _config(config)
    _need_mail(cfg)
    sub = _subscriber(cfg, subscriber)
    chans, problems = channels_of(sub)
    failed = list(problems)
    for p in problems:
        err.print(f"FAILED: {p}")
    for ch in chans:
        try:
            team.send_test(ch)
        except SendError as exc:
            failed.append(str(exc))
            err.print(f"FAILED {ch.label}: {exc}")
        else:
            out.print(f"sent a test message to {ch.label}")
    if sub.email:
        if cfg.mail is None:
            failed.append("no [mail]")
            err.print(f"FAILED {sub.email}: no [mail] section in the config")
        else:
            try:
                send_test_mail(cfg.mail, sub.email)
            except SendError as exc:
                failed.append(str(exc))
                err.print(f"FAILED {sub.email}: {exc}")
            else:
                out.print(f"sent a test e-mail to {sub.email}")
    if failed:
        fail(f"{len(failed)} of {len(chans) + bool(sub.email) + len(problems)} test message(s) not delivered")


@app.command("site")
def site(config: Path | None = ConfigOpt) -> None:
    """Rebuild the whole static report site (every change page, timelines, index, Atom feed) from the
    database."""
    from policywatch.monitor.nightly.delivery import rebuild_site, site_dir

    cfg = _config(config)
    with _opened(cfg, readonly=False) as db:
        n = rebuild_site(db, cfg)
    out.print(f"{n} change pages written; open {site_dir(cfg) / 'index.html'}")
