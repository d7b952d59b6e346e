"""Structured diff of two block sequences: blocks added, removed, moved and changed, with section paths.

Why blocks and not lines: a consultant needs "in *Eligibility*, this list item was added", not a line
number. Matching uses difflib's SequenceMatcher over whole blocks (a block's identity is its kind, text, links
and images), then pairs similar blocks inside replaced runs as "changed" with a word-level inline diff.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Any

from policywatch.monitor.detection.facts import compare_facts, extract_facts

PAIR_THRESHOLD = 0.5  # two blocks at least this similar are "changed", not "removed + added"
_TOKENS = re.compile(r"\s+|[^\s]+")


#: Markup-only edits are not changes: text in a bare <div> and the same text in a <p> are one paragraph.
_KIND_CLASS = {"text": "p", "address": "p", "blockquote": "p", "pre": "p"}


def kind_class(kind: str | None) -> str | None:
    return _KIND_CLASS.get(kind, kind) if kind else kind


def block_key(block: dict[str, Any]) -> tuple[Any, ...]:
    images = tuple((i.get("src"), i.get("alt")) for i in block.get("images", []))
    return (kind_class(block.get("kind")), block.get("text"), tuple(block.get("links", [])), images)


def _common_ends(a: list, b: list) -> tuple[int, int]:
    """Lengths of the common prefix and suffix (not overlapping): the matcher only needs the middle."""
    n = min(len(a), len(b))
    pre = 0
    while pre < n and a[pre] == b[pre]:
        pre += 1
    suf = 0
    while suf < n - pre and a[-1 - suf] == b[-1 - suf]:
        suf += 1
    return pre, suf


def _opcodes(a: list, b: list) -> list[tuple[str, int, int, int, int]]:
    """difflib opcodes over a and b, computed on the differing middle only (pages change locally)."""
    pre, suf = _common_ends(a, b)
    ops: list[tuple[str, int, int, int, int]] = [("equal", 0, pre, 0, pre)] if pre else []
    mid = SequenceMatcher(None, a[pre : len(a) - suf], b[pre : len(b) - suf], autojunk=False).get_opcodes()
    ops += [(t, i1 + pre, i2 + pre, j1 + pre, j2 + pre) for t, i1, i2, j1, j2 in mid if i2 > i1 or j2 > j1]
    if suf:
        ops.append(("equal", len(a) - suf, len(a), len(b) - suf, len(b)))
    return ops


def inline_diff(before: str, after: str) -> list[list[str]]:
    """Word-level diff as [op, text] segments, op in equal | del | ins."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    out: list[list[str]] = []
    for tag, i1, i2, j1, j2 in _opcodes(a, b):
        if tag == "equal":
            out.append(["equal", "".join(a[i1:i2])])
            continue
        if i2 > i1:
            out.append(["del", "".join(a[i1:i2])])
        if j2 > j1:
            out.append(["ins", "".join(b[j1:j2])])
    return out


def _similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    if kind_class(a.get("kind")) != kind_class(b.get("kind")):
        return 0.0
    if a.get("text") == b.get("text"):
        return 1.0  # same words, other link or image
    return SequenceMatcher(None, a.get("text", "").split(), b.get("text", "").split(), autojunk=False).ratio()


def _entry(op: str, block: dict[str, Any], index: int) -> dict[str, Any]:
    e = {
        "op": op,
        "kind": block.get("kind"),
        "section": block.get("section", []),
        "text": block.get("text", ""),
        "index": index,
    }
    for extra in ("links", "images", "notice"):
        if block.get(extra):
            e[extra] = block[extra]
    return e


