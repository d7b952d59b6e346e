"""Scraped text made inert for readers: bidirectional controls that would reorder what a reader sees.

Why: U+202E (right-to-left override) and its kin make "gpj.exe" read as "exe.jpg" and can hide or reorder a
fee or a date in a page title. Real Arabic or Hebrew text needs none of them (the Unicode algorithm orders it
by itself), so every report, feed, digest and site page drops them.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

#: U+202A–U+202E (embeddings and overrides) and U+2066–U+2069 (isolates).
BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def neutralize_bidi(text: str) -> str:
    return text.translate(BIDI_CONTROLS) if text else text


def finalize(value: Any) -> Any:
    """Jinja2's `finalize`: every value a template prints, escaped markup included."""
    if isinstance(value, Markup):
        return Markup(str(value).translate(BIDI_CONTROLS))
    if isinstance(value, str):
        return value.translate(BIDI_CONTROLS)
    return value


def clip_words(text: str, n: int) -> str:
    """`text` whole, or cut at a word to at most `n` characters with "…": never mid-word."""
    text = " ".join(text.split())
    if len(text) <= n:
        return text
    cut = text[: n - 1]
    space = cut.rfind(" ")
    if text[n - 1] != " " and space > n // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:–—-") + "…"
