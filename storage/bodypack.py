"""Raw bodies compressed against a per-host dictionary: the site's page template.

Why: every canada.ca page carries the same GCWeb template (header, menus, footer: 15–25 KB), and zlib on its
own cannot see that one page's template is the next page's. Compressing each body with a preset dictionary
made from the first stored page of its host (the bytes outside `<main>`) lets zlib point at the template
instead of storing it again: real canada.ca captures shrink to roughly half their plain-zlib size (measured in
bench/bench_storage.py). The dictionary is stored once per host (`body_dicts`) and a body names the one it was
compressed with (`bodies.dict_id`; NULL = plain zlib), so bodies stay independently readable forever.

zlib reads at most the last 32 KB of a dictionary, and the bytes nearest its end match best at the start of a
page, so the dictionary is the template's footer followed by its header.
"""

from __future__ import annotations

import re
import zlib

LEVEL = 6
DICT_MAX = 32 * 1024
_MAIN_OPEN = re.compile(rb"<main\b", re.I)
_MAIN_CLOSE = re.compile(rb"</main\s*>", re.I)


def main_span(body: bytes) -> tuple[int, int] | None:
    """Byte offsets of `<main …>` … the last `</main>` in an HTML body, found without parsing; None without
    one. (Also what monitor.pagework fingerprints to skip parsing on furniture-only nights.)"""
    start = _MAIN_OPEN.search(body)
    if start is None:
        return None
    ends = list(_MAIN_CLOSE.finditer(body, start.start()))
    return (start.start(), ends[-1].end()) if ends else None


def make_dictionary(body: bytes) -> bytes | None:
    """The page template of an HTML body (the bytes outside <main>…</main>), or None when there is no <main>
    (JSON, other sites): such bodies are stored with plain zlib."""
    span = main_span(body)
    if span is None:
        return None
    head, tail = body[: span[0]], body[span[1] :]
    if len(head) + len(tail) < 1024:  # no template worth sharing
        return None
    return (tail[: DICT_MAX // 4] + head)[-DICT_MAX:]


def pack(data: bytes, zdict: bytes | None = None) -> bytes:
    c = zlib.compressobj(LEVEL, zdict=zdict) if zdict else zlib.compressobj(LEVEL)
    return c.compress(data) + c.flush()


def unpack(blob: bytes, zdict: bytes | None = None) -> bytes:
    d = zlib.decompressobj(zdict=zdict) if zdict else zlib.decompressobj()
    return d.decompress(blob) + d.flush()
