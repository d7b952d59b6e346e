"""The command line of policywatch's own Python child processes (the daemon's pass, the pass's crawl, a cluster
worker), in one place so they all start the same way."""
from __future__ import annotations

import sys


def python_module(module: str) -> list[str]:
    """`python -P -m <module>` with this interpreter.

    Why -P (Python ≥ 3.11): `-m` would put the working directory first on sys.path, and a child runs in the user's
    directory — the one that holds the config and, after the first night, the `reports` folder (`reports.dir`
    defaults to `reports` beside the config). With an editable install (`make`, `pip install -e`) such a folder is
    imported in place of policywatch's own `reports` package, so the second night's pass failed with "cannot
    import name 'Site' from 'reports.site' (unknown location)"; a folder named `storage`, `monitor` or `crawler`
    broke the crawl the same way."""
    return [sys.executable, "-P", "-m", module]
