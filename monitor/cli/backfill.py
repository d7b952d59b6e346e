"""`policywatch backfill`: a page's history from the web archive or from WARC files."""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

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
    _config,
    _opened,
    app,
    err,
    fail,
    out,
    parse_as_of,
    parse_when,
)

if TYPE_CHECKING:
    from policywatch.monitor.backfill.run import PageSummary
    from policywatch.monitor.config import Config


class _Bar:
    """rich progress over pages × captures (on stderr, only on a terminal), notes as plain lines."""

    def __init__(self, progress: Progress, quiet: bool):
        self.progress, self.quiet = progress, quiet
        self.task = progress.add_task("listing captures", total=None)
        self.total = 0

    def listed(self, url: str, count: int) -> None:
        self.total += count
        self.progress.update(self.task, total=self.total, description="reading captures")

    def capture(self, url, capture, outcome: str) -> None:  # noqa: ANN001
        self.progress.advance(self.task)

    def note(self, message: str) -> None:
        if not self.quiet:
            err.print(message)


def _archive_date(value: str | None, option: str, zone: str) -> str | None:
    """--from/--to as the archive's digits (UTC). A date or time is read as every command reads it (in
    `zone`; a plain date starts --from and ends --to); archive digits (20230627, a prefix: the whole day) are
    the archive's own; an age (30d) counts back from now; anything else is a usage error naming the option."""
    from policywatch.monitor.backfill.captures import archive_day

    if value is None:
        return None
    v = value.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", v):
        try:
            return archive_day(v)
        except ValueError:
            pass
    if option == "--to":
        when = parse_as_of(v, option=option, zone=zone)
    else:
        when = parse_when(v, option=option, zone=zone)
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S") if when else None


@app.command("backfill")
def backfill(
    config: Path | None = ConfigOpt,
    start: str | None = typer.Option(
        None,
        "--from",
        metavar="DATE",
        help="Oldest capture to read: a date (2023-06-01) or archive digits (20230601).",
    ),
    end: str | None = typer.Option(
        None, "--to", metavar="DATE", help="Newest capture to read (same forms as --from)."
    ),
    url: list[str] = typer.Option(
        [], "--url", metavar="URL", help="Backfill this URL (repeatable); default: every watched page."
    ),
    max_captures: int | None = typer.Option(
        None,
        "--max-captures",
        min=1,
        metavar="N",
        help="At most N captures per page, spread over the period.",
    ),
    warc: list[Path] = typer.Option(
        [],
        "--warc",
        metavar="FILE",
        help="Read captures from this WARC file instead of the archive (repeatable).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fill the history with archived captures: each watched page's captures in the web archive ([archive]
    url, the Wayback Machine by default), or the responses in WARC files, read oldest first through the same
    detection as a pass and stored at their own dates. Backfilled changes are never e-mailed; running it again
    skips what is stored (and resumes an interrupted run)."""
    cfg = _config(config)
    zone = cfg.schedule.timezone
    first, last = _archive_date(start, "--from", zone), _archive_date(end, "--to", zone)
    if first and last and first[: len(last)] > last:
        fail(f"--from {start} is after --to {end}", EXIT_USAGE)
    targets = _targets(cfg, url, warc)
    summaries = _backfill(cfg, targets, warc, first, last, max_captures, quiet)
    _report(summaries)


def _targets(cfg: Config, url: list[str], warc: list[Path]) -> list[str]:
    """The pages to backfill (the --url given, else every watched page); usage errors named."""
    from policywatch.monitor.urls import url_problem

    for u in url:
        problem = url_problem(u)
        if problem:
            fail(f"--url {u}: {problem}", EXIT_USAGE)
    targets = list(dict.fromkeys(url or [w.url for w in cfg.watches]))
    if not targets:
        fail("nothing to backfill: the config watches no page and no --url was given", EXIT_USAGE)
    for path in warc:
        if not path.is_file():
            fail(f"--warc {path}: no such file", EXIT_USAGE)
    return targets


def _backfill(
    cfg: Config,
    targets: list[str],
    warc: list[Path],
    first: str | None,
    last: str | None,
    max_captures: int | None,
    quiet: bool,
) -> list[PageSummary]:
    """Read the captures under the pass lock (a backfill and a pass never write at once), with progress on a
    terminal; the site gains the changes found, at their historic dates."""
    from policywatch.monitor.backfill.run import backfill_archive, backfill_warc
    from policywatch.monitor.backfill.warc import WarcError, read_warc
    from policywatch.monitor.backfill.wayback import ArchiveClient
    from policywatch.monitor.urls import normalize_url
    from policywatch.storage.locks import LockBusy, pass_lock

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    show = not quiet and err.is_terminal
    with _opened(cfg) as db:
        try:
            with (
                pass_lock(db.engine),
                Progress(*columns, TimeElapsedColumn(), console=err, transient=True, disable=not show) as p,
            ):
                bar = _Bar(p, quiet)
                if warc:
                    keys = {normalize_url(t): t for t in targets}
                    records = (r for path in warc for r in read_warc(path, warn=bar.note))
                    try:
                        summaries = backfill_warc(
                            db, cfg, records, wanted=lambda u: keys.get(normalize_url(u)), progress=bar
                        )
                    except WarcError as exc:
                        fail(str(exc), EXIT_USAGE)
                else:
                    client = ArchiveClient(cfg.archive, cfg.crawl.user_agent, on_wait=bar.note)
                    summaries = backfill_archive(
                        db,
                        cfg,
                        targets,
                        client,
                        start=first,
                        end=last,
                        max_captures=max_captures,
                        progress=bar,
                    )
                new_changes = [i for sm in summaries for i in sm.change_ids]
                if new_changes:  # the site's timelines and feed, at the changes' historic dates
                    from policywatch.monitor.nightly.delivery import publish_changes

                    err.print(f"site: {publish_changes(db, cfg, new_changes)}")
        except LockBusy as exc:
            fail(f"{exc}; backfill after it finishes", EXIT_BUSY)
    return summaries


def _report(summaries: list[PageSummary]) -> None:
    """Per page on stderr (a report, not data): what was listed, read, stored and found; the total on stdout;
    exit 1 when captures could not be read (running again retries them)."""
    for sm in summaries:
        err.print(sm.url)
        err.print(
            f"  {sm.listed} captures listed, {sm.fetched} read ({sm.skipped} already stored): {sm.stored} "
            f"versions, {sm.changes} changes, {sm.soft_errors} error or maintenance pages, {sm.failed} failed"
            + (
                f", {sm.refused} rows skipped (another site's URL, or an impossible or future date)"
                if sm.refused
                else ""
            )
        )
        for problem in sm.problems[:10]:
            err.print(f"  - {problem}")
    total_changes = sum(sm.changes for sm in summaries)
    failed = sum(sm.failed for sm in summaries) + sum(1 for sm in summaries if sm.problems and not sm.listed)
    out.print(
        f"backfill: {sum(sm.stored for sm in summaries)} versions and {total_changes} changes stored from "
        f"{sum(sm.fetched for sm in summaries)} captures read ({sum(sm.skipped for sm in summaries)} already "
        f"stored); see them with `policywatch changes`"
    )
    if failed:
        fail(
            f"{failed} captures or listings could not be read from the archive: run backfill again to retry "
            "them"
        )
