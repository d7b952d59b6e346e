"""Facts: the literal strings a consultant acts on (fees, dates, codes, caps, durations).

Why literal strings: a change record says "$155 → $230" exactly as the page wrote it, so a reader can find it
on the page; types let the report say *what kind* of fact moved ("fee", "exemption code").
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

MONTHS = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
NUMWORD = (
    r"(?:\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|eighteen|"
    r"twenty-four|thirty|sixty|ninety)"
)
_PATTERNS: list[tuple[str, str]] = [
    (
        "date",
        rf"\b{MONTHS}\s+\d{{1,2}},\s+\d{{4}}\b|\b\d{{1,2}}\s+{MONTHS}\s+\d{{4}}\b|"
        rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b{MONTHS}\s+\d{{4}}\b",
    ),
    ("fee", r"(?:CAN|CA|C)?\$\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{2})?"),
    ("percentage", r"\b\d+(?:\.\d+)?\s?(?:%|per\s?cent\b)"),
    (
        "duration",
        rf"\b(?:[Uu]p to\s+)?{NUMWORD}\s+(?:business\s+|calendar\s+)?"
        r"(?:years?|months?|weeks?|days?|hours?)\b",
    ),
    ("teer", r"\bTEER\s+(?:categor(?:y|ies)\s+)?[0-5](?:\s*(?:,|or|and|to|–|-)\s*[0-5])*"),
    ("noc", r"\bNOC\s+(?:code\s+)?\d{4,5}\b"),
    ("exemption_code", r"\b[ACFRT]\d{2}\b"),
    (
        "count",
        r"\b\d{1,3}(?:,\d{3})+\b|\b\d+(?=\s+(?:applications|invitations|work "
        r"permits|permits|participants|candidates|employers|spots)\b)",
    ),
]
_COMBINED = re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in _PATTERNS))

#: Names used in summaries ("fee $155 → $230").
FACT_LABELS = {
    "date": "date",
    "fee": "fee",
    "percentage": "percentage",
    "duration": "duration",
    "teer": "TEER",
    "noc": "NOC code",
    "exemption_code": "exemption code",
    "count": "number",
    "record": "record",
}


#: Every fact holds a digit or "$", except durations written in words ("two years"), which hold a unit word.
#: Both searches run in C over a line; most lines of a page have neither, and skip the full pattern.
_MAYBE = re.compile(r"[\d$]")
_UNIT = re.compile(r"years?|months?|weeks?|days?|hours?")


def extract_facts(text: str) -> list[dict[str, str]]:
    """Every fact in `text`, in order, as {"type", "value"} with the value exactly as written.

    Facts never span blocks (the text joins blocks with newlines), so each line is scanned on its own, and
    only when a cheap search says it may hold one."""
    out = []
    for line in text.split("\n"):
        if not (_MAYBE.search(line) or _UNIT.search(line)):
            continue
        for m in _COMBINED.finditer(line):
            kind = m.lastgroup or "count"
            out.append({"type": kind, "value": m.group(0).strip()})
    return out


def _counter(facts: list[dict[str, str]]) -> Counter[tuple[str, str]]:
    return Counter((f["type"], f["value"]) for f in facts)


def compare_facts(
    before: list[dict[str, str]], after: list[dict[str, str]], section: list[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Facts removed, added, and changed (one removed and one added of the same type in the same place)."""
    b, a = _counter(before), _counter(after)
    removed = list((b - a).elements())
    added = list((a - b).elements())
    changed: list[dict[str, Any]] = []
    by_type_r: dict[str, list[str]] = {}
    by_type_a: dict[str, list[str]] = {}
    for t, v in removed:
        by_type_r.setdefault(t, []).append(v)
    for t, v in added:
        by_type_a.setdefault(t, []).append(v)
    for t in list(by_type_r):
        if len(by_type_r[t]) == 1 and len(by_type_a.get(t, [])) == 1:
            changed.append({"type": t, "before": by_type_r[t][0], "after": by_type_a[t][0]})
            removed.remove((t, by_type_r[t][0]))
            added.remove((t, by_type_a[t][0]))
    extra = {"section": section} if section else {}
    return {
        "added": [{"type": t, "value": v, **extra} for t, v in added],
        "removed": [{"type": t, "value": v, **extra} for t, v in removed],
        "changed": [{**c, **extra} for c in changed],
    }


def merge_fact_changes(parts: list[dict[str, list[dict[str, Any]]]]) -> dict[str, list[dict[str, Any]]]:
    merged: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": []}
    for p in parts:
        for k in merged:
            merged[k].extend(p.get(k, []))
    return merged


def describe_fact_change(c: dict[str, Any]) -> str:
    label = FACT_LABELS.get(c["type"], c["type"])
    if "before" in c:
        return f"{label} {c['before']} → {c['after']}"
    return f"{label} {c['value']}"
