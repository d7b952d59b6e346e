"""The `policywatch` command line (Typer + rich).

Contract (see README): every subcommand takes `--config PATH`; machine-readable output (JSON, CSV, NDJSON) goes
to stdout and nothing else does; logs and progress go to stderr. Exit codes: 0 done, 1 the pass or command
failed, 2 bad usage or configuration, 3 database unusable, 4 another pass is running.
"""
from __future__ import annotations

import csv
import json
import re
import sys
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from policywatch.monitor import __version__
from policywatch.monitor.config import Config, ConfigError, load_config

err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)  # scraped text is never markup
out = Console(soft_wrap=True, markup=False, highlight=False)

app = typer.Typer(name="policywatch", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Watch canada.ca immigration pages and report what changed, in words a consultant understands.")
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

ConfigOpt = typer.Option(None, "--config", "-c", help="TOML config (default: $POLICYWATCH_CONFIG, else ./policywatch.toml).")
SinceOpt = typer.Option(None, "--since", help="Only from this date/time on: 2024-01-15, 2024-01-15T03:00+00:00, or 7d / 24h.")

EXIT_FAILED, EXIT_USAGE, EXIT_STORAGE, EXIT_BUSY = 1, 2, 3, 4


class Terminated(BaseException):
    """SIGTERM (systemd stop, the scheduler shutting down): unwinds like Ctrl-C so cleanup code runs."""


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated()


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_FAILED) -> None:
    raise CliError(message, code)


def parse_when(value: str | None, *, option: str = "--since") -> datetime | None:
    if value is None:
        return None
    v = value.strip()
    m = re.fullmatch(r"(\d+)\s*([dhw])", v)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"d": timedelta(days=n), "h": timedelta(hours=n), "w": timedelta(weeks=n)}[unit]
        return datetime.now(timezone.utc) - delta
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {value!r} is not a date (use 2024-01-15, an ISO date-time, or 7d / 24h)", EXIT_USAGE)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _config(path: Optional[Path]) -> Config:
    return load_config(path)


def _db(config: Config, *, readonly: bool = False, migrate: bool = True):
    from policywatch.storage import open_database
    return open_database(config.storage_url, readonly=readonly, migrate=migrate and not readonly)


@contextmanager
def _opened(config: Config, *, readonly: bool = False, reader: bool = False) -> Iterator[Any]:
    """The history database for one command, always disposed (connections and file handles closed).
    `reader`: a command that only reads (export) uses `[storage] read_url` when it is set, read-only."""
    if reader and config.storage_read_url:
        from policywatch.storage import open_database

        db = open_database(config.storage_read_url, readonly=True)
    else:
        db = _db(config, readonly=readonly)
    try:
        yield db
    finally:
        db.dispose()


