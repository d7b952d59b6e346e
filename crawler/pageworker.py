"""The page-work process: `python -P -m crawler.pageworker`, started by crawler.workers.PageWorkerPool.

It speaks length-prefixed pickles on stdin/stdout: first its arguments (the config without the watchlist, the run
id, whether this is the first run), then batches of FetchResults, each answered with one (outcome, error,
traceback) per result, in order. Each result is its own transaction (`monitor.pagework.PageWork`), so a batch only
shares the trip. It imports the page work and storage, never Scrapy.

It ignores SIGINT/SIGTERM (the crawl process owns shutdown: it drains the batches, then closes stdin) and exits
when stdin closes or within half a second of the crawl process dying (kill -9), so it never lingers as an orphan.
"""
from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import traceback

from crawler.frames import read_frame, write_frame
from storage.db import StorageError, describe_error, is_fatal_storage_error

Answer = tuple[object | None, BaseException | None, str | None]  # (PageOutcome, error, its traceback)


def _exit_with_parent(parent: int) -> None:
    """Poll the parent pid: when the crawl process is gone (we were re-parented), stop at once, even mid-batch."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(70)


def _answer(work, item) -> Answer:
    try:
        return work.process(item), None, None
    except Exception as exc:
        if is_fatal_storage_error(exc):
            # Described here: the error chain (SQLite's own rollback on a full disk raises a follow-up error with
            # the real one as its context) does not survive the trip back to the crawl process.
            err = StorageError(describe_error(exc))
            err.fatal = True
            exc = err
        tb = "".join(traceback.format_exception(exc))
        try:
            pickle.dumps(exc)
        except Exception:  # an error that cannot cross the pipe still reaches the log, as text
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        return None, exc, tb


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must never corrupt the answers
    first = read_frame(requests)
    if first is None:
        return 0
    from monitor.pagework import PageWork
    from storage import open_database

    config, run_id, first_run = pickle.loads(first)
    work = PageWork(open_database(config.storage_url, migrate=False), config, run_id, first_run=first_run)
    while (frame := read_frame(requests)) is not None:
        batch = pickle.loads(frame)
        try:
            write_frame(answers, pickle.dumps([_answer(work, item) for item in batch], pickle.HIGHEST_PROTOCOL))
        except BrokenPipeError:  # the crawl process is gone
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
