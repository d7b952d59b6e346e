"""Open the history database: engine settings per backend, migrations on first use, clear errors.

Why migrations run here: every entry point (CLI, crawl child process, scheduler, workers) may be the first to
touch a new database, possibly several at once; `open_database` upgrades under a lock (PostgreSQL advisory
lock, SQLite exclusive transaction) so exactly one of them migrates.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration's revision id (tests/test_storage.py checks it against Alembic's head). Why a
#: constant: every process (the pass, the crawl, each page worker) checks the schema on open, and a database
#: at this revision needs no Alembic import at all (Alembic is slow to import).
HEAD_REVISION = "0007"
ADVISORY_LOCK_KEY = 0x706F6C6963  # "polic": any fixed 64-bit key, shared by every policywatch process


class StorageError(Exception):
    """The database cannot be used; the message says why in one line. `fatal`: every later write would fail
    the same way (see is_fatal_storage_error)."""

    fatal = False


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


#: How long an SQLite writer waits for another one (seconds); `?timeout=N` in storage.url sets another.
DEFAULT_SQLITE_TIMEOUT = 30.0


def _sqlite_pragmas(busy_ms: int, max_bytes: int | None):
    def apply(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        if max_bytes:  # a size cap: past it, writes fail exactly as on a full disk (SQLITE_FULL)
            page_size = cur.execute("PRAGMA page_size").fetchone()[0]
            cur.execute(f"PRAGMA max_page_count={max(1, max_bytes // page_size)}")
        cur.close()

    return apply


def _query_number(parsed: Any, key: str, default: float | None) -> float | None:
    """A positive number from the URL's query string (SQLite options that are not connect arguments)."""
    raw = parsed.query.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if value <= 0:
        raise StorageError(f"storage.url: {key}={raw!r} must be a positive number")
    return value


#: The history holds subscriber addresses and the exact bytes of every digest: its owner's only. SQLite gives
#: its -wal and -shm files the database file's mode.
DATABASE_MODE = 0o600


def _create_private(path: Path) -> None:
    """Create an empty SQLite file (a valid empty database) 0600 before SQLite creates it with the umask's
    mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DATABASE_MODE))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot create the database {path}: {exc.strerror or exc}") from None


def make_engine(url: str, *, readonly: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"storage.url {url!r} is not a valid SQLAlchemy URL") from exc
    if parsed.drivername == "postgresql" or parsed.drivername.startswith("postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        timeout = _query_number(parsed, "timeout", DEFAULT_SQLITE_TIMEOUT)
        max_mb = _query_number(parsed, "max_size_mb", None)
        parsed = parsed.difference_update_query(["timeout", "max_size_mb"])
        db = parsed.database
        if db and db != ":memory:":
            path = Path(db)
            if readonly and not path.exists():
                raise StorageError(f"no database at {path}: run `policywatch run` first")
            if not path.parent.exists():
                raise StorageError(f"directory for the SQLite database does not exist: {path.parent}")
            if readonly:
                parsed = parsed.set(database=f"file:{path}?mode=ro", query={"uri": "true"})
            elif not path.exists():
                _create_private(path)
        engine = create_engine(parsed, connect_args={"timeout": timeout})
        event.listen(
            engine,
            "connect",
            _sqlite_pragmas(int((timeout or 0) * 1000), int(max_mb * 1024 * 1024) if max_mb else None),
        )
        if readonly:
            event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA query_only=ON"))
        return engine
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if readonly:
        kwargs["execution_options"] = {"postgresql_readonly": True}
    try:
        return create_engine(parsed, **kwargs)
    except (ImportError, SQLAlchemyError) as exc:
        raise StorageError(f"cannot use {parsed.render_as_string(hide_password=True)}: {exc}") from exc


_FATAL = ("database is locked", "disk is full", "disk i/o error", "no space left", "readonly database")


def _messages(exc: BaseException) -> list[str]:
    """The driver messages of an error and of the errors it arose from: SQLite rolls a transaction back by
    itself on a full disk, so the error raised may be a follow-up ("no such savepoint") with the real one as
    context."""
    out, seen = [], set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(getattr(e, "orig", e) or "").strip()
        if text:
            out.append(text.splitlines()[0])
        e = e.__cause__ or e.__context__
    return out or [type(exc).__name__]


def is_fatal_storage_error(exc: BaseException) -> bool:
    """A database error that will fail every following write too (full disk, a lock that outlived the busy
    timeout, a read-only file): the crawl should stop rather than fetch pages it cannot store. A dropped
    connection is not one: the next session reconnects."""
    if isinstance(exc, StorageError):
        return exc.fatal
    return any(m in msg.lower() for msg in _messages(exc) for m in _FATAL)


def is_storage_error(exc: BaseException) -> bool:
    """An error of the database or the disk (the driver, SQLAlchemy, the file system): every later page
    may meet it too. Anything else raised while one page is worked on is that page's problem."""
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, (StorageError, SQLAlchemyError, OSError, MemoryError))


