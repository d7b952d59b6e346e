"""What a block operation means to a consultant: its class, its significance and a headline that leads with
the fact.

Significance comes from meaning, not from the size of the edit (one rule per class; `tests/test_meaning.py`
tries each on wording from several governments' sites):

- **high**: an intake, program or portal opened, closed or paused, or "now accepting"; an intake number going
  from 0 or to 0;
- **medium**: a policy fact: an intake, cap or quota number, a fee, a date or deadline, a requirement (must,
  required, eligible, minimum, NOC, TEER, CLB, language test, credential assessment), a form's name, number or
  version, a processing time, who may represent applicants, where documents go;
- **low**: wording, typos and punctuation; site banners that come and go; navigation, links and markup.

Pure functions: no I/O, no state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any
from urllib.parse import urlsplit

from policywatch.monitor.detection.facts import FACT_LABELS, compare_facts, extract_facts
from policywatch.monitor.detection.vocab import (
    _FR_STATUS_MARKS,
    _YEARISH,
    DEADLINE,
    FACT_HEADLINE,
    INTAKE_NOUN,
    LABELS,
    POLICY_FACTS,
    POLICY_TERMS,
    RESULTS_WORDS,
    SERVICE_NOTICE,
    SITE_NOTICE,
    STATUS,
    STATUS_FR,
    UPDATE_STAMP,
)

SEVERITY = {"low": 0, "medium": 1, "high": 2}

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(“\"'0-9$])")
_WORD = re.compile(r"\w+")
HEADLINE_CHARS = 150


@dataclass(frozen=True)
class Meaning:
    cls: str  # status | <a POLICY_TERMS class> | fact | notice | wording | typo | layout
    significance: str
    headline: str
    #: The pages a new entry of a listing links to: watched from then on (the page work adds them).
    follow: tuple[str, ...] = ()

    @property
    def severity(self) -> int:
        return SEVERITY[self.significance]


def clip(text: str, n: int = HEADLINE_CHARS) -> str:
    """`text` whole, or cut at a word boundary with "…": never mid-word."""
    text = " ".join(text.split())
    if len(text) <= n:
        return text
    cut = text[: n - 1]
    space = cut.rfind(" ")
    if text[n - 1] != " " and space > n // 3:  # the cut falls inside a word: back to the word's start
        cut = cut[:space]
    return cut.rstrip(" ,;:–-") + "…"


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text) if s.strip()]


def policy_class(text: str) -> str | None:
    for cls, _label, rx in POLICY_TERMS:
        if rx.search(text):
            return cls
    return None


def _quote(text: str, n: int = HEADLINE_CHARS) -> str:
    return f"“{clip(text, n)}”"


def _inserted_spans(inline: list[list[str]]) -> tuple[str, list[tuple[int, int]], str, str, bool]:
    """The after-text, the character spans of inserted segments in it, the deleted / inserted words, and
    whether the edit is one place (one run of deletions and insertions, no equal words between)."""
    after, spans, dels, ins = "", [], [], []
    runs, in_run = 0, False
    for op, seg in inline:
        if op == "equal" and seg.strip():
            in_run = False
        elif op != "equal" and not in_run:
            runs, in_run = runs + 1, True
        if op == "equal":
            after += seg
        elif op == "ins":
            spans.append((len(after), len(after) + len(seg)))
            after += seg
            ins.append(seg)
        elif op == "del":
            dels.append(seg)
    return after, spans, " ".join(dels), " ".join(ins), runs == 1


def _sentences_touched(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, float]]:
    """Sentences of `text` that an inserted span touches, with the share of each that was inserted."""
    out = []
    pos = 0
    for sent in sentences(text):
        start = text.find(sent, pos)
        end = start + len(sent)
        pos = end
        inserted = sum(max(0, min(end, b) - max(start, a)) for a, b in spans)
        if inserted:
            out.append((sent, inserted / max(1, len(sent))))
    return out


def _normal_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _is_typo(before: str, after: str) -> bool:
    """Punctuation, case and spacing only, or each replaced word a near spelling of the one before."""
    a, b = _normal_words(before), _normal_words(after)
    if a == b:
        return True
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag != "replace" or (i2 - i1) != (j2 - j1):
            return False
        for x, y in zip(a[i1:i2], b[j1:j2], strict=True):
            if x.isdigit() or y.isdigit() or SequenceMatcher(None, x, y).ratio() < 0.75:
                return False
    return True


def _status_terms(text: str) -> set[str]:
    """The status phrases of `text`, each in a sentence that names what is open or closed (an intake, a
    program, a stream, registrations…): "the office is closed on weekends" is no status."""
    out: set[str] = set()
    for rx in (STATUS, STATUS_FR) if any(mark in text for mark in _FR_STATUS_MARKS) else (STATUS,):
        for sent in sentences(text) if rx.search(text) else ():
            if INTAKE_NOUN.search(sent):
                out.update(" ".join(m.group(0).lower().split()) for m in rx.finditer(sent))
    return out


def _unit_after(text: str, value: str) -> str:
    m = re.search(re.escape(value) + r"\s+((?:new\s+)?[A-Za-z]+(?:\s+of\s+interest)?)", text)
    return f" {m.group(1)}" if m else ""


def is_stamp(c: dict[str, Any], text: str) -> bool:
    """A date fact that is the publisher's edit stamp in a sentence ("(last updated 11 July 2022)")."""
    if c["type"] != "date":
        return False
    at = text.find(c["after"])
    return at >= 0 and UPDATE_STAMP.search(text[max(0, at - 40) : at].rstrip(" (")) is not None


