"""Read-only SQL for analysts (`policywatch sql`): one query, no writes, bounded in time, rows streamed.

Why layers: a "read-only" flag on a connection is not enough. A multi-statement string ends the read-only
transaction at its first `COMMIT` (the driver sends the whole string), a superuser's SELECT can read server
files (`pg_read_file`), switch roles (`set_config('role', …)`) or end other sessions, and SQLite's ATTACH or
VACUUM INTO create files before any write is refused. Each layer below stops those attacks on its own:

1. The role (PostgreSQL): never a superuser, a role that can become one, or a member of the roles that read or
   write server files, run programs or signal other sessions. Such a storage URL is refused, naming
   `[storage] read_url` and `policywatch db analyst-role`; nothing in the query can lift a role's limits.
2. The checks, on tokens read as the server reads them (`storage.sqllex`): exactly one statement, a SELECT
   (`WITH … SELECT`, `VALUES`), no `INTO`, none of the functions that reach outside the database, run SQL from
   a string, change settings or roles, take locks or signal sessions.
3. The driver: PostgreSQL gets the query inside `DECLARE … CURSOR FOR`, sent with the extended protocol, which
   takes one statement and only a SELECT or VALUES; SQLite's `execute` takes one statement.
4. The session: PostgreSQL opens with `default_transaction_read_only=on` and `standard_conforming_strings=on`
   (so strings are read as the checks read them) and runs the query in a READ ONLY transaction that is always
   rolled back; SQLite opens the file with `mode=ro`, `PRAGMA query_only`, and an authorizer that denies
   ATTACH, DETACH, schema changes and writing PRAGMAs.
5. Limits enforced from outside the query: a wall-clock deadline (a timer thread cancels the PostgreSQL
   backend or interrupts SQLite, so nothing the query sets can lift it); SQLite's largest value and heap;
   rows fetched from a server-side cursor a batch at a time, so a million rows never sit in memory.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from policywatch.storage.db import StorageError
from policywatch.storage.sqllex import LexError, Token, lex

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


class RoleTooPowerful(QueryRefused):
    """The PostgreSQL role could reach past read-only (a superuser, server files, other sessions): the message
    names `[storage] read_url` and `policywatch db analyst-role`."""


class QueryTimeout(Exception):
    """The query ran longer than its timeout and was cancelled."""


class QueryFailed(Exception):
    """The database answered the query with an error (a typo, an unknown column…); the message is its first
    line."""


@dataclass
class QueryResult:
    columns: list[str]
    rows: Iterator[tuple[Any, ...]]


#: Words that write, lock or leave the query: refused wherever they stand (a CTE included).
_WRITING_WORDS = frozenset(
    {
        "insert",
        "update",
        "delete",
        "merge",
        "truncate",
        "create",
        "drop",
        "alter",
        "grant",
        "revoke",
        "copy",
        "do",
        "call",
        "attach",
        "detach",
        "vacuum",
        "pragma",
        "lock",
        "set",
        "reset",
        "into",
        "listen",
        "notify",
        "prepare",
        "execute",
        "reindex",
        "cluster",
        "refresh",
        "import",
        "load",
        "upsert",
        "begin",
        "commit",
        "rollback",
        "savepoint",
        "release",
    }
)
_READING_STARTS = frozenset({"select", "with", "values", "table"})


def _denied(name: str) -> bool:
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES)


def check_query(query: str, dialect: str = "postgresql") -> str:
    """`query` as it will be sent (comments and a final semicolon dropped) if it is one SELECT that reaches
    nothing outside the database; QueryRefused, saying why, otherwise. The tokens are the server's own
    reading of the text (storage.sqllex), so what is checked is what runs."""
    try:
        tokens = lex(query, dialect)
    except LexError as exc:
        raise QueryRefused(f"the query cannot be read unambiguously: {exc}") from None
    statements: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.kind == "punct" and tok.text == ";":
            statements.append([])
        else:
            statements[-1].append(tok)
    with_code = [st for st in statements if any(t.kind != "space" for t in st)]
    if not with_code:
        raise QueryRefused("the query is empty")
    if len(with_code) > 1:
        firsts = ", ".join(_first_word(st).upper() or "?" for st in with_code)
        raise QueryRefused(f"one statement at a time: this has {len(with_code)} ({firsts})")
    stmt = with_code[0]
    first = _first_word(stmt)
    if first not in _READING_STARTS:
        raise QueryRefused(
            f"only SELECT queries run here ({(first or '?').upper()} is not one); "
            "the sql command never writes"
        )
    for tok in stmt:
        if tok.kind == "word" and tok.value in _WRITING_WORDS:
            if tok.value == "into":
                raise QueryRefused("SELECT … INTO creates a table; the sql command never writes")
            raise QueryRefused(
                f"{tok.value.upper()} writes, locks or runs something else; the sql command only reads"
            )
        if tok.kind in ("word", "name") and _denied(tok.value):
            raise QueryRefused(
                f"{tok.value} reaches outside the database (server files, programs, other servers, "
                "settings, roles, locks or other sessions) and is refused"
            )
    kept = [" " if t.kind == "space" else t.text for t in stmt]
    return "".join(kept).strip()


def _first_word(stmt: list[Token]) -> str:
    for tok in stmt:
        if tok.kind == "space" or (tok.kind == "punct" and tok.text == "("):
            continue
        return tok.value if tok.kind == "word" else ""
    return ""


#: The largest value a SQLite query may build (printf, zeroblob, group_concat …): bigger ones end the query
#: with one line instead of filling the memory. Stored texts and bodies are far below it.
SQLITE_MAX_VALUE = 64 * 1024 * 1024
#: The heap a SQLite query may use at most (sorts and temporary b-trees spill to disk before it).
SQLITE_HEAP_LIMIT = 1024 * 1024 * 1024


@contextmanager
def run_readonly(
    url: str, query: str, *, timeout: float | None = 30.0, batch: int = 500
) -> Iterator[QueryResult]:
    """Run `query` read-only against the database at `url`; its rows are fetched `batch` at a time while the
    caller iterates, all within `timeout` seconds of wall-clock time. Raises QueryRefused, QueryTimeout,
    QueryFailed, or StorageError (cannot connect)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"storage.url {url!r} is not a valid SQLAlchemy URL") from exc
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StorageError(f"the sql command supports SQLite and PostgreSQL, not {backend}")
    sql = check_query(query, backend)
    runner = _sqlite if backend == "sqlite" else _postgresql
    with runner(parsed, sql, timeout, batch) as result:
        yield result


