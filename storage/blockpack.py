"""A version's blocks stored without their text, which `versions.text` already holds line by line.

Why: `versions.text` stays plain for analysts' SQL, and it is exactly the blocks' texts joined by newlines
(block text is whitespace-normalised, so it never contains one). Storing each block's text a second time
inside the compressed `blocks` column was a fifth of the history database (BENCHMARKS.md); without it,
`blocks` keeps only the structure — kind, section path, links, images — and the text is put back on read.

Stored forms (`restore` reads both; `strip` writes the second):
- `{"textless": 1, "blocks": [...]}` (release 0003): each block without its text; a block with empty text (an
  image alone) keeps `"text": ""`, every other block takes the next line of `versions.text`.
- `{"textless": 2, "kinds": [...], "paths": [...], "at": [...], "empty": [...], "extra": {...}}`: the same, by
  column — each block's kind, the index of its section path in `paths` (a page has a few distinct paths and
  hundreds of blocks), the indices of blocks with empty text, and `extra[str(i)]` holding block i's other keys
  (links, images). Why columns: serializing hundreds of small dicts was a tenth of a new page's CPU cost.
Anything else (JSON records, blocks written before 0003) is stored and read as it is.
"""

from __future__ import annotations

from typing import Any

MARK = "textless"
_BASE = ("kind", "section", "text")


def is_textless(stored: Any) -> bool:
    """Whether `stored` is one of this module's forms (needs `versions.text` to be read back)."""
    return isinstance(stored, dict) and stored.get(MARK) in (1, 2)


def strip(blocks: Any, text: str) -> Any:
    """The stored form of `blocks` given the version's `text`; `blocks` unchanged when they cannot be rebuilt
    from it exactly (then nothing is lost, only not saved)."""
    if not isinstance(blocks, list):
        return blocks
    kinds: list[Any] = []
    at: list[int] = []
    empty: list[int] = []
    extra: dict[str, dict[str, Any]] = {}
    paths: list[list[str]] = []
    by_id: dict[int, int] = {}  # blocks under one heading share one section list: look it up once
    by_value: dict[tuple[str, ...], int] = {}
    texts: list[str] = []
    for i, b in enumerate(blocks):
        if not isinstance(b, dict) or "kind" not in b or "section" not in b or "text" not in b:
            return blocks  # not the extractor's shape: kept whole
        t = b["text"]
        if not isinstance(t, str) or "\n" in t:
            return blocks
        sec = b["section"]
        idx = by_id.get(id(sec))
        if idx is None:
            key = tuple(sec)
            idx = by_value.get(key)
            if idx is None:
                idx = by_value[key] = len(paths)
                paths.append(list(sec))
            by_id[id(sec)] = idx
        kinds.append(b["kind"])
        at.append(idx)
        if t:
            texts.append(t)
        else:
            empty.append(i)
        if len(b) > 3:
            extra[str(i)] = {k: v for k, v in b.items() if k not in _BASE}
    if "\n".join(texts) != text:
        return blocks
    return {MARK: 2, "kinds": kinds, "paths": paths, "at": at, "empty": empty, "extra": extra}


def restore(stored: Any, text: str | None) -> Any:
    """The blocks as extracted, from their stored form and the version's text."""
    if not is_textless(stored):
        return stored
    lines = iter(text.split("\n")) if text else iter(())
    out = []
    if stored[MARK] == 1:
        for b in stored["blocks"]:
            t = b["text"] if "text" in b else next(lines, "")
            block = {"kind": b.get("kind"), "section": b.get("section", []), "text": t}
            block.update({k: v for k, v in b.items() if k not in _BASE})
            out.append(block)
        return out
    paths, empty, extra = stored["paths"], set(stored["empty"]), stored["extra"]
    for i, (kind, idx) in enumerate(zip(stored["kinds"], stored["at"], strict=False)):
        block = {"kind": kind, "section": list(paths[idx]), "text": "" if i in empty else next(lines, "")}
        more = extra.get(str(i))
        if more:
            block.update(more)
        out.append(block)
    return out
