"""One pass at a time across processes.

PostgreSQL: `LOCK TABLE pass_lock IN EXCLUSIVE MODE` in a transaction a dedicated connection keeps open for
the whole pass (released by the server if the process dies). Why not an advisory lock: every role may take
any advisory lock, so an analyst's session could hold the nightly pass off; this lock needs UPDATE on
`pass_lock`, which only the pass's role has, and a role that may only SELECT can take nothing that conflicts
with it. SQLite: an exclusive `flock` on `<database>.lock` (released by the kernel if the process dies, so a
crashed pass never leaves a stale lock behind).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from policywatch.storage.db import StorageError

log = logging.getLogger(__name__)

PASS_LOCK_TABLE = "pass_lock"
_LOCK_NOT_AVAILABLE = "55P03"


class LockBusy(Exception):
    """Another pass holds the lock."""


class LockLost(Exception):
    """The pass lock was lost (its PostgreSQL connection died) and another pass holds it now."""


class LockGuard:
    """What a pass holds while it runs. `check()` raises LockLost if the lock is gone for good; the pass calls
    it before the steps that must run alone (finishing the run, delivering digests).

    PostgreSQL: the lock lives with one connection, and a server restart or `pg_terminate_backend` takes both
    away — silently, so another pass could start beside this one. A heartbeat thread pings that connection
    every few seconds and, when it is gone, takes the lock again on a new connection at once; only if another
    pass got it first is the lock lost. SQLite: an `flock` cannot be lost; check() never raises."""

    HEARTBEAT = 3.0

    def __init__(self, engine: Engine | None = None):
        self.engine = engine
        self.conn: Connection | None = None
        self.lost: str | None = None
        self.retaken = 0
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- PostgreSQL -------------------------------------------------------------------------------------
    def acquire(self) -> bool:
        assert self.engine is not None
        conn = self.engine.connect()
        try:
            # The lock lives as long as this transaction: a server-wide idle-in-transaction timeout must
            # not end it while the pass works.
            conn.exec_driver_sql("SET idle_in_transaction_session_timeout = 0")
            conn.exec_driver_sql("SET application_name = 'policywatch pass lock'")
            conn.commit()
            conn.exec_driver_sql(f"LOCK TABLE {PASS_LOCK_TABLE} IN EXCLUSIVE MODE NOWAIT")
        except DBAPIError as exc:
            conn.close()
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                return False
            raise
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        return True

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, daemon=True, name="pass-lock-heartbeat")
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.HEARTBEAT):
            try:
                self.check()
            except LockLost:
                return

    def check(self) -> None:
        if self.engine is None:
            return
        with self._mutex:
            if self.lost:
                raise LockLost(self.lost)
            try:
                assert self.conn is not None
                self.conn.execute(text("SELECT 1"))  # inside the lock's transaction: never committed
                return
            except DBAPIError as exc:
                log.warning(
                    "pass lock connection lost (%s); taking the lock again",
                    str(exc.orig or exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
            try:
                if self.conn is not None:
                    self.conn.close()
            except DBAPIError:
                pass
            self.conn = None
            try:
                got = self.acquire()
            except DBAPIError as exc:  # the server is still down: try again on the next beat
                log.warning("cannot take the pass lock again yet: %s", str(exc.orig or exc).splitlines()[0])
                return
            if got:
                self.retaken += 1
                log.warning("pass lock taken again after its connection was lost")
                return
            self.lost = (
                "the pass lock was lost with its database connection and another pass holds it now; "
                "this pass stops before finishing the run and delivering digests"
            )
            raise LockLost(self.lost)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._mutex:
            conn, self.conn = self.conn, None
            if conn is None:
                return
            try:
                if not self.lost:
                    conn.rollback()  # ends the transaction, and the table lock with it
            except DBAPIError as exc:
                # The lock's connection is gone (server restart, pg_terminate_backend): PostgreSQL released
                # the session's lock with it, so there is nothing left to unlock.
                log.warning(
                    "pass lock connection lost before unlock (the server released the lock): %s",
                    str(exc.orig or exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
            finally:
                try:
                    conn.close()
                except DBAPIError:
                    pass


@contextmanager
def pass_lock(engine: Engine) -> Iterator[LockGuard]:
    if engine.dialect.name == "postgresql":
        guard = LockGuard(engine)
        if not guard.acquire():
            raise LockBusy("another policywatch pass is running on this database")
        guard.start_heartbeat()
        try:
            yield guard
        finally:
            guard.release()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield LockGuard()
        return
    path = lock_path(database)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise _lock_file_error(path, exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            raise LockBusy(
                f"another policywatch pass is running on this database (pid {holder or '?'})"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as exc:  # a full disk: the lock is held (flock needs no space), the pid is only a hint
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise _lock_file_error(path, exc) from None
        try:
            yield LockGuard()
        finally:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_path(database: str) -> Path:
    """The SQLite pass lock file beside the database: `<database>.lock`."""
    return Path(database.removeprefix("file:").split("?")[0]).with_suffix(Path(database).suffix + ".lock")


def _lock_file_error(path: Path, exc: OSError) -> StorageError:
    err = StorageError(
        f"cannot write the pass lock file {path}: {exc.strerror or exc}; nothing was written "
        "(free space or fix the permissions, then run again)"
    )
    err.fatal = True
    return err


def pass_running(engine: Engine) -> bool | None:
    """Whether some process holds the pass lock now (None: cannot tell). Why: a pass killed with kill -9
    leaves its run marked "running" until the next pass starts; only the lock says whether its holder is
    alive."""
    if engine.dialect.name == "postgresql":
        try:
            with engine.connect() as conn:
                return bool(
                    conn.execute(
                        text(
                            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' AND granted "
                            "AND mode = 'ExclusiveLock' AND relation = to_regclass(:t) "
                            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
                        ),
                        {"t": PASS_LOCK_TABLE},
                    ).scalar()
                )
        except DBAPIError:
            return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    path = lock_path(database)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    # Read, not tried: taking even a shared flock for a moment would make a pass starting then see "busy".
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            if any(" FLOCK " in line and f" {dev} " in line and "->" not in line for line in f):
                return True
    except OSError:  # not Linux
        pass
    # Else the pid the holder wrote (emptied when a pass ends), if that process is alive: some file systems
    # (overlays) show /proc/locks another device number than stat().
    try:
        pid = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, another user's
        return True
    return True
