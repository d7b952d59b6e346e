"""Facts: the literal strings a consultant acts on (fees, dates, codes, caps, durations).

Why literal strings: a change record says "$155 → $230" exactly as the page wrote it, so a reader can find it
on the page; types let the report say *what kind* of fact moved ("fee", "exemption code").
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

MONTHS = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
MOIS = (
    r"(?:janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|"
    r"décembre|decembre)"
)
#: A French amount: "155 $", "155,00 $", "1 050 $" (thousands apart by a space, often a no-break one).
_FR_AMOUNT = r"\b\d{1,3}(?:[ \u00a0\u202f]\d{3})*(?:,\d{2})?[ \u00a0\u202f]?\$"
NUMWORD = (
    r"(?:\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|eighteen|"
    r"twenty-four|thirty|sixty|ninety)"
)
_PATTERNS: list[tuple[str, str]] = [
    (
        "date",
        rf"\b{MONTHS}\s+\d{{1,2}},\s+\d{{4}}\b|\b\d{{1,2}}\s+{MONTHS}\s+\d{{4}}\b|"
        rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b{MONTHS}\s+\d{{4}}\b|"
        # a day without its year, as event lists and schedules write it ("Tuesday 4 February", "March 3")
        rf"\b\d{{1,2}}\s+{MONTHS}\b|\b{MONTHS}\s+\d{{1,2}}\b(?!,?\s*\d)",
    ),
    # French: "le 22 mars 2024", "1er avril 2024", "mars 2024"
    ("date_fr", rf"\b\d{{1,2}}(?:er)?\s+{MOIS}\s+\d{{4}}\b|\b{MOIS}\s+\d{{4}}\b"),
    (
        "wage_fr",
        _FR_AMOUNT + r"(?=\s*(?:(?:par|de l'|/)\s*(?:heure|h|an|année|annee|semaine|mois)\b|l'heure\b))",
    ),
    ("fee_fr", _FR_AMOUNT),
    (
        "wage",
        r"(?:CAN|CA|C)?\$\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{2})?"
        r"(?=\s*(?:(?:per|an?|/)\s*(?:hour|hr|year|yr|annum|week|month)\b|hourly\b|annually\b))",
    ),
    ("fee", r"(?:CAN|CA|C)?\$\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{2})?"),
    ("form", r"\bIMM\s?\d{4}[A-Z]?\b"),
    ("language", r"\b(?:CLB|NCLC)\s+\d{1,2}\b"),
    ("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    ("percentage", r"\b\d+(?:\.\d+)?\s?(?:%|per\s?cent\b)"),
    (
        "duration",
        rf"\b(?:[Uu]p to\s+)?{NUMWORD}\s+(?:business\s+|calendar\s+)?"
        r"(?:years?|months?|weeks?|days?|hours?)\b",
    ),
    (
        "teer",
        r"\b(?:TEER|FEER)\s+(?:categor(?:y|ies)\s+|catégories?\s+)?[0-5]"
        r"(?:\s*(?:,|or|and|to|ou|et|à|–|-)\s*[0-5])*",
    ),
    ("noc", r"\b(?:NOC|CNP)\s+(?:code\s+)?\d{4,5}\b"),
    (
        "duration_fr",
        r"\b(?:[Jj]usqu'à\s+)?\d+(?:,\d+)?\s+(?:jours?\s+ouvrables|ans|années?|mois|semaines?|jours?|heures?)\b",
    ),
    ("exemption_code", r"\b[ACFRT]\d{2}\b"),
    (
        "count",
        r"\b\d{1,3}(?:,\d{3})+\b|\b\d+(?=\s+(?:(?:new\s+)?applications|invitations|work "
        r"permits|permits|participants|candidates|employers|spots|nominations|allocations|EOIs?|"
        r"expressions of interest|profiles)\b)",
    ),
    # A cap written before its number ("intake cap: 600", "a quota of 1,500"): the value is the number.
    (
        "cap",
        r"\b(?:intake|cap|quota|allocation|spots|limit)\b[^.\d$\n]{0,30}?\b\d[\d,]*\b"
        r"|\b(?:applications|EOIs?|expressions of interest|registrations|submissions|profiles|spots|"
        r"places)\s+(?:accepted|received|remaining|available|allowed|left|open)\b[^.\d$\n]{0,30}?\b\d[\d,]*\b",
    ),
]


#: Where a fact can start: at a word's start (never inside a word), on a character an alternative starts
#: with (a digit; a month, a code, a keyword's first letter), or at a "$" or "C" anywhere ("US$155").
#: Why a lookahead in front of the alternation: Python's engine otherwise tries every alternative at every
#: position of a line, inside words too; with it one test rejects most positions, and the facts found are the
#: same (every alternative but the amounts starts with `\b` and one of these characters; BENCHMARKS.md).
def _start(first_chars: str) -> str:
    # The one-character test first: Python's engine rejects most positions there, before any lookbehind.
    return rf"(?=[{first_chars}$C])(?:(?<!\w)|(?=[$C]))"


def _alternation(names: set[str] | None, french: bool) -> str:
    kinds = [
        (n, rx) for n, rx in _PATTERNS if (names is None or n in names) and (french or not n.endswith("_fr"))
    ]
    return "(?:" + "|".join(f"(?P<{name}>{rx})" for name, rx in kinds) + ")"


#: The first characters of every alternative but the e-mail address (which may start with any letter: it gets
#: a pattern of its own, for lines with an "@").
_FIRST = r"\d$ACDEFIJMNORSTUacdefijlmnopqrstu"
_ALL_KINDS = {name for name, _ in _PATTERNS}
_COMBINED = re.compile(_start(_FIRST) + _alternation(_ALL_KINDS - {"email"}, french=False))
_COMBINED_FR = re.compile(_start(_FIRST) + _alternation(_ALL_KINDS - {"email"}, french=True))
_COMBINED_AT = re.compile(_start(r"\w") + _alternation(None, french=False))
_COMBINED_AT_FR = re.compile(_start(r"\w") + _alternation(None, french=True))
#: A line that may hold a French fact ("155 $", "22 mars 2024", "212 jours", "FEER 0") shows one of these:
#: only such lines pay for the French patterns (a quarter of the scan's time on English pages otherwise), and
#: substring tests cost less than a pattern would.
_FR_MARKS = (
    *"éèàçûô",
    *(f"{space}$" for space in " \u00a0\u202f"),
    *("jours", "semaine", "mois", "FEER", "CNP"),
    *(" janvier", " mars", " avril", " mai ", " juin", " juillet", " septembre", " octobre", " novembre"),
)


_FR_MARK = re.compile("|".join(re.escape(mark) for mark in _FR_MARKS))  # one search in C, not a loop


def _patterns(line: str) -> re.Pattern[str]:
    if "@" in line:
        return _COMBINED_AT_FR if _FR_MARK.search(line) else _COMBINED_AT
    return _COMBINED_FR if _FR_MARK.search(line) else _COMBINED


#: The kinds a new page's one-line summary names (key_facts), and wages, which it must tell from fees: a
#: smaller alternation, started at fewer characters.
_KEY_KINDS = {"date", "date_fr", "wage_fr", "fee_fr", "wage", "fee", "form", "teer", "noc", "exemption_code"}
_KEY_KINDS |= {"count", "cap"}
_KEY_FIRST = r"\d$ACDEFIJMNORSTacdefijlmnopqrs"
#: How each key fact begins, once past the start test: a digit, a month, a code's letters, a cap's word; an
#: amount ("$155", "CAN$ 155") may begin inside a word. Why spelled out: each word start is then turned away
#: by a few one-letter comparisons instead of entering a dozen alternatives.
_LEADS = r"\d|Jan|Feb|Ma[ry]|Apr|Ju[nl]|Aug|Sep|Oct|Nov|Dec|IMM|TEER|FEER|NOC|CNP|[ACFRT]\d"
_CAP_LEADS = r"intake|cap|quota|allocation|spots|limit|applications|EOI|expressions|registrations|submissions"
_CAP_LEADS += r"|profiles|places"
_MOIS_LEADS = r"janv|f[ée]vr|mars|avri|mai|juin|juil|ao[ûu]t|sept|octo|nove|d[ée]ce"


def _key_start(first_chars: str, leads: str) -> str:
    return rf"(?=[{first_chars}$C])(?:(?<!\w)(?={leads})|(?=(?:CAN|CA|C)?\$))"


_KEY_CAP = re.compile(
    _key_start(_KEY_FIRST, f"{_LEADS}|{_CAP_LEADS}") + _alternation(_KEY_KINDS, french=False)
)
_KEY_FR = re.compile(
    _key_start(_KEY_FIRST, f"{_LEADS}|{_CAP_LEADS}|{_MOIS_LEADS}") + _alternation(_KEY_KINDS, french=True)
)
#: An English line with no cap word ("intake", "quota", …) cannot hold a cap: without that alternative no
#: fact starts with a lower-case letter, and the scan starts at far fewer places.
_KEY = re.compile(_key_start(r"\d$ACDFIJMNORST", _LEADS) + _alternation(_KEY_KINDS - {"cap"}, french=False))


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
    "wage": "wage",
    "form": "form",
    "email": "e-mail",
    "language": "language level",
}
#: What precedes a dollar amount that is pay, not a fee ("median hourly wage … $27").
_PAY_BEFORE = re.compile(
    r"\b(?:wages?|salary|salaries|earn\w*|income|paid at least|salaires?|rémunération|revenu)\b[^$.;]{0,25}$",
    re.I,
)
_NUMBER = re.compile(r"\d[\d,]*")
_YEAR = re.compile(r"\d{4}")


#: Every fact holds a digit or "$", except durations written in words ("two years"), which hold a unit word.
#: Both searches run in C over a line; most lines of a page have neither, and skip the full pattern.
_MAYBE = re.compile(r"[\d$@]")
_UNIT = re.compile(r"years?|months?|weeks?|days?|hours?")  # French durations always carry a digit


def extract_facts(text: str) -> list[dict[str, str]]:
    """Every fact in `text`, in order, as {"type", "value"} with the value exactly as written.

    Facts never span blocks (the text joins blocks with newlines), so each line is scanned on its own, and
    only when a cheap search says it may hold one."""
    out = []
    for line in text.split("\n"):
        if not (_MAYBE.search(line) or _UNIT.search(line)):
            continue
        for m in _patterns(line).finditer(line):
            kind = (m.lastgroup or "count").removesuffix("_fr")  # French forms are the same kinds of fact
            value = m.group(0).strip()
            if kind == "cap":
                kind, value = "count", _NUMBER.findall(value)[-1]
            elif kind == "fee" and _PAY_BEFORE.search(line, max(0, m.start() - 60), m.start()):
                kind = "wage"
            out.append({"type": kind, "value": value})
    return out


def unique_facts(facts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each (type, value) once, first occurrence kept: a page naming C88 six times has one C88."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f in facts:
        key = (f["type"], f.get("value", f.get("after", "")))
        if key not in seen:
            seen.add(key)
            out.append(f)
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
        # as many removed as added of one type, in one place: each replaced the one in its position
        # ("CLB 7 in English or NCLC 7 in French" → "CLB 8 … NCLC 8")
        if len(by_type_r[t]) == len(by_type_a.get(t, [])):
            for b_value, a_value in zip(by_type_r[t], by_type_a[t], strict=True):
                changed.append({"type": t, "before": b_value, "after": a_value})
                removed.remove((t, b_value))
                added.remove((t, a_value))
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


_MONTH_NUMBER = {
    m: i
    for i, m in enumerate(
        "January February March April May June July August September October November December".split(), 1
    )
} | {
    m: i
    for i, m in enumerate(
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split(), 1
    )
}
_UNTIL = re.compile(
    r"\b(?:until|by|before|ends?|ending|expires?|expiring|deadline|no later than"
    r"|jusqu['’]au|d['’]ici le|avant le|au plus tard le|expire le|prend fin le)\W*$",
    re.I,
)


def iso_date(value: str) -> str:
    """ "March 22, 2026" / "22 March 2026" / "22 mars 2026" → "2026-03-22"; anything else as written."""
    m = re.fullmatch(r"(\w+)\s+(\d{1,2}),\s+(\d{4})", value) or None
    if m and m.group(1) in _MONTH_NUMBER:
        return f"{m.group(3)}-{_MONTH_NUMBER[m.group(1)]:02d}-{int(m.group(2)):02d}"
    m = re.fullmatch(r"(\d{1,2})(?:er)?\s+(\w+)\s+(\d{4})", value)
    if m and m.group(2) in _MONTH_NUMBER:
        return f"{m.group(3)}-{_MONTH_NUMBER[m.group(2)]:02d}-{int(m.group(1)):02d}"
    return value


_RANGE = re.compile(r"\d\s*(?:to|à|–|-)\s*\d")


def _teer(value: str) -> str:
    digits = sorted({int(d) for d in re.findall(r"[0-5]", value.removeprefix("TEER"))})
    consecutive = digits == list(range(digits[0], digits[-1] + 1)) if digits else False
    if len(digits) > 1 and (
        consecutive and len(digits) > 2 or _RANGE.search(value)
    ):  # "0, 1, 2, 3", "0 to 3"
        return f"TEER {digits[0]}–{digits[-1]}"
    return "TEER " + ", ".join(map(str, digits))


_DIGIT = re.compile(r"\d")
#: A line with one of these words may hold a cap written before its number ("intake cap: 600").
_CAP_WORD = re.compile(
    r"intake|cap|quota|allocation|spots|limit|applications|EOI|expressions|registrations|submissions|profiles"
    r"|places"
)


def key_facts(text: str, limit: int = 6) -> list[str]:
    """A new page's key facts for its one-line summary: fees (never wages), codes, TEER, caps, dates, in that
    order, each once. Example: ["$155 fee", "C88", "TEER 0–3", "until 2026-03-22"]."""
    seen: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], int] = {}
    for line in text.split("\n"):
        if not _DIGIT.search(line):  # every key fact holds a digit
            continue
        key = _KEY_FR if _FR_MARK.search(line) else _KEY_CAP if _CAP_WORD.search(line) else _KEY
        for m in key.finditer(line):
            kind, value = (m.lastgroup or "count").removesuffix("_fr"), m.group(0).strip()
            if kind == "cap":
                kind, value = "count", _NUMBER.findall(value)[-1]
            elif kind == "fee" and _PAY_BEFORE.search(line, max(0, m.start() - 60), m.start()):
                kind = "wage"
            if kind == "fee":
                value = f"{value} fee"
            elif kind == "teer":
                value = _teer(value)
            elif kind == "date":
                if not _YEAR.search(value):  # "January 1" of which year? not a key fact
                    continue
                until = _UNTIL.search(line, max(0, m.start() - 40), m.start())
                if until:
                    kind = "until"
                value = ("until " if until else "") + iso_date(value)
            elif kind == "count":
                unit = re.match(r"\s+([A-Za-z]+)", line[m.end() :])
                if not unit:
                    continue
                value = f"{value} {unit.group(1)}"
            seen[(kind, value)] += 1
            first.setdefault((kind, value), len(first))
    ranked = sorted(seen, key=lambda k: (-seen[k], first[k]))  # the most repeated first: the page's own code
    best: dict[str, Any] = {}
    for kind, value in ranked:
        best.setdefault(kind, value)
    order = ["fee", "exemption_code", "teer", "until", "count", "noc", "form", "date"]
    out = [best[k] for k in order if k in best and not (k == "date" and "until" in best)]
    return out[:limit]