def row_cells(op: dict[str, Any]) -> tuple[list[str], list[str]] | None:
    """(column names, cells) of a table row read with its header row, or None."""
    header = op.get("header")
    if op.get("kind") != "tr" or not header:
        return None
    names, cells = header.split(" | "), op.get("text", "").split(" | ")
    return (names, cells) if len(names) == len(cells) else None


def _row_what(row: tuple[list[str], list[str]], value: str) -> tuple[str, str, str] | None:
    """(what, where, column) for a value in a table row: in a two-column table the row's name is what
    changed ("Appeal: 7 days → 6 days"); in a wider one, the value's column, with the row's name as where
    ("Invited: 231 → 187 (2018-04-01)")."""
    names, cells = row
    col = next((i for i, cell in enumerate(cells) if value in cell), None)
    if col is None or col == 0:
        return None
    label = " ".join(cells[0].split())
    column = " ".join(names[col].split())
    if not label or len(label) > 70 or value in label:
        return None
    if len(cells) >= 3 and column:
        return column, label, column
    return label, "", column


def _fact_headline(
    c: dict[str, Any], text: str, block_class: str | None, section: str = "", row: Any = None
) -> tuple[str, str]:
    """(class, headline) of one changed fact, e.g. ("fee", "Fee: $155 → $230")."""
    t = c["type"]
    sentence = next((s for s in sentences(text) if c["after"] in s), text)
    block_class = policy_class(sentence) or block_class
    if is_stamp(c, text):
        return "metadata", f"Updated: {c['before']} → {c['after']}"
    what = _row_what(row, c["after"]) if row else None
    if what is not None:
        name, where, column = what
        cls = t
        results = RESULTS_WORDS.search(column) is not None
        if t == "count":
            intake = not results and (INTAKE_NOUN.search(column) or block_class == "intake")
            place = f" ({where or name})"
            if intake and c["before"] == "0" and c["after"] != "0":
                return "status", f"Intake opened: {c['before']} → {c['after']}{place}"
            if intake and c["after"] == "0" and c["before"] != "0":
                return "status", f"Intake closed: {c['before']} → {c['after']}{place}"
            cls = "intake" if intake else "results" if results else "count"
        elif results:
            cls = "results"
        elif t in ("duration", "date") and "processing" in (block_class, policy_class(section)):
            cls = "processing"
        return cls, f"{name}: {c['before']} → {c['after']}" + (f" ({where})" if where else "")
    if t in ("duration", "date"):
        if block_class == "processing" or policy_class(section) == "processing":
            return t, f"Processing time: {c['before']} → {c['after']}"
        if DEADLINE.search(sentence) or block_class == "date":
            return t, f"Deadline: {c['before']} → {c['after']}"
    if t == "count":
        unit = _unit_after(text, c["after"]) or _unit_after(text, c["before"])
        if block_class == "intake" or unit.strip().lower().endswith(("applications", "interest", "eois")):
            if c["before"] == "0" and c["after"] != "0":
                return "status", f"Intake opened: {c['before']} → {c['after']}{unit}"
            if c["after"] == "0" and c["before"] != "0":
                return "status", f"Intake closed: {c['before']} → {c['after']}{unit}"
            return "intake", f"Intake: {c['before']} → {c['after']}{unit}"
        return "fact", f"Number: {c['before']} → {c['after']}{unit}"
    label = FACT_HEADLINE.get(t) or FACT_LABELS.get(t, t).capitalize()
    if t in ("duration", "date") and block_class in ("processing", "date", "fee", "requirement"):
        label = LABELS[block_class]  # "Processing time: 3 months → 6 months", "Deadline: …"
    return t, f"{label}: {c['before']} → {c['after']}"


