"""The page-work side of the page-work pipe: read batches of FetchResults, answer each with (outcome, error,
traceback), in order. Served by a page-work process (`crawler.pageworker`, started by the crawl) and, during a pass,
by a thread of the pass process itself (`PassPageWork`).

Why the pass serves page work too: while the crawl runs, the pass process only waits, yet it holds what a page-work
process spends most of its memory on — the interpreter, SQLAlchemy and storage, the config (≈ 50 MB of its ≈ 57).
Serving the crawl's first page-work channel from that process saves a whole process on every night (≈ 55 MB of the
tree's peak on a first pass; BENCHMARKS.md "Session 9"). The crawl still starts processes of its own when page work
falls behind, and if the pass's channel breaks it starts one in its place, so nothing depends on it.

The protocol (monitor.frames): first the arguments (the config without its watchlist, the run id, whether this is
the first run), then batches; each result is its own transaction (monitor.pagework.PageWork), so a batch only
shares the trip.
"""
from __future__ import annotations

import os
import pickle
import threading
import traceback
from typing import BinaryIO

from monitor.frames import close_quietly, read_frame, write_frame
from storage.db import StorageError, describe_error, is_fatal_storage_error

Answer = tuple[object | None, BaseException | None, str | None]  # (PageOutcome, error, its traceback)


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


def serve(requests: BinaryIO, answers: BinaryIO) -> int:
    """Answer batches until the crawl closes `requests` (or stops reading the answers); returns an exit status."""
    first = read_frame(requests)
    if first is None:
        return 0
    from monitor.pagework import PageWork  # imported once there is work: the pass imports it only for a crawl
    from storage import open_database

    config, run_id, first_run = pickle.loads(first)
    db = open_database(config.storage_url, migrate=False)
    try:
        work = PageWork(db, config, run_id, first_run=first_run)
        while (frame := read_frame(requests)) is not None:
            batch = pickle.loads(frame)
            try:
                write_frame(answers, pickle.dumps([_answer(work, item) for item in batch], pickle.HIGHEST_PROTOCOL))
            except BrokenPipeError:  # the crawl process is gone
                return 0
    finally:
        db.dispose()
    return 0


class PassPageWork:
    """The pass process's page-work channel for its crawl: two pipes and a thread running `serve`.

    Usage: `fds` go to the crawl (`POLICYWATCH_PAGE_WORK_FDS`, inherited with `pass_fds`), `started()` once the
    crawl process exists (closes this process's copies of the crawl's ends, so the thread sees the end of the
    requests when the crawl exits, however it exits), `join()` after the crawl. An error in the thread (the database
    cannot be opened, say) closes the channel: the crawl then starts a page-work process in its place, which
    reports the error in the crawl log as any page-work process does."""

    def __init__(self) -> None:
        req_r, self._req_w = os.pipe()  # the crawl writes batches to _req_w …
        self._ans_r, ans_w = os.pipe()  # … and reads the answers from _ans_r
        self.fds = (self._req_w, self._ans_r)
        self._requests, self._answers = os.fdopen(req_r, "rb"), os.fdopen(ans_w, "wb")
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="pass-pagework", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            serve(self._requests, self._answers)
        except BaseException as exc:  # kept for the pass (and the crawl restarts the work in a process of its own)
            self.error = exc
        finally:
            close_quietly(self._requests, self._answers)

    def started(self) -> None:
        """The crawl holds its ends now: drop ours (also when the crawl could not start)."""
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def join(self, timeout: float = 60.0) -> None:
        """Wait for the last page's transaction: the crawl has exited, so the requests pipe is at its end."""
        self.thread.join(timeout)
