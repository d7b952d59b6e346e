"""Per-page work in child processes, so a pass uses every core.

Why processes: Scrapy's reactor and the page work (lxml parse, block walk, hashing, compression, SQL) share one
GIL in one process; on a first pass the page work is most of the CPU, so the crawl process stalls on it while the
other cores idle. Each worker process opens its own connection to the history database and runs the same
`monitor.pagework.PageWork` the thread path runs: one transaction per page, so several workers commit
independently (SQLite serialises their short write transactions through its busy timeout; PostgreSQL runs them
side by side). A page's result is committed by exactly one worker or not at all.

Workers ignore SIGINT/SIGTERM (the crawl process owns shutdown: it stops scheduling, then drains the pool) and
exit by themselves within a second if the crawl process dies (kill -9), so they never linger as orphans.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from monitor.config import Config
from monitor.pagework import FetchResult, PageOutcome, PageWork
from storage import open_database
from storage.db import StorageError, describe_error, is_fatal_storage_error

log = logging.getLogger(__name__)

_work: PageWork | None = None  # the PageWork of this worker process (set by _init)


def _exit_with_parent(parent: int) -> None:
    """Poll the parent pid: when the crawl process is gone (we were re-parented), stop at once."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(70)


def _init(config: Config, run_id: int, first_run: bool, parent: int) -> None:
    global _work
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="parent-watch").start()
    _work = PageWork(open_database(config.storage_url, migrate=False), config, run_id, first_run=first_run)


def _process(item: FetchResult) -> PageOutcome:
    assert _work is not None, "worker not initialised"
    try:
        return _work.process(item)
    except Exception as exc:
        if not is_fatal_storage_error(exc):
            raise
        # Describe it here: the error chain (SQLite's own rollback on a full disk raises a follow-up error with
        # the real one as its context) does not survive the trip back to the crawl process.
        err = StorageError(describe_error(exc))
        err.fatal = True
        raise err from None


class PageWorkerPool:
    """A pool of page-work processes for one run; rebuilt if a worker dies (its pages in flight are reported
    as errors by the caller, nothing half-written: each page is one transaction)."""

    def __init__(self, config: Config, run_id: int, first_run: bool, processes: int):
        self.args = (config, run_id, first_run, os.getpid())
        self.processes = processes
        self.pool = self._start()
        self.feeder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagework-feed")

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: forking a process that runs a reactor and holds database connections is unsafe
        return ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init, initargs=self.args)

    async def process(self, item: FetchResult) -> PageOutcome:
        pool = self.pool
        try:
            # Submitted from a feeder thread, never from the reactor: ProcessPoolExecutor.submit writes to a wake-up
            # pipe that blocks when full (py-spy: a quarter of the reactor's time on a 304 night at 10,000 pages).
            fut: Future[Any] = await asyncio.get_running_loop().run_in_executor(self.feeder, pool.submit, _process, item)
            return await asyncio.wrap_future(fut)
        except BrokenProcessPool:
            if pool is self.pool:
                log.error("a page-work process died; starting a new pool (pages in flight are not stored)")
                pool.shutdown(wait=False, cancel_futures=True)
                self.pool = self._start()
            raise

    def pids(self) -> list[int]:
        return [p.pid for p in (self.pool._processes or {}).values() if p.pid]  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        self.feeder.shutdown(wait=True)
        self.pool.shutdown(wait=True)