def diff_blocks(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Operations that turn `old` into `new`, in the new page's reading order.

    1. SequenceMatcher over block identities finds what stayed; 2. a removed block identical to an added one
    was moved; 3. the remaining removed/added blocks are paired by word similarity (same kind, same section
    preferred) into "changed" blocks; 4. what is left was removed or added.
    """
    ok, nk = [block_key(b) for b in old], [block_key(b) for b in new]
    removed: list[tuple[int, float]] = []  # (old index, position in the new order)
    added: list[int] = []
    for tag, i1, i2, j1, j2 in _opcodes(ok, nk):
        if tag == "equal":
            continue
        removed.extend((i, j1 - 0.5 + (i - i1) * 1e-3) for i in range(i1, i2))
        added.extend(range(j1, j2))
    ops: list[tuple[float, dict[str, Any]]] = []
    still_added = _moved(old, new, ok, nk, removed, added, ops)
    used_old, used_new = _changed(old, new, removed, still_added, ops)
    for oi, pos in removed:  # 4. what is left
        if oi not in used_old:
            ops.append((pos, _alone("removed", old[oi], oi)))
    for nj in still_added:
        if nj not in used_new:
            ops.append((nj, _alone("added", new[nj], nj)))
    ops.sort(key=lambda pe: pe[0])
    return [e for _, e in ops]


def _moved(
    old: list[dict[str, Any]],
    new: list[dict[str, Any]],
    ok: list[tuple[Any, ...]],
    nk: list[tuple[Any, ...]],
    removed: list[tuple[int, float]],
    added: list[int],
    ops: list[tuple[float, dict[str, Any]]],
) -> list[int]:
    """2. An identical block removed here and added there was moved (taken out of `removed`); returns the
    added blocks that were not."""
    by_key: dict[tuple[Any, ...], list[tuple[int, float]]] = {}
    for oi, pos in removed:
        by_key.setdefault(ok[oi], []).append((oi, pos))
    still_added = []
    for nj in added:
        if by_key.get(nk[nj]):
            oi, pos = by_key[nk[nj]].pop(0)
            removed.remove((oi, pos))
            e = _entry("moved", new[nj], nj)
            e["section_before"] = old[oi].get("section", [])
            ops.append((nj, e))
        else:
            still_added.append(nj)
    return still_added


def _changed(
    old: list[dict[str, Any]],
    new: list[dict[str, Any]],
    removed: list[tuple[int, float]],
    added: list[int],
    ops: list[tuple[float, dict[str, Any]]],
) -> tuple[set[int], set[int]]:
    """3. A removed and an added block alike enough are one block changed: best-scoring pairs first (the same
    section preferred, then the nearest). Returns the old and new indexes paired."""
    candidates = []
    for oi, pos in removed:
        for nj in added:
            score = _similarity(old[oi], new[nj])
            if score >= PAIR_THRESHOLD:
                same_section = old[oi].get("section") == new[nj].get("section")
                candidates.append((score + (0.25 if same_section else 0.0), -abs(pos - nj), oi, pos, nj))
    candidates.sort(reverse=True)
    used_old: set[int] = set()
    used_new: set[int] = set()
    for _score, _dist, oi, _pos, nj in candidates:
        if oi in used_old or nj in used_new:
            continue
        used_old.add(oi)
        used_new.add(nj)
        e = _entry("changed", new[nj], nj)
        e["before"] = old[oi].get("text", "")
        e["inline"] = inline_diff(old[oi].get("text", ""), new[nj].get("text", ""))
        for extra in ("links", "images"):
            if old[oi].get(extra) != new[nj].get(extra):
                e[f"{extra}_before"] = old[oi].get(extra, [])
        e["facts"] = compare_facts(extract_facts(e["before"]), extract_facts(e["text"]), e["section"])
        ops.append((nj, e))
    return used_old, used_new


def _alone(op: str, block: dict[str, Any], index: int) -> dict[str, Any]:
    """A block removed or added with no counterpart, with the facts it took away or brought."""
    e = _entry(op, block, index)
    facts = extract_facts(e["text"])
    if facts:
        e["facts"] = (
            compare_facts(facts, [], e["section"])
            if op == "removed"
            else compare_facts([], facts, e["section"])
        )
    return e
