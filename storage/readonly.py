"""Read-only SQL for analysts (`policywatch sql`): one query, no writes, bounded in time, rows streamed.

Why layers: a "read-only" flag on a connection is not enough. A multi-statement string ends the read-only
transaction at its first `COMMIT` (the driver sends the whole string), a superuser's SELECT can read server
files (`pg_read_file`) or run programs (`COPY … TO PROGRAM`), and SQLite's ATTACH or VACUUM INTO create files
before any write is refused. Each layer below stops those attacks on its own:

1. The parser (sqlparse): exactly one statement, a SELECT (a `WITH … SELECT` too), with no `INTO`, calling
   none of the functions that reach outside the database or run SQL from a string.
2. The driver: PostgreSQL gets the query inside `DECLARE … CURSOR FOR`, sent with the extended protocol, which
   takes one statement and only a SELECT or VALUES; SQLite's `execute` takes one statement.
3. The session: PostgreSQL opens with `default_transaction_read_only=on`, runs the query in a READ ONLY
   transaction that is always rolled back, and a role with superuser or server-file powers runs it as
   `pg_read_all_data` instead; SQLite opens the file with `mode=ro`, `PRAGMA query_only`, and an authorizer
   that denies ATTACH, DETACH, schema changes and writing PRAGMAs.
4. Limits: a statement timeout (PostgreSQL `statement_timeout`, SQLite a progress handler), and rows fetched
   from a server-side cursor a batch at a time, so a million rows never sit in memory.

The dedicated analyst role in docs/analysts.md is still the first defence: the database then refuses by
itself.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlparse
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlparse import tokens as T

from policywatch.storage.db import StorageError

#: Functions that read or write server files, run programs, talk to other servers, run SQL given as a string,
#: change settings or roles, take the pass lock, or signal other sessions. PostgreSQL allows all of them in a
#: READ ONLY transaction, so the parser refuses them by name.
DENIED_FUNCTIONS = frozenset(
    {
        "pg_stat_file",
        "pg_logdir_ls",
        "loread",
        "lowrite",
        "set_config",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_notify",
        "pg_import_system_collations",
        "nextval",
        "setval",
        "txid_current",
        "pg_current_xact_id",
        "pg_log_backend_memory_contexts",
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "fts3_tokenizer",
    }
)
DENIED_PREFIXES = (
    "pg_read_",
    "pg_ls_",
    "pg_file_",
    "lo_",
    "dblink",
    "query_to_xml",
    "cursor_to_xml",
    "pg_advisory",
    "pg_try_advisory",
    "pg_create_",
    "pg_drop_",
    "pg_replication_",
    "pg_logical_",
    "pg_backup_",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_wal_replay_",
)

#: PRAGMAs whose argument names an object (a table, an index), not a new value: reading them is harmless.
_SQLITE_PRAGMAS_WITH_OBJECT = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "foreign_key_check",
    }
)


class QueryRefused(Exception):
    """The query is not one read-only SELECT; the message says why."""


class QueryTimeout(Exception):
    """The query ran longer than its timeout and was cancelled."""


class QueryFailed(Exception):
    """The database answered the query with an error (a typo, an unknown column…); the message is its first
    line."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: Iterator[tuple[Any, ...]]


def _has_code(stmt: sqlparse.sql.Statement) -> bool:
    return any(
        not (t.is_whitespace or t.ttype in T.Comment or t.ttype is T.Punctuation) for t in stmt.flatten()
    )


def _denied(name: str) -> bool:
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES)


def check_query(query: str) -> str:
    """`query` as it will be sent (comments and a final semicolon dropped) if it is one SELECT that reaches
    nothing outside the database; QueryRefused, saying why, otherwise."""
    statements = [s for s in sqlparse.parse(query) if _has_code(s)]
    if not statements:
        raise QueryRefused("the query is empty")
    if len(statements) > 1:
        raise QueryRefused(
            f"one statement at a time: this has {len(statements)} "
            f"({', '.join(s.get_type() for s in statements)})"
        )
    stmt = statements[0]
    first = stmt.token_first(skip_cm=True, skip_ws=True)
    if stmt.get_type() != "SELECT":
        word = first.value.split()[0].upper() if first is not None else "?"
        raise QueryRefused(f"only SELECT queries run here ({word} is not one); the sql command never writes")
    depth = 0
    for tok in stmt.flatten():
        if tok.ttype is T.Punctuation:
            depth += {"(": 1, ")": -1}.get(tok.value, 0)
        elif tok.ttype in T.Keyword and tok.normalized == "INTO" and depth == 0:
            raise QueryRefused("SELECT … INTO creates a table; the sql command never writes")
        elif tok.ttype in T.Name or tok.ttype in T.String.Symbol:  # identifiers, "quoted" ones too
            name = tok.value.strip('"`[]').lower()
            if _denied(name):
                raise QueryRefused(
                    f"{name} reaches outside the database (server files, programs, other servers, "
                    "settings or locks) and is refused"
                )
    kept = [t.value for t in stmt.flatten() if t.ttype not in T.Comment]
    while kept and (kept[-1].strip() in ("", ";")):
        kept.pop()
    return "".join(kept).strip()