def version_callback(value: bool) -> None:
    if value:
        print(f"policywatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True, help="Print the version and exit.")) -> None:
    """policywatch: nightly change monitor for IRCC / Tech Talent Strategy pages."""


# --- run ------------------------------------------------------------------------------------------------
@app.command()
def run(config: Optional[Path] = ConfigOpt,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
        job: Optional[str] = typer.Option(None, "--job", help="Run a [[schedule.jobs]] entry instead: its watches only, "
                                          "no discovery; its changes go out with the next nightly digest.")) -> None:
    """Run one monitoring pass: crawl the watchlist, store new versions, detect changes, render reports, send digests."""
    import signal

    from policywatch.monitor.passrun import PassError, run_pass
    from policywatch.storage.locks import LockBusy

    cfg = _config(config)
    cfg.require_watchlist()
    if job is not None:
        cfg.job(job)  # unknown job: a config error (exit 2) before anything starts
    signal.signal(signal.SIGTERM, _terminated)  # stop cleanly: the crawl child is stopped, the run marked failed
    show = not quiet and err.is_terminal
    with Progress(SpinnerColumn(), TextColumn("crawling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not show) as progress:
        task = progress.add_task("crawl", total=len(cfg.watches))
        try:
            result = run_pass(cfg, progress=lambda done, total: progress.update(task, completed=done, total=total), job=job)
        except PassError as exc:
            fail(f"pass failed: {exc}")
        except LockBusy as exc:
            fail(f"{exc}; not starting a second one", EXIT_BUSY)
    c = result.counts
    out.print(f"run {result.run_id}: {c['fetched']} fetched, {c['new']} new, {c['changed']} changed, "
              f"{c['unchanged']} unchanged, {c['failed']} failed" + (f", {c['removed']} removed" if c.get("removed") else ""))
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


# --- changes --------------------------------------------------------------------------------------------
def _write_json_array(items: Iterable[dict[str, Any]]) -> None:
    """Stream one JSON array to stdout (constant memory)."""
    w = sys.stdout.write
    first = True
    w("[")
    for item in items:
        w("\n" if first else ",\n")
        w(json.dumps(item, ensure_ascii=False, default=str))
        first = False
    w("\n]\n" if not first else "]\n")


def _write_csv(rows: Iterable[dict[str, Any]], fields: Iterable[str]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v) for k, v in row.items()})


@app.command()
def changes(config: Optional[Path] = ConfigOpt, since: Optional[str] = SinceOpt,
            fmt: str = typer.Option("table", "--format", "-f", help="table | json | csv"),
            topic: Optional[str] = typer.Option(None, "--topic", help="Only changes tagged with this topic."),
            include_baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Include first-time recordings of watched pages.")) -> None:
    """List detected changes, oldest first (records never change once written)."""
    from policywatch.storage import queries as q
    from policywatch.storage.serialize import CSV_CHANGE_FIELDS, change_to_dict, change_to_row

    if fmt not in ("table", "json", "csv"):
        fail(f"--format: {fmt!r} is not table, json or csv", EXIT_USAGE)
    cfg = _config(config)
    when = parse_when(since)
    with _opened(cfg) as db:
        with db.session() as s:
            items = (c for c in q.iter_changes(s, since=when, topic=topic)
                     if include_baseline or not (c.details or {}).get("baseline"))
            if fmt == "json":
                _write_json_array(change_to_dict(c) for c in items)
            elif fmt == "csv":
                _write_csv((change_to_row(c) for c in items), CSV_CHANGE_FIELDS)
            else:
                table = Table("id", "detected", "kind", "sig.", "topics", "title", "summary", show_lines=False)
                n = 0
                for c in items:
                    n += 1
                    table.add_row(str(c.id), c.detected_at.strftime("%Y-%m-%d %H:%M"), c.kind,
                                  ("★ " if c.details_released else "") + c.significance, ", ".join(c.topics or []),
                                  c.title or c.url, c.summary)
                out.print(table if n else "no changes")


# --- init / demo ----------------------------------------------------------------------------------------
@app.command()
def init(path: Path = typer.Argument(Path("policywatch.toml"), help="Where to write the starter config."),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")) -> None:
    """Write a commented starter config whose watchlist holds real IRCC / Tech Talent Strategy URLs."""
    from importlib.resources import files

    if path.exists() and not force:
        fail(f"{path} exists; use --force to overwrite it", EXIT_USAGE)
    text = files("policywatch.monitor").joinpath("starter.toml").read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)  # the starter must always be valid
    out.print(f"wrote {path} ({len(cfg.watches)} watched URLs). Next: policywatch run --config {path}")


@app.command()
def demo(out_dir: Path = typer.Option(Path("demo-out"), "--out", help="Folder for the demo's database, config and reports."),
         config: Optional[Path] = typer.Option(None, "--config", "-c", help="Ignored: the demo writes its own config under --out.")) -> None:
    """Offline demo: serve bundled sample nights of a canada.ca-like site on loopback and run a pass per night."""
    from policywatch.monitor.demo import run_demo

    run_demo(out_dir, out, err)


# --- db -------------------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(config: Optional[Path] = ConfigOpt) -> None:
    """Create the database or bring its schema to the latest revision (safe with concurrent processes)."""
    from policywatch.storage.db import current_revision

    cfg = _config(config)
    with _opened(cfg) as db:
        with db.engine.connect() as conn:
            out.print(f"database at schema revision {current_revision(conn)}")


@db_app.command("prune")
def db_prune(config: Optional[Path] = ConfigOpt,
             bodies_older_than: str = typer.Option("180d", "--bodies-older-than", help="Age (e.g. 90d) or date; raw bodies older than this are dropped."),
             vacuum: bool = typer.Option(False, "--vacuum", help="Reclaim the space afterwards (SQLite VACUUM / PostgreSQL VACUUM).")) -> None:
    """Drop old raw bodies; extracted text, hashes, versions and changes stay. Each page's latest body is kept."""
    from policywatch.storage.maintenance import prune_bodies

    cutoff = parse_when(bodies_older_than, option="--bodies-older-than")
    cfg = _config(config)
    with _opened(cfg) as db:
        with db.session() as s:
            n, freed = prune_bodies(s, cutoff)
        if vacuum:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM")
        out.print(f"pruned {n} raw bodies ({freed / 1e6:.1f} MB compressed) older than {cutoff:%Y-%m-%d}")


@db_app.command("metadata")
def db_metadata(config: Optional[Path] = ConfigOpt) -> None:
    """Print Datasette metadata (descriptions and canned queries): `datasette DB --metadata FILE`."""
    from sqlalchemy.engine import make_url

    from policywatch.storage.maintenance import datasette_metadata

    cfg = _config(config)
    name = Path(make_url(cfg.storage_url).database or "policywatch").stem
    sys.stdout.write(json.dumps(datasette_metadata(name), indent=2) + "\n")


# --- history, show, diff --------------------------------------------------------------------------------
def _page(s, url: str):
    from policywatch.monitor.urls import normalize_url
    from policywatch.storage import queries as q

    page = q.get_page(s, normalize_url(url))
    if page is None:
        fail(f"no page {url} in the history (check the URL, or run a pass first)", EXIT_USAGE)
    return page


@app.command()
def history(url: str = typer.Argument(..., help="A watched or discovered URL."), config: Optional[Path] = ConfigOpt,
            fmt: str = typer.Option("table", "--format", "-f", help="table | json")) -> None:
    """List the stored versions of a page with their dates."""
    from policywatch.storage import queries as q

    cfg = _config(config)
    with _opened(cfg) as db:
        with db.session() as s:
            page = _page(s, url)
            versions = q.versions_of(s, page.id)
            rows = [{"version_id": v.id, "captured_at": v.captured_at.isoformat(), "content_hash": v.content_hash,
                     "title": v.title, "date_modified": (v.meta or {}).get("date_modified")} for v in versions]
        if fmt == "json":
            _write_json_array(rows)
            return
        table = Table("version", "captured", "date modified (page)", "title", "hash")
        for r in rows:
            table.add_row(str(r["version_id"]), r["captured_at"][:16], r["date_modified"] or "", r["title"] or "", r["content_hash"][:12])
        out.print(table)


def _resolve_version(s, page_id: int, ref: str | None, *, default_last: bool, option: str):
    from policywatch.storage import queries as q
    from policywatch.storage.models import Version

    if ref is None:
        versions = q.versions_of(s, page_id)
        if not versions:
            fail("this page has no stored version yet", EXIT_FAILED)
        return versions[-1] if default_last else (versions[-2] if len(versions) > 1 else versions[0])
    if ref.isdigit():
        v = s.get(Version, int(ref))
        if v is None or v.page_id != page_id:
            fail(f"{option}: no version {ref} of this page", EXIT_USAGE)
        return v
    when = parse_when(ref, option=option)
    v = q.version_at(s, page_id, when)
    if v is None:
        fail(f"{option}: the page had no stored version on or before {when.isoformat()}", EXIT_FAILED)
    return v


@app.command()
def show(url: str = typer.Argument(...), config: Optional[Path] = ConfigOpt,
         at: Optional[str] = typer.Option(None, "--at", help="Date or date-time: the text as of then (default: latest)."),
         version: Optional[int] = typer.Option(None, "--version", help="A version id from `history`.")) -> None:
    """Print the text of a page as of a date (or a version)."""
    cfg = _config(config)
    with _opened(cfg) as db:
        with db.session() as s:
            page = _page(s, url)
            v = _resolve_version(s, page.id, str(version) if version is not None else at, default_last=True, option="--at")
            err.print(f"version {v.id} captured {v.captured_at.isoformat()}")
            sys.stdout.write(v.text + "\n")


@app.command()
def diff(url: str = typer.Argument(...), config: Optional[Path] = ConfigOpt,
         from_: Optional[str] = typer.Option(None, "--from", help="Version id or date (default: the one before --to)."),
         to: Optional[str] = typer.Option(None, "--to", help="Version id or date (default: latest)."),
         fmt: str = typer.Option("text", "--format", "-f", help="text | json")) -> None:
    """Structured diff between two stored versions of a page."""
    from policywatch.monitor.diff import diff_blocks
    from policywatch.monitor.jsondiff import diff_records

    cfg = _config(config)
    with _opened(cfg) as db:
        with db.session() as s:
            page = _page(s, url)
            new = _resolve_version(s, page.id, to, default_last=True, option="--to")
            if from_ is None:
                from policywatch.storage.models import Version
                from sqlalchemy import select
                old = s.scalar(select(Version).where(Version.page_id == page.id, Version.id < new.id).order_by(Version.id.desc()).limit(1)) or new
            else:
                old = _resolve_version(s, page.id, from_, default_last=False, option="--from")
            if isinstance(new.blocks, dict):
                result: Any = diff_records(old.blocks, new.blocks)
            else:
                result = diff_blocks(old.blocks, new.blocks)
        if fmt == "json":
            sys.stdout.write(json.dumps({"from_version_id": old.id, "to_version_id": new.id, "diff": result}, ensure_ascii=False) + "\n")
            return
        out.print(f"version {old.id} ({old.captured_at:%Y-%m-%d}) → {new.id} ({new.captured_at:%Y-%m-%d})", highlight=False)
        if isinstance(result, dict):
            for r in result["added"]:
                out.print(f"+ {r['description']}", highlight=False, markup=False)
            for r in result["removed"]:
                out.print(f"- {r['description']}", highlight=False, markup=False)
            for r in result["changed"]:
                out.print(f"~ {r['description']}: " + "; ".join(f"{f['field']}: {f['before']} → {f['after']}" for f in r["fields"]), highlight=False, markup=False)
        else:
            for op in result:
                where = " › ".join(op["section"]) or "top"
                sign = {"added": "+", "removed": "-", "changed": "~", "moved": ">"}[op["op"]]
                line = f"{sign} [{where}] " + (f"{op['before']}  →  {op['text']}" if op["op"] == "changed" else op["text"])
                out.print(line, highlight=False, markup=False)
        if (isinstance(result, list) and not result) or (isinstance(result, dict) and not any(result[k] for k in ("added", "removed", "changed"))):
            out.print("no differences")


@app.command()
def explain(url: str = typer.Argument(..., help="A watched or discovered URL (its latest stored capture is used)."),
            config: Optional[Path] = ConfigOpt,
            file: Optional[Path] = typer.Option(None, "--file", help="Explain this local HTML file instead (as if served at URL)."),
            blocks: bool = typer.Option(False, "--blocks", help="Also print every content block with its section.")) -> None:
    """Show how a page is read: extractor, metadata, what was dropped as noise and why, and the content blocks."""
    from policywatch.monitor.extract import extract_html
    from policywatch.monitor.quality import soft_error_reason
    from policywatch.storage import queries as q

    cfg = _config(config)
    if file is not None:
        try:
            body = file.read_bytes()
        except OSError as exc:
            fail(f"--file: cannot read {file}: {exc.strerror}", EXIT_USAGE)
        source = str(file)
    else:
        with _opened(cfg) as db, db.session() as s:
            page = _page(s, url)
            v = q.last_version(s, page.id)
            if v is None:
                fail("this page has no stored version yet", EXIT_FAILED)
            body = q.body_bytes(s, v.raw_hash) if v.raw_hash else None
            if body is None:
                fail(f"the raw capture of version {v.id} was pruned; use --file with a saved copy", EXIT_FAILED)
            source = f"version {v.id} captured {v.captured_at:%Y-%m-%d %H:%M} UTC"
    drops, ignores, _digest = cfg.rules_for(url)
    ex = extract_html(body, url, extra_noise=drops, ignore_patterns=ignores)
    how = ("GCWeb <main property=mainContentOfPage>" if ex.extractor == "gcweb"
           else "generic: <main>, <article> or <body> minus navigation")
    out.print(f"{url}\n  source: {source}\n  extractor: {ex.extractor} ({how})", highlight=False, markup=False)
    out.print(f"  title: {ex.title}", highlight=False, markup=False)
    for k, v in ex.meta.items():
        if k != "extractor":
            out.print(f"  metadata (not content): {k} = {v}", highlight=False, markup=False)
    reason = soft_error_reason(ex.title, ex.text, [b["text"] for b in ex.blocks if b["kind"] in ("h1", "h2")])
    if reason:
        out.print(f"  WOULD BE A SOFT ERROR: {reason}", highlight=False, markup=False)
    out.print(f"  dropped before comparison ({len(ex.dropped)}):", highlight=False)
    for d in ex.dropped:
        out.print(f"    - {d}", highlight=False, markup=False)
    sections: dict[str, int] = {}
    for b in ex.blocks:
        key = " › ".join(b["section"]) or "(top of page)"
        sections[key] = sections.get(key, 0) + 1
    out.print(f"  content: {len(ex.blocks)} blocks, hash {ex.content_hash[:16]}", highlight=False)
    for key, n in sections.items():
        out.print(f"    {n:4d}  {key}", highlight=False, markup=False)
    if blocks:
        for b in ex.blocks:
            out.print(f"  [{b['kind']}] {' › '.join(b['section'])}: {b['text']}", highlight=False, markup=False)


# --- export and sql -------------------------------------------------------------------------------------
@app.command()
def export(what: str = typer.Argument(..., help="changes | versions | fetches | warc"), config: Optional[Path] = ConfigOpt,
           fmt: str = typer.Option("ndjson", "--format", "-f", help="csv | json | ndjson"), since: Optional[str] = SinceOpt,
           topic: Optional[str] = typer.Option(None, "--topic", help="Only changes (or pages) with this topic."),
           out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="For warc: the .warc.gz file to write.")) -> None:
    """Stream the history as CSV, one JSON array, or NDJSON (constant memory); `warc` writes raw captures."""
    from sqlalchemy import select

    from policywatch.storage import queries as q
    from policywatch.storage.models import Fetch, Page, Version
    from policywatch.storage.serialize import change_to_dict, fetch_to_dict, version_to_dict

    if what == "warc":
        return _export_warc(config, since, out_file)
    if what not in ("changes", "versions", "fetches"):
        fail(f"export: {what!r} is not changes, versions, fetches or warc", EXIT_USAGE)
    if fmt not in ("csv", "json", "ndjson"):
        fail(f"--format: {fmt!r} is not csv, json or ndjson", EXIT_USAGE)
    cfg = _config(config)
    when = parse_when(since)
    with _opened(cfg, reader=True) as db:
        with db.session() as s:
            items: Iterable[dict[str, Any]]
            if what == "changes":
                items = (change_to_dict(c) for c in q.iter_changes(s, since=when, topic=topic))
            else:
                model, conv, tcol = (Version, version_to_dict, Version.captured_at) if what == "versions" else (Fetch, fetch_to_dict, Fetch.fetched_at)
                stmt = select(model, Page.url, Page.topics).join(Page, Page.id == model.page_id).order_by(model.id)
                if when is not None:
                    stmt = stmt.where(tcol >= when)
                rows = s.execute(stmt.execution_options(yield_per=500))
                items = (conv(obj, url) for obj, url, topics in rows if topic is None or topic in (topics or []))
            if fmt == "json":
                _write_json_array(items)
            elif fmt == "ndjson":
                for item in items:
                    sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
            else:
                first = next(iter(items), None)
                if first is None:
                    return
                import itertools
                _write_csv(itertools.chain([first], items), first.keys())


def _export_warc(config: Optional[Path], since: Optional[str], out_file: Optional[Path]) -> None:
    from policywatch.storage.maintenance import write_warc

    if out_file is None:
        fail("export warc: --out FILE.warc.gz is required (WARC is binary, not for a terminal)", EXIT_USAGE)
    cfg = _config(config)
    when = parse_when(since)
    with _opened(cfg, reader=True) as db:
        tmp = out_file.with_name(out_file.name + ".part")
        with db.session() as s, open(tmp, "wb") as f:
            n = write_warc(s, f, when)
        tmp.replace(out_file)
        err.print(f"wrote {n} captures to {out_file}")


@app.command()
def sql(query: str = typer.Argument(..., help="One SELECT over the tables or the views change_log, page_versions, fetch_log, run_log, change_topics."),
        config: Optional[Path] = ConfigOpt,
        fmt: str = typer.Option("table", "--format", "-f", help="table | json | csv | ndjson"),
        timeout: float = typer.Option(30.0, "--timeout", help="Cancel the query after this many seconds (0: no limit)."),
        max_rows: int = typer.Option(1000, "--max-rows", help="The table format stops after this many rows and says so "
                                     "(json, csv and ndjson stream every row).")) -> None:
    """Run one read-only SQL query (SELECT only; it can never write, on SQLite or PostgreSQL).

    Uses `[storage] read_url` when it is set (a read-only role for analysts), else `[storage] url`."""
    from policywatch.storage.readonly import QueryFailed, QueryRefused, QueryTimeout, run_readonly

    if fmt not in ("table", "json", "csv", "ndjson"):
        fail(f"--format: {fmt!r} is not table, json, csv or ndjson", EXIT_USAGE)
    if timeout < 0:
        fail("--timeout: must not be negative (0: no limit)", EXIT_USAGE)
    if max_rows < 1:
        fail("--max-rows: must be at least 1", EXIT_USAGE)
    cfg = _config(config)
    try:
        with run_readonly(cfg.read_url, query, timeout=timeout or None) as result:
            cols = result.columns
            rows = ([v.isoformat() if isinstance(v, datetime) else v for v in r] for r in result.rows)
            if fmt == "json":
                _write_json_array(dict(zip(cols, r)) for r in rows)
            elif fmt == "ndjson":
                for r in rows:
                    sys.stdout.write(json.dumps(dict(zip(cols, r)), ensure_ascii=False, default=str) + "\n")
            elif fmt == "csv":
                writer = csv.writer(sys.stdout, lineterminator="\n")
                writer.writerow(cols)
                writer.writerows(rows)
            else:
                table = Table(*cols)
                shown = 0
                for r in rows:
                    if shown == max_rows:
                        err.print(f"stopped at {max_rows:,} rows (--max-rows); --format csv, json or ndjson "
                                  "streams every row")
                        break
                    table.add_row(*["" if v is None else str(v) for v in r])
                    shown += 1
                out.print(table)
    except QueryRefused as exc:
        fail(f"refused (the sql command is read-only): {exc}", EXIT_USAGE)
    except QueryTimeout as exc:
        fail(f"sql: {exc}")
    except QueryFailed as exc:
        fail(f"SQL error: {exc}", EXIT_USAGE)


from policywatch.monitor import cli_ops  # noqa: E402,F401  (registers digest, site, status and schedule)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: turn known errors into one-line messages and exit codes."""
    from sqlalchemy.exc import DBAPIError

    from policywatch.storage.db import StorageError, describe_error

    try:
        app(args=argv, standalone_mode=False)
    except CliError as exc:
        sys.stderr.write(f"policywatch: {exc}\n")
        sys.exit(exc.code)
    except ConfigError as exc:
        sys.stderr.write(f"policywatch: config error: {exc}\n")
        sys.exit(EXIT_USAGE)
    except StorageError as exc:
        sys.stderr.write(f"policywatch: {exc}\n")
        sys.exit(EXIT_STORAGE)
    except DBAPIError as exc:  # the database failed mid-command (locked, disk full, server gone): one line, exit 3
        sys.stderr.write(f"policywatch: {describe_error(exc)}\n")
        sys.exit(EXIT_STORAGE)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("policywatch: aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("policywatch: interrupted")
        sys.exit(130)
    except Terminated:
        err.print("policywatch: terminated (SIGTERM); the pass was stopped and recorded as failed")
        sys.exit(143)
    except OSError as exc:  # a file policywatch could not write or read (full disk, permissions): one line
        import errno

        where = f" {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"policywatch: cannot write{where}: {exc.strerror or exc}\n" if exc.errno in (
            errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO) else f"policywatch: {exc.strerror or exc}:{where}\n")
        sys.exit(EXIT_STORAGE if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO) else EXIT_FAILED)
    except Exception as exc:  # Click usage errors (Typer vendors Click) arrive here in non-standalone mode
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show(file=sys.stderr)
            sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
        raise


if __name__ == "__main__":
    main()
