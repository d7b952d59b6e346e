"""Text normalization: the same words must hash the same whatever the whitespace or Unicode form."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_ZERO_WIDTH_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_ZERO_WIDTH = dict.fromkeys(map(ord, _ZERO_WIDTH_CHARS), None)
_WS = re.compile(r"\s+")


def element_text(el: Any) -> str:
    """All the text of an element and its descendants, as written (an lxml element)."""
    return "".join(el.itertext())


def normalize_text(text: str) -> str:
    """NFKC (folds no-break spaces and compatibility forms), zero-width characters dropped, whitespace
    collapsed."""
    if not text.isascii():  # ASCII is already in normal form: skip the costly steps (most canada.ca text)
        text = unicodedata.normalize("NFKC", text)
        if any(c in text for c in _ZERO_WIDTH_CHARS):  # rare: the translation is the slow part
            text = text.translate(_ZERO_WIDTH)
    return " ".join(text.split())