@contextmanager
def run_readonly(
    url: str, query: str, *, timeout: float | None = 30.0, batch: int = 500
) -> Iterator[QueryResult]:
    """Run `query` read-only against the database at `url`; its rows are fetched `batch` at a time while the
    caller iterates. Raises QueryRefused, QueryTimeout, QueryFailed, or StorageError (cannot connect)."""
    sql = check_query(query)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"storage.url {url!r} is not a valid SQLAlchemy URL") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        with _sqlite(parsed, sql, timeout, batch) as result:
            yield result
    elif backend == "postgresql":
        with _postgresql(parsed, sql, timeout, batch) as result:
            yield result
    else:
        raise StorageError(f"the sql command supports SQLite and PostgreSQL, not {backend}")


# --- SQLite ---------------------------------------------------------------------------------------------
def _sqlite_authorizer(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
) -> int:
    if action in (
        sqlite3.SQLITE_SELECT,
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_FUNCTION,
        sqlite3.SQLITE_RECURSIVE,
    ):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:  # reading a setting, or a table's columns; never setting one
        return (
            sqlite3.SQLITE_OK
            if arg2 is None or (arg1 or "").lower() in _SQLITE_PRAGMAS_WITH_OBJECT
            else sqlite3.SQLITE_DENY
        )
    if action == sqlite3.SQLITE_UPDATE and arg1 in ("sqlite_master", "sqlite_schema"):
        return sqlite3.SQLITE_OK  # SQLite's own schema parse for table-valued PRAGMA functions, never a write
    return sqlite3.SQLITE_DENY  # ATTACH, DETACH, INSERT, DELETE, CREATE, DROP, ALTER, transactions, …


@contextmanager
def _sqlite(parsed: Any, sql: str, timeout: float | None, batch: int) -> Iterator[QueryResult]:
    db = parsed.database
    if not db or db == ":memory:":
        raise StorageError("the sql command needs a database file, not an in-memory database")
    path = Path(db)
    if not path.exists():
        raise StorageError(f"no database at {path}: run `policywatch run` first")
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=30.0)
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.set_authorizer(_sqlite_authorizer)
        if timeout:
            deadline = time.monotonic() + timeout
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cur = conn.execute(sql)
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, timeout) from None
        columns = [d[0] for d in cur.description or ()]

        def rows() -> Iterator[tuple[Any, ...]]:
            try:
                while chunk := cur.fetchmany(batch):
                    yield from chunk
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, timeout) from None

        yield QueryResult(columns, rows())
    finally:
        conn.close()


def _sqlite_error(exc: sqlite3.Error, timeout: float | None) -> Exception:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if msg == "interrupted":
        return QueryTimeout(f"the query ran longer than {timeout:g} s and was stopped (--timeout SECONDS)")
    if "not authorized" in msg or "readonly" in msg or "read-only" in msg:
        return QueryRefused(f"the sql command is read-only ({msg})")
    return QueryFailed(msg)


# --- PostgreSQL -----------------------------------------------------------------------------------------
#: A role that may read server files or run programs runs the query as pg_read_all_data (PostgreSQL 14+):
#: SELECT on every table and view, none of those powers.
_POWERFUL = (
    "SELECT r.rolsuper OR pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') "
    "OR pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER') "
    "OR pg_has_role(current_user, 'pg_write_server_files', 'MEMBER'), "
    "EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_read_all_data') "
    "FROM pg_roles r WHERE r.rolname = current_user"
)


@contextmanager
def _postgresql(parsed: Any, sql: str, timeout: float | None, batch: int) -> Iterator[QueryResult]:
    import psycopg

    args = parsed.translate_connect_args(username="user", database="dbname")
    params = {k: v for k, v in parsed.query.items() if isinstance(v, str)}
    options = (params.pop("options", "") + " -c default_transaction_read_only=on").strip()
    try:
        conn = psycopg.connect(**args, **params, options=options, connect_timeout=30)
    except psycopg.Error as exc:
        safe = parsed.render_as_string(hide_password=True)
        raise StorageError(f"database {safe} unusable: {str(exc).strip().splitlines()[0]}") from None
    try:
        conn.read_only = True  # every transaction: BEGIN READ ONLY; this one is rolled back, never committed
        with conn.cursor() as cur:
            row = cur.execute(_POWERFUL).fetchone()
            if row and row[0]:
                if not row[1]:
                    raise QueryRefused(
                        "this role may read server files or run programs, and PostgreSQL < 14 has "
                        "no pg_read_all_data to run the query as: connect as a read-only role "
                        "([storage] read_url, docs/analysts.md)"
                    )
                cur.execute("SET LOCAL ROLE pg_read_all_data")
            cur.execute(f"SET LOCAL statement_timeout = {int((timeout or 0) * 1000)}")
        named = conn.cursor(name="policywatch_sql")  # DECLARE … CURSOR over the extended protocol
        named.itersize = batch
        try:
            named.execute(sql)
        except psycopg.Error as exc:
            raise _pg_error(exc, timeout) from None
        columns = [d.name for d in named.description or ()]

        def rows() -> Iterator[tuple[Any, ...]]:
            try:
                yield from named
            except psycopg.Error as exc:
                raise _pg_error(exc, timeout) from None

        yield QueryResult(columns, rows())
    finally:
        try:
            conn.rollback()
        except psycopg.Error:
            pass
        conn.close()


def _pg_error(exc: Exception, timeout: float | None) -> Exception:
    from psycopg import errors

    if isinstance(exc, errors.QueryCanceled):
        return QueryTimeout(f"the query ran longer than {timeout:g} s and was cancelled (--timeout SECONDS)")
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (errors.ReadOnlySqlTransaction, errors.InsufficientPrivilege)):
        return QueryRefused(f"the sql command is read-only ({msg})")
    return QueryFailed(msg)
