"""Per-page work in child processes, so a pass uses every core.

Why processes: Scrapy's reactor and the page work (lxml parse, block walk, hashing, compression, SQL) share one
GIL in one process; on a first pass the page work is most of the CPU, so the crawl process stalls on it while the
other cores idle. Each worker process opens its own connection to the history database and runs the same
`monitor.pagework.PageWork` the thread path runs: one transaction per page, so several workers commit
independently (SQLite serialises their short write transactions through its busy timeout; PostgreSQL runs them
side by side). A page's result is committed by exactly one worker or not at all.

Workers ignore SIGINT/SIGTERM (the crawl process owns shutdown: it stops scheduling, then drains the pool) and
exit by themselves within a second if the crawl process dies (kill -9), so they never linger as orphans.

Results travel in batches (up to `BATCH_ITEMS`, or `BATCH_BYTES` of bodies, gathered for at most `BATCH_WAIT`):
each submission costs the crawl process a future, two thread hops and a pipe write and wakes a worker; on a night
of 304s — under a millisecond of page work each — that plumbing was about a sixth of the crawl process's busy
samples (py-spy). The wait sets the batch size on such a night: results arrive every 3–4 ms, so a 2 ms wait sent
6,300 batches for 10,000 pages (1.6 each); 50 ms sends ≈ 650 (15 each), and the 304 night went from 59–61 s to
43–50 s (crawl process 49–50 → 38–44 s CPU, each worker 11 → 7 s; alternated runs, bench/BENCHMARKS.md). The first
pass is unchanged (its batches fill by bytes). A result waits at most 50 ms for its trip, which nothing notices.
Each page is still its own transaction in the worker; a batch only shares the trip.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Any

from monitor.config import Config
from monitor.pagework import FetchResult, PageOutcome, PageWork
from storage import open_database
from storage.db import StorageError, describe_error, is_fatal_storage_error

log = logging.getLogger(__name__)

_work: PageWork | None = None  # the PageWork of this worker process (set by _init)

BATCH_ITEMS = 64  # results sent to a worker in one message at most …
BATCH_BYTES = 256 * 1024  # … or fewer when their bodies add up to this (a first pass: a few pages a batch)
BATCH_WAIT = 0.05  # seconds the first result of a batch waits for company


class RemoteTraceback(Exception):
    """The worker-side traceback of a page's error, kept as the error's cause for the crawl log."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


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


def _ready() -> int:
    """A no-op task: submitting one per worker makes the executor start them all at once."""
    return os.getpid()


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


def _process_batch(items: list[FetchResult]) -> list[tuple[PageOutcome | None, BaseException | None, str | None]]:
    """Each item in its own transaction; per item its outcome, or its error and the error's traceback."""
    out: list[tuple[PageOutcome | None, BaseException | None, str | None]] = []
    for item in items:
        try:
            out.append((_process(item), None, None))
        except Exception as exc:
            tb = "".join(traceback.format_exception(exc))
            try:
                pickle.dumps(exc)
            except Exception:  # an error that cannot cross the pipe still reaches the log, as text
                exc = RuntimeError(f"{type(exc).__name__}: {exc}")
            out.append((None, exc, tb))
    return out


class PageWorkerPool:
    """A pool of page-work processes for one run; rebuilt if a worker dies (its pages in flight are reported
    as errors by the caller, nothing half-written: each page is one transaction)."""

    def __init__(self, config: Config, run_id: int, first_run: bool, processes: int):
        # Without the watchlist: each FetchResult carries its watch (the crawl looks it up), and a copy per process
        # would grow with the watchlist (≈ 20 MB a process at 50,000 watches) and slow every worker's start.
        self.args = (replace(config, watches=()), run_id, first_run, os.getpid())
        self.processes = processes
        self.feeder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagework-feed")
        self.pool = self._start()
        self._pending: list[tuple[FetchResult, asyncio.Future[PageOutcome]]] = []
        self._pending_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self.batches_sent = 0

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: forking a process that runs a reactor and holds database connections is unsafe
        pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init, initargs=self.args)
        # Start every worker now, from the feeder thread: the executor would start one only when work arrives,
        # and a spawned worker imports for ≈ 0.5 s before its first page (measured: the first pages waited for
        # their workers). Started here, the imports overlap Scrapy's start-up and the robots.txt fetch. Not on the
        # reactor: starting a worker blocks until it has read its arguments, i.e. until its imports are done.
        for _ in range(self.processes):
            self.feeder.submit(pool.submit, _ready)
        return pool

    async def process(self, item: FetchResult) -> PageOutcome:
        """The outcome of one page's work; raises its error (BrokenProcessPool if its worker died)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[PageOutcome] = loop.create_future()
        self._pending.append((item, fut))
        self._pending_bytes += len(item.body or b"")
        if len(self._pending) >= BATCH_ITEMS or self._pending_bytes >= BATCH_BYTES:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(BATCH_WAIT, self._flush)
        return await fut

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        if batch:
            self.batches_sent += 1
            task = asyncio.ensure_future(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[FetchResult, asyncio.Future[PageOutcome]]]) -> None:
        pool = self.pool
        try:
            # Submitted from a feeder thread, never from the reactor: ProcessPoolExecutor.submit writes to a wake-up
            # pipe that blocks when full (py-spy: a quarter of the reactor's time on a 304 night at 10,000 pages).
            fut: Future[Any] = await asyncio.get_running_loop().run_in_executor(
                self.feeder, pool.submit, _process_batch, [item for item, _ in batch])
            results = await asyncio.wrap_future(fut)
        except BaseException as exc:
            if isinstance(exc, BrokenProcessPool) and pool is self.pool:
                log.error("a page-work process died; starting a new pool (pages in flight are not stored)")
                pool.shutdown(wait=False, cancel_futures=True)
                self.pool = self._start()
            for _, waiter in batch:
                if waiter.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    waiter.cancel()
                else:
                    waiter.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, waiter), (outcome, error, tb) in zip(batch, results):
            if waiter.done():
                continue
            if error is not None:
                error.__cause__ = RemoteTraceback(tb)
                waiter.set_exception(error)
            else:
                waiter.set_result(outcome)

    def pids(self) -> list[int]:
        return [p.pid for p in (self.pool._processes or {}).values() if p.pid]  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        self.feeder.shutdown(wait=True)
        self.pool.shutdown(wait=True)
