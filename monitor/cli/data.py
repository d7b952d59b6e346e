"""Commands for analysts and the database: `export`, `sql`, `db upgrade|prune|metadata`."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from policywatch.monitor.cli.common import (
    EXIT_USAGE,
    ConfigOpt,
    ExportWhat,
    SinceOpt,
    SqlFormat,
    StreamFormat,
    _config,
    _opened,
    _write_csv,
    _write_json_array,
    app,
    check_topic,
    csv_cell,
    db_app,
    err,
    fail,
    out,
    parse_when,
)


@db_app.command("upgrade")
def db_upgrade(config: Path | None = ConfigOpt) -> None:
    """Create the database or bring its schema to the latest revision (safe with concurrent processes)."""
    from policywatch.storage.db import current_revision

    cfg = _config(config)
    with _opened(cfg) as db:
        with db.engine.connect() as conn:
            out.print(f"database at schema revision {current_revision(conn)}")


@db_app.command("prune")
def db_prune(
    config: Path | None = ConfigOpt,
    bodies_older_than: str = typer.Option(
        "180d", "--bodies-older-than", help="Age (e.g. 90d) or date; raw bodies older than this are dropped."
    ),
    vacuum: bool = typer.Option(
        False, "--vacuum", help="Reclaim the space afterwards (SQLite VACUUM / PostgreSQL VACUUM)."
    ),
) -> None:
    """Drop old raw bodies; extracted text, hashes, versions and changes stay. Each page's latest body is
    kept."""
    from policywatch.storage.maintenance import prune_bodies

    cfg = _config(config)
    cutoff = parse_when(bodies_older_than, option="--bodies-older-than", zone=cfg.schedule.timezone)
    with _opened(cfg) as db:
        with db.session() as s:
            n, freed = prune_bodies(s, cutoff)
        if vacuum:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                # PostgreSQL: a running pass holds its lock table; skip it rather than wait for the pass
                pg = conn.dialect.name == "postgresql"
                conn.exec_driver_sql("VACUUM (SKIP_LOCKED)" if pg else "VACUUM")
        out.print(f"pruned {n} raw bodies ({freed / 1e6:.1f} MB compressed) older than {cutoff:%Y-%m-%d}")


@db_app.command("analyst-role")
def db_analyst_role(
    config: Path | None = ConfigOpt,
    name: str = typer.Option("policywatch_analyst", "--name", help="The role's name."),
    apply: bool = typer.Option(
        False,
        "--apply",
        help="Create the role now (needs a role that may create roles); without it, print the SQL.",
    ),
) -> None:
    """A PostgreSQL login role for analysts: SELECT on the documented views and tables, nothing else.

    Point [storage] read_url at it: `sql` refuses a superuser or any role that may read server files or
    end other sessions. With --apply, the password is taken from POLICYWATCH_ANALYST_PASSWORD when set
    (otherwise authenticate with .pgpass, a certificate or peer auth)."""
    import os

    from sqlalchemy.engine import make_url

    from policywatch.storage.roles import RoleError, analyst_role_sql, apply_analyst_role

    cfg = _config(config)
    url = make_url(cfg.storage_url)
    if url.get_backend_name() != "postgresql":
        fail(
            "db analyst-role is for PostgreSQL; a SQLite file's permissions are its access control "
            "(give analysts a copy: docs/analysts.md)",
            EXIT_USAGE,
        )
    password = os.environ.get("POLICYWATCH_ANALYST_PASSWORD") or None
    try:
        statements = analyst_role_sql(name, url.database or "", with_password=password is not None)
    except RoleError as exc:
        fail(str(exc), EXIT_USAGE)
    read_url = url.set(username=name, password=None).render_as_string(hide_password=True)
    if not apply:
        out.print("-- as a role that may create roles, in the policywatch database:", markup=False)
        for sql in statements:
            out.print(sql.replace(":password", "'…'") + ";", markup=False)
        out.print(f'-- then, in the config: [storage] read_url = "{read_url}"', markup=False)
        return
    with _opened(cfg) as db:  # created or upgraded first: the views must exist before they are granted
        try:
            created = apply_analyst_role(db.engine, name, password)
        except RoleError as exc:
            fail(f"db analyst-role: {exc}", EXIT_USAGE)
    out.print(
        f"role {name} {'created' if created else 'existed: granted'} SELECT on the documented views and "
        f'tables; set [storage] read_url = "{read_url}"',
        markup=False,
    )


@db_app.command("metadata")
def db_metadata(
    config: Path | None = ConfigOpt,
    database: str | None = typer.Option(
        None,
        "--database",
        metavar="NAME",
        help="The file Datasette will serve (analysts.db; default: the config's database file).",
    ),
) -> None:
    """Print Datasette metadata (descriptions and canned queries): `datasette DB --metadata FILE`. The canned
    queries read dates in `[schedule] timezone`, as every command does."""
    from sqlalchemy.engine import make_url

    from policywatch.storage.maintenance import datasette_metadata

    cfg = _config(config)
    # Datasette names a database after its file (analysts.db → analysts): the queries must carry that name
    name = Path(database or make_url(cfg.storage_url).database or "policywatch").stem
    if not name.strip():
        fail(f"--database: {database!r} names no file (e.g. analysts.db)", EXIT_USAGE)
    sys.stdout.write(json.dumps(datasette_metadata(name, cfg.schedule.timezone), indent=2) + "\n")


@app.command()
def export(
    what: ExportWhat = typer.Argument(..., help="What to export."),
    config: Path | None = ConfigOpt,
    fmt: StreamFormat = typer.Option(StreamFormat.ndjson, "--format", "-f", help="Output format."),
    since: str | None = SinceOpt,
    topic: str | None = typer.Option(None, "--topic", help="Only changes (or pages) with this topic."),
    out_file: Path | None = typer.Option(None, "--out", "-o", help="For warc: the .warc.gz file to write."),
) -> None:
    """Stream the history as CSV, one JSON array, or NDJSON (constant memory); `warc` writes raw captures."""
    from sqlalchemy import select

    from policywatch.storage import queries as q
    from policywatch.storage.models import Fetch, Page, Version
    from policywatch.storage.serialize import (
        change_to_dict,
        fetch_to_dict,
        version_to_dict,
    )

    if what == "warc":
        return _export_warc(config, since, out_file)
    cfg = _config(config)
    when = parse_when(since, zone=cfg.schedule.timezone)
    with _opened(cfg, reader=True) as db:
        check_topic(cfg, db, topic)
        with db.session() as s:
            items: Iterable[dict[str, Any]]
            if what == "changes":
                items = (change_to_dict(c) for c in q.iter_changes(s, since=when, topic=topic))
            else:
                model, conv, tcol = (
                    (Version, version_to_dict, Version.captured_at)
                    if what == "versions"
                    else (Fetch, fetch_to_dict, Fetch.fetched_at)
                )
                stmt = (
                    select(model, Page.url, Page.topics)
                    .join(Page, Page.id == model.page_id)
                    .order_by(model.id)
                )
                if when is not None:
                    stmt = stmt.where(tcol >= when)
                rows = s.execute(stmt.execution_options(yield_per=500))
                items = (
                    conv(obj, url) for obj, url, topics in rows if topic is None or topic in (topics or [])
                )
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


def _export_warc(config: Path | None, since: str | None, out_file: Path | None) -> None:
    from policywatch.storage.maintenance import write_warc

    if out_file is None:
        fail("export warc: --out FILE.warc.gz is required (WARC is binary, not for a terminal)", EXIT_USAGE)
    cfg = _config(config)
    when = parse_when(since, zone=cfg.schedule.timezone)
    with _opened(cfg, reader=True) as db:
        tmp = out_file.with_name(out_file.name + ".part")
        with db.session() as s, open(tmp, "wb") as f:
            n = write_warc(s, f, when)
        tmp.replace(out_file)
        err.print(f"wrote {n} captures to {out_file}")


@app.command()
def sql(
    query: str = typer.Argument(
        ...,
        help="One SELECT over the tables or the views change_log, change_facts, change_topics, "
        "page_versions, fetch_log, run_log, digest_log.",
    ),
    config: Path | None = ConfigOpt,
    fmt: SqlFormat = typer.Option(SqlFormat.table, "--format", "-f", help="Output format."),
    timeout: float = typer.Option(
        30.0, "--timeout", help="Cancel the query after this many seconds (0: no limit)."
    ),
    max_rows: int = typer.Option(
        1000,
        "--max-rows",
        help="The table format stops after this many rows and says so "
        "(json, csv and ndjson stream every row).",
    ),
) -> None:
    """Run one read-only SQL query (SELECT only; it can never write, on SQLite or PostgreSQL).

    Uses `[storage] read_url` when it is set (a read-only role for analysts), else `[storage] url`."""
    from policywatch.storage.readonly import (
        QueryFailed,
        QueryRefused,
        QueryTimeout,
        RoleTooPowerful,
        run_readonly,
    )

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
                _write_json_array(dict(zip(cols, r, strict=False)) for r in rows)
            elif fmt == "ndjson":
                for r in rows:
                    sys.stdout.write(
                        json.dumps(dict(zip(cols, r, strict=False)), ensure_ascii=False, default=str) + "\n"
                    )
            elif fmt == "csv":
                writer = csv.writer(sys.stdout, lineterminator="\n")
                writer.writerow([csv_cell(c) for c in cols])
                writer.writerows([csv_cell(v) for v in r] for r in rows)
            else:
                table = Table(*cols)
                shown = 0
                for r in rows:
                    if shown == max_rows:
                        err.print(
                            f"stopped at {max_rows:,} rows (--max-rows); --format csv, json or ndjson "
                            "streams every row"
                        )
                        break
                    table.add_row(*["" if v is None else str(v) for v in r])
                    shown += 1
                out.print(table)
    except RoleTooPowerful as exc:
        fail(str(exc), EXIT_USAGE)
    except QueryRefused as exc:
        fail(f"refused (the sql command is read-only): {exc}", EXIT_USAGE)
    except QueryTimeout as exc:
        fail(f"sql: {exc}")
    except QueryFailed as exc:
        fail(f"SQL error: {exc}", EXIT_USAGE)