class _Deadline:
    """A wall-clock limit kept from outside the query: when it passes, `stop` (cancel the backend, interrupt
    SQLite) is called from a timer thread, again every second until the query has returned, so nothing the
    query does or sets can lift it."""

    def __init__(self, timeout: float | None, stop: Callable[[], None]):
        self.timeout = timeout
        self.expired = threading.Event()
        self._done = threading.Event()
        self._stop = stop
        self._at = time.monotonic() + timeout if timeout else None
        self._thread: threading.Thread | None = None
        if timeout:
            self._thread = threading.Thread(target=self._watch, daemon=True, name="sql-deadline")
            self._thread.start()

    def _watch(self) -> None:
        assert self._at is not None
        if self._done.wait(max(0.0, self._at - time.monotonic())):
            return
        self.expired.set()
        while not self._done.is_set():
            try:
                self._stop()
            except Exception:  # the connection is closing: nothing left to stop
                return
            self._done.wait(1.0)

    def check(self) -> None:
        """Raise QueryTimeout once the deadline has passed (between batches, while the caller writes rows)."""
        if self.expired.is_set() or (self._at is not None and time.monotonic() > self._at):
            self.expired.set()
            raise self.error()

    def error(self) -> QueryTimeout:
        return QueryTimeout(
            f"the query ran longer than {self.timeout or 0:g} s and was stopped (--timeout SECONDS)"
        )

    def close(self) -> None:
        self._done.set()