def classify(op: dict[str, Any]) -> Meaning:
    """The meaning of one block operation from `diff.diff_blocks`: the first of these readings that applies —
    a notice, a status, a fact changed in place, a changed block's wording, then a block added or removed."""
    verb = op["op"]
    text, before, facts = _op_texts(op)
    section = " › ".join(op.get("section") or [])
    where = f" ({section})" if section else ""
    if verb == "moved":
        return Meaning("layout", "low", f"Moved{where}: {_quote(text, 100)}")
    notice = _notice(op, verb, text, facts, where)
    if notice is not None:
        return notice
    fact_heads, stamp = _fact_heads(op, verb, text, before, facts, section, where)
    if stamp is not None:
        return stamp
    reading = _status(op, verb, text, before, fact_heads) or _in_place(
        op, verb, text, before, facts, fact_heads, where
    )
    if reading is not None:
        return reading
    return _added_or_removed(op, verb, text, facts, section, where)


def _op_texts(op: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The operation's text, the text before, and its fact changes; a table row is read with its column names
    ("Intake cap: 500" is a cap, "Amount: $1,150" a fee)."""
    verb, text = op["op"], op.get("text", "")
    facts = op.get("facts") or {}
    before = op.get("before", "")
    if op.get("kind", "") == "tr" and op.get("header"):
        text = labelled_row(op["header"], text)
        before = labelled_row(op["header"], before) if before else before
        if verb == "changed":
            facts = compare_facts(extract_facts(before), extract_facts(text))
        else:
            found = extract_facts(text)
            facts = compare_facts([], found) if verb == "added" else compare_facts(found, [])
    return text, before, facts


def _notice(op: dict[str, Any], verb: str, text: str, facts: dict[str, Any], where: str) -> Meaning | None:
    # the program's online system will be down: a service notice, in the page's own content
    if not op.get("notice") and SERVICE_NOTICE.search(text) and verb in ("added", "changed"):
        hit = next((x for x in sentences(text) if SERVICE_NOTICE.search(x)), text)
        return Meaning("service", "medium", f"Service notice: {_quote(hit, 120)}{where}")
    # a banner about the website (maintenance, outages, holidays, scams): low, whatever it says
    if SITE_NOTICE.search(text) and (op.get("notice") or verb in ("added", "removed")):
        if not facts.get("changed") or op.get("notice"):
            verb_word = {"added": "shown", "removed": "gone"}.get(verb, "changed")
            return Meaning("notice", "low", f"Site notice {verb_word}: {_quote(text, 100)}")
    return None


def _fact_heads(
    op: dict[str, Any], verb: str, text: str, before: str, facts: dict[str, Any], section: str, where: str
) -> tuple[list[tuple[str, str]], Meaning | None]:
    """The headlines of the policy facts changed in place, (class, headline) each; or the publisher's edit
    stamp as the whole meaning when that is all that moved."""
    row = row_cells(op)
    fact_heads = [
        _fact_headline(c, text, policy_class(text), section, row)
        for c in facts.get("changed", [])
        if c["type"] in POLICY_FACTS
    ]
    # the publisher's edit stamp moved ("(last updated 5 July)"): the page's metadata, whatever else it says
    stamps = [h for cls, h in fact_heads if cls == "metadata"]
    fact_heads = [(cls, h) for cls, h in fact_heads if cls != "metadata"]
    if stamps and not fact_heads and verb == "changed" and _only_stamps_changed(before, text, facts):
        return [], Meaning("metadata", "low", stamps[0] + where)
    # a bare number with nothing around it that makes it policy (a visitor counter, "1,204 views") is wording
    if not (policy_class(text) or policy_class(section) or INTAKE_NOUN.search(text)):
        fact_heads = [(cls, head) for cls, head in fact_heads if cls != "fact"]
    return fact_heads, None


def _status(
    op: dict[str, Any], verb: str, text: str, before: str, fact_heads: list[tuple[str, str]]
) -> Meaning | None:
    """Opened, closed, paused, now accepting: a status fact, or a status phrase that came or went."""
    if verb == "changed":
        new_status = _status_terms(text) - _status_terms(before)
        gone_status = _status_terms(before) - _status_terms(text)
        status_text = text if new_status else before if gone_status else ""
    else:
        status_text = text if _status_terms(text) else ""
    for cls, head in fact_heads:
        if cls == "status":
            others = [h for c, h in fact_heads if h != head]
            return Meaning("status", "high", "; ".join([head, *others[:2]]))
    if not status_text:
        return None
    if verb == "changed" and not _status_terms(text):
        # the old status is gone ("not accepting applications" → "we will accept up to 600 applications"):
        # the news is what the page says now
        after, spans, *_ = _inserted_spans(op.get("inline") or [["del", before], ["ins", text]])
        touched = [t for t, _share in _sentences_touched(after, spans)] or [text]
        was = next((x for x in sentences(before) if _status_terms(x)), before)
        return Meaning("status", "high", f"Status: {_quote(' '.join(touched[:2]))} (was: {_quote(was, 60)})")
    hit = " ".join([s for s in sentences(status_text) if _status_terms(s)][:2]) or status_text
    prefix = "Status notice removed" if verb == "removed" else "Status"
    return Meaning("status", "high", f"{prefix}: {_quote(hit)}")


def _in_place(
    op: dict[str, Any],
    verb: str,
    text: str,
    before: str,
    facts: dict[str, Any],
    fact_heads: list[tuple[str, str]],
    where: str,
) -> Meaning | None:
    """A site notice shown or gone, facts changed in place, or a changed block's own reading (always one for
    a changed block; None leaves an added or removed block to `_added_or_removed`)."""
    if (op.get("notice") or SITE_NOTICE.search(text)) and verb in ("added", "removed"):
        if op.get("notice") or not fact_heads:
            verb_word = "shown" if verb == "added" else "gone"
            return Meaning("notice", "low", f"Site notice {verb_word}: {_quote(text, 100)}")
    if fact_heads:
        heads = list(dict.fromkeys(h for _, h in fact_heads))
        return Meaning(fact_heads[0][0], "medium", "; ".join(heads[:3]) + where)
    if verb != "changed":
        return None
    lone = [
        (side, f)
        for side in ("added", "removed")
        for f in facts.get(side, [])
        if f["type"] in POLICY_FACTS and f["type"] != "count"
    ]
    if lone and not _is_typo(before, text):
        side, f = lone[0]
        label = FACT_HEADLINE.get(f["type"], "Fact")
        hit = next((x for x in sentences(text if side == "added" else before) if f["value"] in x), None)
        hit = hit or _best_sentence(text)
        return Meaning(
            f["type"] if f["type"] in LABELS else policy_class(text) or "fact",
            "medium",
            f"{label} {side}: {f['value']} — {_quote(hit, 100)}{where}",
        )
    return _classify_changed(op, text, before, where)


def _added_or_removed(
    op: dict[str, Any], verb: str, text: str, facts: dict[str, Any], section: str, where: str
) -> Meaning:
    """A block added or removed: a section, a dated row or listing entry, a list's entry, a lone date, a
    policy fact or rule, else wording."""
    kind = op.get("kind", "")
    added_facts = [f for f in facts.get("added", []) + facts.get("removed", []) if f["type"] in POLICY_FACTS]
    # a list item or row under "Eligibility" or "Required documents" is a rule even when it says only
    # "an offer of arranged employment"
    cls = policy_class(text) or policy_class(section) or policy_class(op.get("lead_in") or "")
    if kind.startswith("h") and kind[1:].isdigit():
        label = "New section" if verb == "added" else "Section removed"
        return Meaning(cls or "layout", "medium" if cls else "low", f"{label}: {_quote(text, 100)}")
    dates_only = bool(added_facts) and all(f["type"] == "date" for f in added_facts)
    if kind == "tr" and cls in (None, "date") and dates_only:
        # a dated row of a table (a session, a draw, an event): the row, its fact first, empty cells out;
        # a linked row of a listing (IRCC's program delivery updates, a news table): what it announces
        entry = _listing_entry(op, verb, text, added_facts[0]["value"])
        if entry:
            follow = tuple(op.get("links") or ()) if verb == "added" else ()
            return Meaning("date", "medium", entry + where, follow)
        label = "New entry" if verb == "added" else "Entry removed"
        return Meaning(
            "date", "medium", f"{label}: {_quote(row_quote(text, added_facts[0]['value']))}{where}"
        )
    if kind == "li" and not cls and not added_facts and _is_entry(text, op):
        # a name added to or taken from a list the page states ("areas receiving an enhanced response",
        # an appendix in a rules index): the list's scope changed
        if op.get("links"):  # a linked entry of an index (an appendix, a chapter): a section of the rules
            label = "New section" if verb == "added" else "Section removed"
            return Meaning("section", "medium", f"{label}: {clip(text, 80)}{where}")
        label = "Added to the list" if verb == "added" else "Removed from the list"
        return Meaning("section", "medium", f"{label}: {_quote(text, 80)}{where}")
    if not cls and dates_only and _bare(text):
        # a date standing alone ("At midday 26 November", "From 24 February:"): it dates what follows, the
        # rules it introduces are the news
        label = "New date" if verb == "added" else "Date removed"
        return Meaning("schedule", "medium", f"{label}: {_quote(text, 80)}{where}")
    if cls or added_facts:
        return _new_or_removed_fact(kind, verb, text, cls, added_facts, where)
    if op.get("images") and not text:
        return Meaning("layout", "low", f"Image {verb}{where}")
    return Meaning(
        "wording", "low", f"{'Added' if verb == 'added' else 'Removed'}{where}: {_quote(text, 100)}"
    )


def _new_or_removed_fact(
    kind: str, verb: str, text: str, cls: str | None, added_facts: list[dict[str, Any]], where: str
) -> Meaning:
    fee = any(f["type"] == "fee" for f in added_facts)
    cls = "fee" if fee else cls or added_facts[0]["type"]
    hit = (
        row_quote(text, added_facts[0]["value"] if added_facts else None)
        if kind == "tr"
        else _best_sentence(text)
    )
    label = "Fee" if fee else LABELS.get(cls, FACT_HEADLINE.get(cls, "Fact"))
    head = f"New {label.lower()}: {_quote(hit)}" if verb == "added" else f"{label} removed: {_quote(hit)}"
    return Meaning(cls, "medium", head + where)


_NAME_COLUMN = re.compile(r"title|name|subject|update|notice|release|document", re.I)


def _listing_entry(op: dict[str, Any], verb: str, text: str, date: str) -> str | None:
    """ "New program delivery update: Post-graduation work permit (PGWP) — 2024-08-15": a dated row that links
    to its own page, named by its title cell, the listing (its section, else the page) in the singular."""
    if not op.get("links"):
        return None
    row = row_cells(op)
    names, cells = row if row else ([], text.split(" | "))
    pick = next(
        (c for n, c in zip(names, cells, strict=False) if _NAME_COLUMN.search(n) and date not in c), None
    )
    pick = pick or max((c for c in cells if date not in c), key=len, default="")
    if not pick.strip():
        return None
    noun = _singular((op.get("section") or [""])[-1] or op.get("listing") or "")
    label = f"New {noun}" if verb == "added" else f"{noun[:1].upper()}{noun[1:]} removed"
    return f"{label}: {clip(' '.join(pick.split()), 90)} — {date}"


def _singular(listing: str) -> str:
    """A listing's name for one of its entries: "Program delivery updates" → "program delivery update";
    anything that is not a short plural name → "entry"."""
    words = listing.split()
    last = words[-1] if words else ""
    if not 1 <= len(words) <= 5 or not last.lower().endswith("s") or last.lower().endswith("ss"):
        return "entry"
    words[-1] = last[:-3] + "y" if last.lower().endswith("ies") else last[:-1]
    if not (words[0].isupper() and len(words[0]) > 1):  # "IRCC notices" keeps its acronym
        words[0] = words[0].lower()
    return " ".join(words)


def _bare(text: str) -> bool:
    """A block that is little more than its date: a few words, no sentence."""
    return len(text.split()) <= 6 and not DEADLINE.search(text.replace("by ", ""))


def _is_entry(text: str, op: dict[str, Any]) -> bool:
    """A list item that names something (a place, a program, an appendix) rather than saying a sentence,
    in a list the page introduces (a lead-in sentence or a section heading)."""
    words = text.split()
    return (
        0 < len(words) <= 10
        and not re.search(r"[.!?;:]\s*$", text)
        and bool(op.get("lead_in") or op.get("section"))
        and text[:1].isupper()
    )


def _only_stamps_changed(before: str, after: str, facts: dict[str, Any]) -> bool:
    """Whether the two texts are equal once every changed date is taken out."""
    for c in facts.get("changed", []):
        before, after = before.replace(c["before"], ""), after.replace(c["after"], "")
    return _normal_words(before) == _normal_words(after)


def row_quote(text: str, first: str | None = None) -> str:
    """A table row for a quote: its non-empty cells, the one holding `first` (the fact) first —
    "C88 — Innovation Stream pilot", never "Innovation Stream pilot | | C88"."""
    cells = [c for c in (x.strip() for x in re.split(r"\s*\|\s*", text)) if c]
    if first:
        cells.sort(key=lambda c: first not in c)
    return " — ".join(cells)


def labelled_row(header: str, row: str) -> str:
    """A table row with its column names: "Year: 2024; Nominations issued: 120"."""
    names, cells = header.split(" | "), row.split(" | ")
    if len(names) != len(cells) or header == row:
        return row
    return "; ".join(f"{n}: {c}" if n else c for n, c in zip(names, cells, strict=True))


def _best_sentence(text: str) -> str:
    """The sentence of `text` that carries the strongest policy term (the whole block when it has one)."""
    sents = sentences(text)
    for _cls, _label, rx in POLICY_TERMS:
        for s in sents:
            if rx.search(s):
                return s
    return sents[0] if sents else text


def _where(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc.lower(), parts.path


def _classify_changed(op: dict[str, Any], text: str, before: str, where: str) -> Meaning:
    if op.get("links_before") is not None and before == text:
        cls = policy_class(text)
        moved = [_where(u) for u in op["links_before"]] != [_where(u) for u in op.get("links") or []]
        if cls in ("form", "documents", "fee") and moved:  # a new form or guide, not a cache-buster
            return Meaning(cls, "medium", f"{LABELS[cls]} link changed: {_quote(text, 100)}{where}")
        return Meaning("layout", "low", f"Link target changed: {_quote(text, 100)}{where}")
    if op.get("images_before") is not None and before == text:
        return Meaning("layout", "low", f"Image changed{where}")
    if _is_typo(before, text):
        return Meaning("typo", "low", f"Typo or punctuation{where}: {_quote(text, 100)}")
    after, spans, dels, ins, one_place = _inserted_spans(op.get("inline") or [["del", before], ["ins", text]])
    d0, i0 = " ".join(dels.split()), " ".join(ins.split())
    if d0 and i0 and _YEARISH.match(d0) and _YEARISH.match(i0) and re.search(r"\d{4}", d0 + i0):
        # a schedule's period moved ("2017/18" → "2018-19"): what it applies to changed, not its wording
        return Meaning("date", "medium", f"Period: {d0} → {i0} — {_quote(text, 80)}{where}")
    delta = f"{dels} {ins}"
    cls = policy_class(delta)
    if cls is None and policy_class(text) and _WORD.search(delta):
        cls = policy_class(text)  # a rule's sentence reworded: what it requires may have changed
    if cls is None:
        return Meaning("wording", "low", f"Reworded{where}: {_quote(text, 100)}")
    label = LABELS[cls]
    touched = _sentences_touched(after, spans)
    whole = [s for s, share in touched if share >= 0.8]
    if whole:
        new = next((s for s in whole if policy_class(s)), whole[0])
        head = f"New {label.lower()}: {_quote(new)}" if cls == "requirement" else f"{label}: {_quote(new)}"
        return Meaning(cls, "medium", head + where)
    d, i = " ".join(dels.split()), " ".join(ins.split())
    if one_place and d and i and max(len(d), len(i)) <= 4 and spans:
        # "2 → 4" says nothing: take the unit after it, or the word before ("2 MB → 4 MB")
        nxt = re.match(r"\s*([A-Za-z]{1,12})\b", after[spans[0][1] :])
        prev = re.search(r"([A-Za-z]{1,12})\s*$", after[: spans[0][0]])
        if nxt:
            d, i = f"{d} {nxt.group(1)}", f"{i} {nxt.group(1)}"
        elif prev:
            d, i = f"{prev.group(1)} {d}", f"{prev.group(1)} {i}"
    if one_place and d and i and len(d) <= 60 and len(i) <= 60:
        return Meaning(cls, "medium", f"{label}: {d} → {i}{where}")
    if one_place and i and not d and len(i) <= 60:
        return Meaning(
            cls, "medium", f"{label}: added “{i}” — {_quote(touched[0][0] if touched else text, 100)}"
        )
    if one_place and d and not i and len(d) <= 60:
        return Meaning(cls, "medium", f"{label}: removed “{d}” — {_quote(text, 100)}")
    hit = touched[0][0] if touched else text
    return Meaning(cls, "medium", f"{label} changed: {_quote(hit)}{where}")
