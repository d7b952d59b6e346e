"""Per-page work in child processes, so a pass uses every core.

Why processes: Scrapy's reactor and the page work (lxml parse, block walk, hashing, compression, SQL) share one
GIL in one process; on a first pass the page work is most of the CPU, so the crawl process stalls on it while the
other cores idle. Each worker process (`crawler.pageworker`) opens its own connection to the history database and
runs the same `monitor.pagework.PageWork` the thread path runs: one transaction per page, so several workers
commit independently (SQLite serialises their short write transactions through its busy timeout; PostgreSQL runs
them side by side). A page's result is committed by exactly one worker or not at all.

Why plain pipes and not `concurrent.futures.ProcessPoolExecutor`: with the spawn start method (forking a process
that runs a reactor and holds database connections is unsafe) multiprocessing also starts its resource-tracker
process, a 13 MB interpreter for the whole crawl, and the executor runs two threads and a queue feeder of its own
in the crawl process. Here each worker is one subprocess with a thread of the crawl process that writes its batches
to the worker's stdin and reads the answers from its stdout; idle threads take the next batch from one queue. A
worker that dies costs only the batch it held (`PageWorkerDied` for each of its pages) and is restarted; a batch
that finds its pipe already broken never reached it, and goes to the new process. In a pass's crawl the first
worker is the pass process itself (PassChannel; monitor.pageserve says why).

Results travel in batches (up to `BATCH_ITEMS`, or `BATCH_BYTES` of bodies, gathered for at most `BATCH_WAIT`):
each trip costs the crawl process a thread hop and a pipe write and wakes a worker; on a night of 304s — under a
millisecond of page work each — that plumbing was about a sixth of the crawl process's busy samples (py-spy). The
wait sets the batch size on such a night: results arrive every 3–4 ms, so a 2 ms wait sent 6,300 batches for
10,000 pages (1.6 each); 50 ms sends ≈ 650 (15 each), and the 304 night went from 59–61 s to 43–50 s (crawl
process 49–50 → 38–44 s CPU, each worker 11 → 7 s; alternated runs, BENCHMARKS.md). The first pass is unchanged
(its batches fill by bytes). A result waits at most 50 ms for its trip, which nothing notices. Each page is still
its own transaction in the worker; a batch only shares the trip.
"""
from __future__ import annotations

import asyncio
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from typing import Any

from monitor.frames import close_quietly, read_frame, write_frame
from monitor.config import Config
from monitor.fetchresult import FetchResult, PageOutcome

log = logging.getLogger(__name__)

BATCH_ITEMS = 64  # results sent to a worker in one message at most …
BATCH_BYTES = 256 * 1024  # … or fewer when their bodies add up to this (a first pass: a few pages a batch)
BATCH_WAIT = 0.05  # seconds the first result of a batch waits for company
WORKER_COMMAND = [sys.executable, "-P", "-m", "crawler.pageworker"]
GROW_BUSY = 0.85  # share of the time the page-work processes were busy …
GROW_WINDOW = 1.0  # … over this many seconds, before another one starts (see PageWorkerPool._grow)

Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[PageOutcome]"]
Batch = list[tuple[FetchResult, Waiter]]


class PageWorkerDied(Exception):
    """The page-work process holding this page's batch died; nothing of the page was stored. `fatal` when no
    page-work process can start at all (each died before its first answer, twice): the crawl should stop."""

    def __init__(self, message: str, fatal: bool = False):
        super().__init__(message)
        self.fatal = fatal


class RemoteTraceback(Exception):
    """The worker-side traceback of a page's error, kept as the error's cause for the crawl log."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _settle(batch: Batch, answers: list[tuple[Any, BaseException | None, str | None]] | BaseException) -> None:
    """On the loop's thread: hand each page its outcome or its error."""
    for i, (_, (_, waiter)) in enumerate(batch):
        if waiter.done():
            continue
        if isinstance(answers, BaseException):
            waiter.set_exception(answers)
            continue
        outcome, error, tb = answers[i]
        if error is not None:
            error.__cause__ = RemoteTraceback(tb)
            waiter.set_exception(error)
        else:
            waiter.set_result(outcome)


def _deliver(batch: Batch, answers: Any) -> None:
    """From a worker thread: settle the batch on the loop that awaits it (a batch's pages share one loop)."""
    loop = batch[0][1][0]
    try:
        loop.call_soon_threadsafe(_settle, batch, answers)
    except RuntimeError:  # that loop is closed: nobody waits for these pages any more
        pass


