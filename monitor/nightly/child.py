"""The command line of policywatch's own Python child processes (the daemon's pass, the pass's crawl), in one
place so they all start the same way."""

from __future__ import annotations

import sys


def python_module(module: str) -> list[str]:
    """`python -P -m <module>` with this interpreter. Why -P: `-m` would put the working directory — the
    user's, which holds the config and the reports — first on sys.path, where any folder could shadow a module
    the child imports (Scrapy's own, a dependency's)."""
    return [sys.executable, "-P", "-m", module]
