"""The page-work process: `python -P -m crawler.pageworker`, started by crawler.workers.PageWorkerPool.

It serves the page-work pipe (`monitor.pageserve`: its arguments, then batches of FetchResults, each answered in
order) on its stdin and stdout. It imports the page work and storage, never Scrapy.

It ignores SIGINT/SIGTERM (the crawl process owns shutdown: it drains the batches, then closes stdin) and exits
when stdin closes or within half a second of the crawl process dying (kill -9), so it never lingers as an orphan.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

from monitor.pageserve import serve


def _exit_with_parent(parent: int) -> None:
    """Poll the parent pid: when the crawl process is gone (we were re-parented), stop at once, even mid-batch."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(70)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must never corrupt the answers
    return serve(requests, answers)


if __name__ == "__main__":
    sys.exit(main())
