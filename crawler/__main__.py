"""`python -m policywatch.crawler crawl watchlist …`: Scrapy's command line, as the pass's crawl child runs
it.

Why not `python -m scrapy`: when the crawl has ended (its pages stored, its report written, its database
closed, its log flushed by the exit handlers), the process leaves without tearing down every module and
object it loaded — Scrapy, Twisted, SQLAlchemy, lxml — which took longer than a hot night's run report
(BENCHMARKS.md). Its exit status is Scrapy's.
"""

from __future__ import annotations

import atexit
import os
import sys


def main() -> int:
    from scrapy.cmdline import execute

    try:
        execute(["scrapy", *sys.argv[1:]])
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    return code if isinstance(code, int) else 0 if code is None else 1


if __name__ == "__main__":
    status = main()
    atexit._run_exitfuncs()  # logging.shutdown flushes the log file; every other exit handler runs too
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
