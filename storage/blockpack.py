"""A version's blocks stored without their text, which `versions.text` already holds line by line.

Why: `versions.text` stays plain for analysts' SQL, and it is exactly the blocks' texts joined by newlines (block
text is whitespace-normalised, so it never contains one). Storing each block's text a second time inside the
compressed `blocks` column was ≈ 20 % of the history database (bench/bench_storage.py); without it, `blocks`
keeps only the structure — kind, section path, links, images — and the text is put back on read.

Stored form: `{"textless": 1, "blocks": [...]}`, where a block with empty text (an image alone) keeps `"text": ""`
and every other block has no `text` key: it takes the next line of `versions.text`. Anything else (JSON records,
blocks written before this format) is stored and read as it is.
"""
from __future__ import annotations

from typing import Any

MARK = "textless"


def strip(blocks: Any, text: str) -> Any:
    """The stored form of `blocks` given the version's `text`; `blocks` unchanged when they cannot be rebuilt
    from it exactly (then nothing is lost, only not saved)."""
    if not isinstance(blocks, list):
        return blocks
    texts = [b.get("text", "") for b in blocks]
    if any("\n" in t for t in texts) or "\n".join(t for t in texts if t) != text:
        return blocks
    out = []
    for b in blocks:
        rest = {k: v for k, v in b.items() if k != "text"}
        if not b.get("text"):
            rest["text"] = ""
        out.append(rest)
    return {MARK: 1, "blocks": out}


def restore(stored: Any, text: str | None) -> Any:
    """The blocks as extracted, from their stored form and the version's text."""
    if not (isinstance(stored, dict) and stored.get(MARK) == 1):
        return stored
    lines = iter(text.split("\n")) if text else iter(())
    out = []
    for b in stored["blocks"]:
        t = b["text"] if "text" in b else next(lines, "")
        block = {"kind": b.get("kind"), "section": b.get("section", []), "text": t}
        block.update({k: v for k, v in b.items() if k not in ("kind", "section", "text")})
        out.append(block)
    return out
