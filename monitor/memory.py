"""Hand freed memory back to the operating system, after a process drops something large for good.

Why: CPython keeps what it frees. Parsing a 50,000-watch config and dropping it again left the crawl process ≈ 14 MB
larger for the whole night (pymalloc arenas and the C heap keep their pages), and the peak of the process tree is
what a nightly run is sized by. glibc's `malloc_trim(0)` returns the free pages of every heap (not only its top);
elsewhere (macOS, musl) this does nothing, and nothing depends on it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys


def give_back_free_memory() -> None:
    """Collect garbage, then return free heap pages to the OS (glibc only; otherwise just the collection)."""
    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