def _rows(
    fetch: Callable[[], list[Any]],
    deadline: _Deadline,
    driver_error: type[Exception],
    explain: Callable[[Any, _Deadline], Exception],
) -> Iterator[tuple[Any, ...]]:
    """The rows a batch at a time, the deadline checked between batches (the caller may be slow to write)."""
    try:
        while True:
            deadline.check()
            chunk = fetch()
            if not chunk:
                return
            yield from chunk
    except driver_error as exc:
        raise explain(exc, deadline) from None


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
    # The heap limit is the process's: set for this query, given back after it.
    old_heap = conn.execute("PRAGMA hard_heap_limit").fetchone()[0]
    deadline = _Deadline(timeout, conn.interrupt)
    try:
        conn.execute(f"PRAGMA hard_heap_limit = {SQLITE_HEAP_LIMIT}")
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQLITE_MAX_VALUE)
        conn.execute("PRAGMA query_only=ON")
        _guard_printf(conn)
        conn.set_authorizer(_sqlite_authorizer)
        conn.set_progress_handler(lambda: int(deadline.expired.is_set()), 10_000)
        try:
            cur = conn.execute(sql)
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, deadline) from None
        columns = [d[0] for d in cur.description or ()]

        rows = _rows(lambda: cur.fetchmany(batch), deadline, sqlite3.Error, _sqlite_error)
        yield QueryResult(columns, rows)
    finally:
        deadline.close()
        conn.set_authorizer(None)
        try:
            conn.execute(f"PRAGMA hard_heap_limit = {int(old_heap)}")
        except sqlite3.Error:
            pass
        conn.close()


class _ValueTooBig(Exception):
    pass


def _guard_printf(conn: sqlite3.Connection) -> None:
    """printf/format with a huge width or precision: SQLite's own loop runs for seconds inside one step
    (where neither the deadline nor the length limit can stop it) before it gives up, so such a call is
    refused up front; any other call is SQLite's own printf, on a side connection with the same limit."""
    side = sqlite3.connect(":memory:", check_same_thread=False)
    side.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQLITE_MAX_VALUE)

    def guarded(*args: Any) -> Any:
        if any(isinstance(a, int) and abs(a) > SQLITE_MAX_VALUE for a in args[1:]) or (
            isinstance(args[0] if args else None, str) and _HUGE_WIDTH.search(args[0])
        ):
            raise _ValueTooBig("string or blob too big")
        marks = ", ".join("?" * len(args))
        return side.execute(f"SELECT printf({marks})", args).fetchone()[0]

    for name in ("printf", "format"):
        conn.create_function(name, -1, guarded)


#: A width or precision written into the format itself ('%999999999c').
_HUGE_WIDTH = re.compile(r"%[-+ #0,!]*\d{9,}|%[-+ #0,!]*\d*\.\d{9,}")


def _sqlite_error(exc: sqlite3.Error, deadline: _Deadline) -> Exception:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if msg == "interrupted" or deadline.expired.is_set():
        return deadline.error()
    if "not authorized" in msg or "readonly" in msg or "read-only" in msg:
        return QueryRefused(f"the sql command is read-only ({msg})")
    if "too big" in msg or "user-defined function raised exception" in msg:
        return QueryFailed(
            f"a value would be larger than {SQLITE_MAX_VALUE // (1024 * 1024)} MB, "
            f"the most a query may build ({msg})"
        )
    if "out of memory" in msg:
        return QueryFailed(
            f"the query needs more than {SQLITE_HEAP_LIMIT // (1024 * 1024)} MB of memory ({msg})"
        )
    return QueryFailed(msg)


