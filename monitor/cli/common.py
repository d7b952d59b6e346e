"""What every command shares: the Typer apps, the consoles, options, errors and exit codes, the config and the
database for one command, and the JSON / CSV writers (machine-readable output goes to stdout, nothing else
does)."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn, overload

import typer
from rich.console import Console

from policywatch.monitor import __version__
from policywatch.monitor.config import Config, load_config

err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)  # scraped text is never markup
out = Console(soft_wrap=True, markup=False, highlight=False)

app = typer.Typer(
    name="policywatch",
    rich_markup_mode=None,  # help renders as written: "[[watch]]" and "[archive]" are not markup
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Watch canada.ca immigration pages and report what changed, in words a consultant understands.",
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(db_app, name="db")

ConfigOpt = typer.Option(
    None, "--config", "-c", help="TOML config (default: $POLICYWATCH_CONFIG, else ./policywatch.toml)."
)
SinceOpt = typer.Option(
    None, "--since", help="Only from this date/time on: 2024-01-15, 2024-01-15T03:00+00:00, or 7d / 24h."
)

EXIT_FAILED, EXIT_USAGE, EXIT_STORAGE, EXIT_BUSY = 1, 2, 3, 4


class Terminated(BaseException):
    """SIGTERM (systemd stop, the scheduler shutting down): unwinds like Ctrl-C so cleanup code runs."""


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated()


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    raise CliError(message, code)


# One date-input policy (docs/cli.md, "Dates and times"): a date or time without an offset is in the
# configured zone (`[schedule] timezone`, the zone every human output shows); a plain date is the start of
# that day for "since"/"from" options and the end of it for "as of"/"to" options. Datasette's canned queries
# (`db metadata`) read their parameters the same way.
_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_FORMS = "use 2024-01-15, an ISO date-time, or 7d / 24h"


def _day_start(value: str, zone: str, option: str) -> datetime:
    from policywatch.reports.clock import zone as tz

    try:
        day = date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a date ({_DATE_FORMS})", EXIT_USAGE)
    return datetime(day.year, day.month, day.day, tzinfo=tz(zone))


def parse_as_of(value: str, *, option: str, zone: str = "UTC") -> datetime:
    """A point in time for "as of" options (`show --at`, `diff --to`): a plain date is the end of that day in
    `zone`, so a capture made during the day is found; anything else as parse_when reads it."""
    v = value.strip()
    if _PLAIN_DATE.fullmatch(v):
        start = _day_start(v, zone, option)
        nxt = start.date() + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=start.tzinfo) - timedelta(microseconds=1)
    when = parse_when(value, option=option, zone=zone)
    assert when is not None
    return when


def check_topic(config: Config, db: Any, topic: str | None) -> None:
    """An unknown --topic is a usage error naming the known ones (configured, or found in the history)."""
    if topic is None:
        return
    from sqlalchemy import text

    known = set(config.topics) | {t for w in config.watches for t in w.topics}
    if topic in known:
        return
    with db.engine.connect() as conn:
        known |= {r[0] for r in conn.execute(text("SELECT DISTINCT topic FROM change_topics"))}
    if topic not in known:
        names = ", ".join(sorted(known)) or "none yet"
        fail(f"--topic {topic!r}: no such topic (known: {names})", EXIT_USAGE)


@overload
def parse_when(value: str, *, option: str = ..., zone: str = ...) -> datetime: ...
@overload
def parse_when(value: None, *, option: str = ..., zone: str = ...) -> None: ...
@overload
def parse_when(value: str | None, *, option: str = ..., zone: str = ...) -> datetime | None: ...


def parse_when(value: str | None, *, option: str = "--since", zone: str = "UTC") -> datetime | None:
    """A point in time for "since"/"from" options: an age (7d, 24h, 2w) before now, a plain date (the start
    of that day in `zone`), or an ISO date-time (in `zone` without an offset)."""
    if value is None:
        return None
    v = value.strip()
    m = re.fullmatch(r"(\d+)\s*([dhw])", v)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"d": timedelta(days=n), "h": timedelta(hours=n), "w": timedelta(weeks=n)}[unit]
        return datetime.now(UTC) - delta
    if _PLAIN_DATE.fullmatch(v):
        return _day_start(v, zone, option)
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {value!r} is not a date ({_DATE_FORMS})", EXIT_USAGE)
    if dt.tzinfo:
        return dt
    from policywatch.reports.clock import zone as tz

    return dt.replace(tzinfo=tz(zone))


def _config(path: Path | None) -> Config:
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
def _root(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """policywatch: nightly change monitor for IRCC / Tech Talent Strategy pages."""


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


#: What a spreadsheet reads as the start of a formula (OWASP's CSV injection list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value for a CSV cell that a spreadsheet shows as text, never runs: scraped titles and summaries are
    hostile, and `=HYPERLINK(…)` in a cell is a live link (OWASP: prefix such a cell with a quote)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write_csv(rows: Iterable[dict[str, Any]], fields: Iterable[str]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})


# --- choices: Typer lists them in --help and refuses anything else with exit code 2 -------------------------
class TableJsonCsv(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class TableJson(StrEnum):
    table = "table"
    json = "json"


class TextJson(StrEnum):
    text = "text"
    json = "json"


class TextHtml(StrEnum):
    text = "text"
    html = "html"


class StreamFormat(StrEnum):
    csv = "csv"
    json = "json"
    ndjson = "ndjson"


class SqlFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    ndjson = "ndjson"


class ExportWhat(StrEnum):
    changes = "changes"
    versions = "versions"
    fetches = "fetches"
    warc = "warc"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