class PassChannel:
    """The page work the pass process serves for its crawl (monitor.pageserve.PassPageWork), over the two pipes it
    opened for it: used where a worker uses its process (stdin, stdout, poll, wait). When it breaks, the worker
    holding it starts a page-work process in its place."""

    def __init__(self, fds: tuple[int, int]):
        requests, answers = fds
        self.stdin, self.stdout = os.fdopen(requests, "wb"), os.fdopen(answers, "rb")
        self.returncode: int | None = None

    @classmethod
    def from_setting(cls, value: str | None) -> "PassChannel | None":
        """`POLICYWATCH_PAGE_WORK_FDS` ("requests,answers", set by the pass), or None: none, or not usable."""
        if not value:
            return None
        try:
            requests, answers = (int(fd) for fd in str(value).split(","))
            return cls((requests, answers))
        except (ValueError, OSError) as exc:
            log.warning("the pass's page work is not usable (%s=%r: %s); page-work processes do it all",
                        "POLICYWATCH_PAGE_WORK_FDS", value, exc)
            return None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Close the channel (the pass sees the end of its requests and finishes); 0, as a process that exited."""
        close_quietly(self.stdin, self.stdout)
        self.returncode = 0
        return 0


class _Worker:
    """One page-work process (or the pass's page work: PassChannel) and the crawl-process thread that feeds it."""

    def __init__(self, pool: "PageWorkerPool", number: int, channel: PassChannel | None = None):
        self.pool = pool
        self.failed_starts = 0  # deaths in a row before a first answer
        self.busy = 0.0  # seconds spent with a batch out, batches answered (see PageWorkerPool._grow) …
        self.sent: float | None = None  # … and since when the batch it holds now is out
        self.answered = False
        self.proc: subprocess.Popen[bytes] | PassChannel = channel if channel is not None else self._spawn()
        self.thread = threading.Thread(target=self._serve, name=f"pagework-{number}", daemon=True)
        self.thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # The crawl's own import path, as multiprocessing's spawn passes it on; -P keeps the working directory
        # (a `reports` folder there, say) from shadowing a package. stderr is the crawl's: tracebacks reach its log.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.answered = False
        return subprocess.Popen(WORKER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def _hello(self) -> bool:
        try:
            write_frame(self.proc.stdin, self.pool.hello)  # type: ignore[arg-type]
            return True
        except OSError:
            return False

    def _serve(self) -> None:
        alive = self._hello()
        batch: Batch | None = None  # a batch that never reached a process is kept for the next one
        while batch is not None or (batch := self.pool.batches.get()) is not None:
            answers, delivered = None, False
            if alive:
                self.sent = sent = time.monotonic()
                try:
                    write_frame(self.proc.stdin, pickle.dumps([item for item, _ in batch], pickle.HIGHEST_PROTOCOL))  # type: ignore[arg-type]
                    delivered = True
                    frame = read_frame(self.proc.stdout)  # type: ignore[arg-type]
                    answers = pickle.loads(frame) if frame is not None else None
                except OSError:
                    answers = None
                self.sent = None  # before the sum: a reader in between undercounts, never counts a batch twice
                self.busy += time.monotonic() - sent
            if answers is None:  # died before or while holding this batch
                code = self.proc.wait()
                self.failed_starts = 0 if self.answered else self.failed_starts + 1
                if self.failed_starts >= 2:  # it cannot start (see its traceback in the crawl log): stop trying
                    log.error("a page-work process cannot start (exit %s, twice in a row)", code)
                    self.pool.retire(batch, PageWorkerDied(
                        f"page-work processes cannot start (exit {code}; their error is in the crawl log)", fatal=True))
                    return
                what = "the pass's page work stopped" if isinstance(self.proc, PassChannel) else \
                    f"a page-work process died (exit {code})"
                if delivered:  # it may have been what killed the process: not tried again, its pages fail
                    log.error("%s; its %d pages in flight are not stored, starting a page-work process", what,
                              len(batch))
                    _deliver(batch, PageWorkerDied(f"{what}; nothing was stored"))
                    batch = None
                else:  # the pipe was broken before the batch went in: the next process gets it, nothing is lost
                    log.error("%s before it got its next %d pages; starting a page-work process for them", what,
                              len(batch))
                self.proc = self._spawn()
                alive = self._hello()
                continue
            self.answered = True
            _deliver(batch, answers)
            batch = None
        self._stop()

    def _stop(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class PageWorkerPool:
    """Page-work processes for one run; a dead worker is replaced (its pages in flight are reported as errors by
    the caller, nothing half-written: each page is one transaction)."""

    def __init__(self, config: Config, run_id: int, first_run: bool, processes: int, start: int | None = None,
                 channel: PassChannel | None = None):
        """`processes` workers at most; `start` of them now (all by default), the others only while batches queue
        behind busy workers (see _grow). With the pass's `channel`, the first worker is the pass process itself
        (monitor.pageserve says why) and one process fewer is started."""
        # Without the watchlist: each FetchResult carries its watch (the crawl looks it up), and a copy per process
        # would grow with the watchlist (≈ 20 MB a process at 50,000 watches) and slow every worker's start.
        self.hello = pickle.dumps((config.without_watchlist(), run_id, first_run), pickle.HIGHEST_PROTOCOL)
        self.batches: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        self.processes = processes
        self.lock = threading.Lock()
        self.broken: PageWorkerDied | None = None  # set when no worker is left: every batch fails with it
        # Started now: a worker imports for ≈ 0.5 s before its first page, and started here the imports overlap
        # Scrapy's start-up and the robots.txt fetch.
        count = max(1, min(processes, start or processes))
        self.workers = [_Worker(self, n, channel if n == 0 else None) for n in range(count)]
        self.serving = len(self.workers)
        self.window: tuple[float, float] | None = None  # (when, the workers' busy seconds then): see _grow
        self._pending: Batch = []
        self._pending_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self.batches_sent = 0

    async def process(self, item: FetchResult) -> PageOutcome:
        """The outcome of one page's work; raises its error (PageWorkerDied if its worker died)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[PageOutcome] = loop.create_future()
        if self._pending and self._pending[0][1][0] is not loop:
            self._flush()  # a batch's pages share one loop
        self._pending.append((item, (loop, fut)))
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
            with self.lock:
                if self.broken is None:
                    self.batches.put(batch)  # never blocks the reactor: the worker threads do the pipe writes
                    self._grow()
                    return
            _settle(batch, self.broken)

    @staticmethod
    def _busy(worker: _Worker, now: float) -> float:
        """A worker's busy seconds up to `now`, the batch it holds included: a batch of new pages can take longer
        than the window, and counted only when answered it made a busy worker look idle (BENCHMARKS.md)."""
        sent = worker.sent
        return worker.busy + (now - sent if sent is not None else 0.0)

    def _grow(self) -> None:
        """Start one more worker (up to `processes`) when the running ones have been busy nearly all the time for
        the last `GROW_WINDOW` seconds. Why: on an unchanged night one worker keeps up with the crawl (a 304 or a
        noise-only page is under a millisecond of work; it is busy a fifth of the time) and each more costs
        ≈ 50 MB for the whole crawl; a first pass or a night of many edits keeps it busy and gets every core
        within a second. Busy means between sending a batch and reading its answer; a worker still importing
        has not started counting."""
        if len(self.workers) >= self.processes or not all(w.answered for w in self.workers):
            return
        now = time.monotonic()
        busy = sum(self._busy(w, now) for w in self.workers)
        if self.window is None:
            self.window = (now, busy)
            return
        since, busy_then = self.window
        if now - since < GROW_WINDOW:
            return
        self.window = (now, busy)
        load = (busy - busy_then) / ((now - since) * len(self.workers))
        if load < GROW_BUSY:
            return
        log.info("page work is behind (its processes busy %.0f%% of the last %.1f s): starting page-work process "
                 "%d of at most %d", 100 * load, now - since, len(self.workers) + 1, self.processes)
        self.workers.append(_Worker(self, len(self.workers)))
        self.serving += 1
        self.window = None

    def retire(self, batch: Batch, error: PageWorkerDied) -> None:
        """A worker thread gives up (its process cannot start); the last one fails every batch still queued."""
        _deliver(batch, error)
        with self.lock:
            self.serving -= 1
            if self.serving:
                return
            self.broken = error
        while True:
            try:
                queued = self.batches.get_nowait()
            except queue.Empty:
                return
            if queued is not None:
                _deliver(queued, error)

    def pids(self) -> list[int]:
        """The page-work processes this crawl started and that are running (not the pass)."""
        return [w.proc.pid for w in self.workers if not isinstance(w.proc, PassChannel) and w.proc.poll() is None]

    def spawned(self) -> int:
        """How many page-work processes serve now (the pass's page work not counted)."""
        return sum(1 for w in self.workers if not isinstance(w.proc, PassChannel))

    def shutdown(self) -> None:
        """After the last page: each worker finishes its batch, then its process exits (stdin closed)."""
        self._flush()
        for _ in self.workers:
            self.batches.put(None)
        for w in self.workers:
            w.thread.join()