# --- PostgreSQL -----------------------------------------------------------------------------------------
#: The powers a role must not have to run `sql`: each one reaches outside the database, lifts a limit or
#: touches other sessions, whatever a query's checks say.
_POWERS = (
    "SELECT r.rolname, r.rolsuper, r.rolcreaterole, "
    "EXISTS (SELECT 1 FROM pg_roles s WHERE s.rolsuper AND s.oid <> r.oid "
    "AND pg_has_role(r.oid, s.oid, 'MEMBER')), "
    "ARRAY(SELECT p.rolname::text FROM pg_roles p WHERE p.rolname IN ('pg_read_server_files', "
    "'pg_write_server_files', 'pg_execute_server_program', 'pg_signal_backend') "
    "AND pg_has_role(r.oid, p.oid, 'MEMBER') ORDER BY 1) "
    "FROM pg_roles r WHERE r.rolname = current_user"
)


def role_powers(row: tuple[Any, ...]) -> list[str]:
    """What a role may do that `sql` must not, in words (empty: a role fit for analysts)."""
    _name, superuser, createrole, reaches_super, members = row
    if superuser:  # a superuser is a member of every role: the rest says nothing more
        return ["is a superuser"]
    powers = []
    if reaches_super:
        powers.append("can become a superuser (a member of one)")
    if createrole:
        powers.append("may create roles and grant their powers")
    powers += [f"is a member of {m}" for m in members or ()]
    return powers


@contextmanager
def _postgresql(parsed: Any, sql: str, timeout: float | None, batch: int) -> Iterator[QueryResult]:
    import psycopg

    args = parsed.translate_connect_args(username="user", database="dbname")
    params = {k: v for k, v in parsed.query.items() if isinstance(v, str)}
    options = (
        params.pop("options", "") + " -c default_transaction_read_only=on -c standard_conforming_strings=on"
    ).strip()
    try:
        extra: dict[str, Any] = {**args, **params}  # libpq's own keywords, from the URL
        conn = psycopg.connect(**extra, options=options, connect_timeout=30)
    except psycopg.Error as exc:
        safe = parsed.render_as_string(hide_password=True)
        raise StorageError(f"database {safe} unusable: {str(exc).strip().splitlines()[0]}") from None
    cancel = getattr(conn, "cancel_safe", conn.cancel)
    deadline = _Deadline(timeout, cancel)
    try:
        conn.read_only = True  # every transaction: BEGIN READ ONLY; this one is rolled back, never committed
        with conn.cursor() as cur:
            row = cur.execute(_POWERS).fetchone()
            powers = role_powers(row) if row else []
            if powers:
                raise RoleTooPowerful(
                    f"sql will not run as {row[0] if row else '?'}: that role "
                    f"{', '.join(powers)} (it could read the server's files, lift the read-only limits or "
                    "end other sessions). Set [storage] read_url to a role that may only read: "
                    "`policywatch db analyst-role` prints one (--apply creates it)"
                )
            cur.execute(f"SET LOCAL statement_timeout = {int((timeout or 0) * 1000)}")
        named = conn.cursor(name="policywatch_sql")  # DECLARE … CURSOR over the extended protocol
        named.itersize = batch
        try:
            named.execute(sql)
        except psycopg.Error as exc:
            raise _pg_error(exc, deadline) from None
        columns = [d.name for d in named.description or ()]

        rows = _rows(lambda: named.fetchmany(batch), deadline, psycopg.Error, _pg_error)
        yield QueryResult(columns, rows)
    finally:
        deadline.close()
        try:
            conn.rollback()
        except psycopg.Error:
            pass
        conn.close()


def _pg_error(exc: Exception, deadline: _Deadline) -> Exception:
    from psycopg import errors

    if isinstance(exc, errors.QueryCanceled) or deadline.expired.is_set():
        return deadline.error()
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (errors.ReadOnlySqlTransaction, errors.InsufficientPrivilege)):
        return QueryRefused(f"the sql command is read-only ({msg})")
    return QueryFailed(msg)