def describe_exception(exc: BaseException) -> str:
    """One line for an error that is not the database's: its type and its first line, cut at a word."""
    if isinstance(exc, RecursionError):
        return "nested too deeply to read (RecursionError)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > 300:
        text = text[:300].rsplit(" ", 1)[0] + " …"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_error(exc: BaseException, url: str | None = None) -> str:
    """One line that says what went wrong with the database and what to do, for a driver error raised anywhere
    (opening, mid-pass, at the end). Why one place: a locked or full SQLite file must read the same from every
    command, and never as a traceback."""
    if isinstance(exc, StorageError):  # described already
        return str(exc)
    messages = _messages(exc)
    msg = next((m for m in messages if any(f in m.lower() for f in _FATAL)), messages[0])
    safe = (
        (make_url(url).render_as_string(hide_password=True) if "://" in url else url)
        if url
        else "the database"
    )
    low = msg.lower()
    if "file is not a database" in low:
        return f"{safe} is not a policywatch database (not an SQLite file, or corrupt)"
    if "database is locked" in low or "database table is locked" in low:
        return (
            f"{safe} is locked: another process kept a write transaction open longer than the busy timeout "
            "(30 s unless storage.url sets `?timeout=SECONDS`); nothing of this command was written "
            "past its last commit — run it again when the other writer is done"
        )
    if "disk is full" in low or "disk i/o error" in low or "no space left" in low:
        return (
            f"{safe}: the disk is full (or storage.url's max_size_mb cap is reached) or cannot be written "
            f"({msg}); every page committed before this is kept "
            "and the rest of the pass was not written — free space and run again (the next pass compares "
            "with "
            "the last stored versions)"
        )
    if "readonly database" in low or "read-only" in low:
        return f"{safe} cannot be written (read-only file or directory): {msg}"
    return f"database {safe} unusable: {msg}" if url else f"database error: {msg}"


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
    else:
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _stored_revision(conn: Connection) -> str | None:
    """The schema revision recorded in the database, read with plain SQL (None: no schema yet)."""
    try:
        with conn.begin_nested() if conn.in_transaction() else conn.begin():
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, SQLAlchemyError) as exc:
        if "alembic_version" in str(exc):  # no such table / relation: a new, empty database
            return None
        raise


def upgrade(engine: Engine) -> str | None:
    """Bring the schema to head under a cross-process lock; refuse a database newer than this code."""
    with engine.connect() as conn:
        if _stored_revision(conn) == HEAD_REVISION:  # the common case: nothing to migrate, no Alembic import
            return HEAD_REVISION
    from alembic import command

    script = _script()
    with engine.connect() as conn:
        with _migration_lock(conn):
            rev = current_revision(conn)
            if not _known(script, rev):
                raise StorageError(
                    f"the database is at schema revision {rev}, which this policywatch does not know: "
                    "it was written by a newer version; upgrade policywatch"
                )
            if rev != script.get_current_head():
                cfg = alembic_config(conn)
                command.upgrade(cfg, "head")
            return current_revision(conn)


def _known(script: ScriptDirectory, rev: str | None) -> bool:
    if rev is None:
        return True
    try:
        return script.get_revision(rev) is not None
    except Exception:
        return False


class Database:
    """An engine plus a session factory for one history database."""

    def __init__(self, url: str, *, readonly: bool = False):
        self.url = url
        self.engine = make_engine(url, readonly=readonly)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work commits as one transaction, or rolls back entirely."""
        with self.sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, migrate: bool = True, readonly: bool = False) -> Database:
    """Open (and by default create or upgrade) the database at `url`, or raise StorageError in one line."""
    db = Database(url, readonly=readonly)
    try:
        if migrate and not readonly:
            upgrade(db.engine)
        else:
            with db.engine.connect() as conn:
                rev = _stored_revision(conn)
            if rev is None:
                raise StorageError(
                    "the database has no policywatch schema yet: run `policywatch run` or `policywatch db "
                    "upgrade`"
                )
            if rev != HEAD_REVISION and not _known(_script(), rev):
                raise StorageError(
                    f"the database is at schema revision {rev}, newer than this policywatch: upgrade "
                    "policywatch"
                )
    except StorageError:
        db.dispose()
        raise
    except (OperationalError, DatabaseError, SQLAlchemyError, OSError) as exc:
        db.dispose()
        raise StorageError(describe_error(exc, url)) from exc
    return db
