"""One pass at a time across processes.

PostgreSQL: a session-level advisory lock held by a dedicated connection for the whole pass (released by the
server if the process dies). SQLite: an exclusive `flock` on `<database>.lock` (released by the kernel if the
process dies, so a crashed pass never leaves a stale lock behind).
"""
from __future__ import annotations

import fcntl
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

PASS_LOCK_KEY = 0x706F6C6964  # distinct from the migration lock key


class LockBusy(Exception):
    """Another pass holds the lock."""


@contextmanager
def pass_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        conn = engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PASS_LOCK_KEY}).scalar()
            conn.commit()
            if not got:
                raise LockBusy("another policywatch pass is running on this database")
            try:
                yield
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PASS_LOCK_KEY})
                    conn.commit()
                except DBAPIError as exc:
                    # The lock's connection is gone (server restart, pg_terminate_backend): PostgreSQL released
                    # the session's lock with it, so there is nothing left to unlock.
                    log.warning("pass lock connection lost before unlock (the server released the lock): %s",
                                str(exc.orig or exc).splitlines()[0] if str(exc) else type(exc).__name__)
        finally:
            try:
                conn.close()
            except DBAPIError:
                pass
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    path = Path(database.removeprefix("file:").split("?")[0]).with_suffix(Path(database).suffix + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            raise LockBusy(f"another policywatch pass is running on this database (pid {holder or '?'})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
