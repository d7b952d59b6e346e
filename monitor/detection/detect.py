"""Per-page change detection: compare a new extraction with the last good version and describe the change.

Runs inside the crawl's item pipeline. Unchanged content is recognised by hash before any diff runs; pure
noise never produces a change; what is produced says which section, which sentence, which fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policywatch.monitor.detection.diff import diff_blocks, inline_diff
from policywatch.monitor.detection.facts import extract_facts, key_facts, merge_fact_changes, unique_facts
from policywatch.monitor.detection.jsondiff import diff_records
from policywatch.monitor.detection.meaning import SEVERITY, Meaning, classify, clip
from policywatch.monitor.detection.topics import Topic, assign_topics, details_released


def _quote(text: str, n: int = 150) -> str:
    return f"“{clip(text, n)}”"


MAX_OPS_STORED = 200  # a page rewritten wholesale keeps the first 200 block operations in its record


@dataclass
class ChangeDecision:
    kind: str  # new_page | changed | removed
    significance: str
    topics: list[str]
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    details_released: bool = False

    @property
    def follow(self) -> list[str]:
        """The pages a listing's new entries link to (each once, in reading order)."""
        links = [
            url for op in self.details.get("blocks") or [] for url in op.get("meaning", {}).get("follow", [])
        ]
        return list(dict.fromkeys(links))


def _section_label(section: list[str]) -> str:
    return " › ".join(section) if section else "Top of page"


def _significance(score: int, released: bool) -> str:
    if released or score >= 4:
        return "high"
    return "medium" if score >= 2 else "low"


#: Headline order among operations of equal significance: the edit that matters most to a consultant
#: leads, whatever its place on the page — status, then a section or rule added or removed, validity and
#: deadline dates, fees and wages, requirements, processing times, caps and intake numbers, results, forms,
#: contacts and documents, service notices; wording, the publisher's own stamps and site notices last.
CLASS_ORDER = [
    "status",
    "section",
    "date",
    "fee",
    "wage",
    "requirement",
    "exemption_code",
    "teer",
    "noc",
    "language",
    "representative",
    "processing",
    "duration",
    "intake",
    "count",
    "results",
    "percentage",
    "form",
    "email",
    "documents",
    "schedule",
    "service",
    "fact",
    "wording",
    "typo",
    "metadata",
    "notice",
    "layout",
]


def _rank(op: dict[str, Any], m: Meaning) -> tuple[int, int, int, tuple[int, int]]:
    """Most significant first; then by class; what a section says before its heading; then what names a
    fact (the e-mail address removed) before what does not, and added or changed before removed — the other
    way round for a status, where the new status is the news."""
    order = CLASS_ORDER.index(m.cls) if m.cls in CLASS_ORDER else len(CLASS_ORDER)
    heading = op["kind"].startswith("h") and op["kind"][1:].isdigit()
    facts = op.get("facts") or {}
    no_facts = 0 if any(facts.get(k) for k in ("added", "removed", "changed")) else 1
    removed = 0 if op["op"] in ("added", "changed") else 1
    tie = (removed, no_facts) if m.cls == "status" else (no_facts, removed)
    return (-m.severity, order, int(heading), tie)


def _more(lead_ops: list[str], counts: dict[str, int]) -> str:
    """ " (+2 more: 1 added, 1 changed)": the operations besides the ones the summary leads with."""
    rest = dict(counts)
    for lead_op in lead_ops:
        rest[lead_op] -= 1
    n = sum(rest.values())
    if n <= 0:
        return ""
    return f" (+{n} more: " + ", ".join(f"{v} {k}" for k, v in rest.items() if v) + ")"


def short_title(title: str, n: int = 60) -> str:
    """A page title shortened at a word, or at its first dash or colon when what comes before says enough
    ("Innovation Stream pilot – Issuance of an LMIA-exempt …" → "Innovation Stream pilot")."""
    title = " ".join(title.split())
    if len(title) <= n:
        return title
    for sep in (" – ", " — ", " - ", ": "):
        head = title.split(sep, 1)[0]
        if 10 <= len(head) <= n:
            return head
    return clip(title, n)


def _sections(ops: list[dict[str, Any]], meanings: list[Meaning]) -> None:
    """A heading added (or removed) with its body is a section added: medium, the heading in the line
    ("New section: Appendix Private Life"), whatever its words."""
    for i, op in enumerate(ops):
        kind = op.get("kind", "")
        if op["op"] not in ("added", "removed") or not (kind.startswith("h") and kind[1:].isdigit()):
            continue
        path = [*op.get("section", []), op["text"]]
        body = any(
            j != i and other["op"] == op["op"] and other.get("section", [])[: len(path)] == path
            for j, other in enumerate(ops)
        )
        if body or meanings[i].cls != "layout":
            label = "New section" if op["op"] == "added" else "Section removed"
            meanings[i] = Meaning("section", "medium", f"{label}: {clip(op['text'], 100)}")


def _second(ops: list[dict[str, Any]], meanings: list[Meaning], order: list[int]) -> int | None:
    """The next edit worth a place in the line beside the lead: a policy edit of another block, not the
    lead's own words again."""
    lead = meanings[order[0]]
    for i in order[1:]:
        m = meanings[i]
        if m.severity >= 1 and m.cls not in ("wording", "typo", "metadata", "notice", "layout"):
            if m.headline != lead.headline:
                return i
    return None


def _markup_only(ops: list[dict[str, Any]]) -> bool:
    """The same words, links and images, in other blocks: a paragraph split in two, a <div> made a list.

    Blocks outside `ops` are identical on both sides, so comparing what the operations removed with what they
    added, in reading order and without whitespace, decides it."""
    if any(op["op"] == "moved" for op in ops):
        return False
    old_side = [op.get("before", op["text"]) for op in ops if op["op"] in ("removed", "changed")]
    new_side = [op["text"] for op in ops if op["op"] in ("added", "changed")]
    if "".join("".join(old_side).split()) != "".join("".join(new_side).split()):
        return False

    def refs(side: tuple[str, ...], before: bool) -> list[Any]:
        out: list[Any] = []
        for op in ops:
            if op["op"] in side:
                out += op.get("links_before", op.get("links", [])) if before else op.get("links", [])
                out += op.get("images_before", op.get("images", [])) if before else op.get("images", [])
        return out

    return refs(("removed", "changed"), True) == refs(("added", "changed"), False)


def _header_row(blocks: list[dict[str, Any]], index: int) -> str | None:
    """The first row of the run of table rows holding blocks[index], when it names columns (no digits)."""
    if not 0 <= index < len(blocks) or blocks[index].get("kind") != "tr":
        return None
    i = index
    while i > 0 and blocks[i - 1].get("kind") == "tr":
        i -= 1
    first = blocks[i].get("text", "")
    if i == index or any(ch.isdigit() for ch in first):
        return None
    return first


def _lead_in(blocks: list[dict[str, Any]], index: int) -> str | None:
    """The sentence that introduces the list holding blocks[index] ("To apply, you must:")."""
    if not 0 <= index < len(blocks) or blocks[index].get("kind") != "li":
        return None
    i = index
    while i > 0 and blocks[i - 1].get("kind") == "li":
        i -= 1
    if i == 0 or blocks[i - 1].get("kind", "").startswith("h"):
        return None
    return blocks[i - 1].get("text") or None


def _add_context(ops: list[dict[str, Any]], old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """Give each table row its table's header row ("Year: 2024; Nominations: 120") and each list item the
    sentence that introduces its list, so that what a row or item means can be read."""
    for op in ops:
        blocks, index = (old if op["op"] == "removed" else new), op.get("index", -1)
        if op.get("kind") == "tr":
            header = _header_row(blocks, index)
            if header:
                op["header"] = header
        elif op.get("kind") == "li":
            lead = _lead_in(blocks, index)
            if lead:
                op["lead_in"] = lead


def detect_html(
    *,
    url: str,
    title: str,
    old: dict[str, Any] | None,
    new_blocks: list[dict[str, Any]],
    new_meta: dict[str, Any],
    watch_topics: list[str],
    topic_defs: dict[str, Topic],
    discovered: bool = False,
    baseline: bool = False,
) -> ChangeDecision | None:
    """`old` is the last good version ({"blocks", "meta", "text"}) or None for a page seen the first time."""
    new_text = "\n".join(b["text"] for b in new_blocks)
    if old is None:
        page = _NewPage(url, title, new_text, new_blocks, new_meta, watch_topics, topic_defs)
        return _new_page(page, discovered=discovered, baseline=baseline)
    ops = diff_blocks(old["blocks"], new_blocks)
    if not ops or _markup_only(ops):
        return None  # same blocks (e.g. only the title tag or date metadata moved), or markup only
    changed_texts = [op["text"] for op in ops] + [op.get("before", "") for op in ops]
    topics = assign_topics(url, watch_topics, changed_texts, topic_defs)
    released, reasons = details_released(
        topics=topics,
        ops=ops,
        old_text=old.get("text", ""),
        new_text=new_text,
        new_page=False,
        discovered=discovered,
        topic_defs=topic_defs,
    )
    merged = merge_fact_changes([op.get("facts", {}) for op in ops])
    counts = {k: sum(1 for op in ops if op["op"] == k) for k in ("added", "removed", "changed", "moved")}
    meanings = _read_ops(ops, old["blocks"], new_blocks, title)
    # Significance from meaning: the most significant operation's; a topic of its own (its keywords in the
    # changed text) lifts a low edit to medium.
    significance = max((m.significance for m in meanings), key=SEVERITY.__getitem__)
    if significance == "low" and set(topics) - set(watch_topics) and any(m.cls != "layout" for m in meanings):
        significance = "medium"
    summary = _headline(ops, meanings, counts) + _publisher_note(new_meta, old.get("meta") or {})
    if released:
        significance, summary = "high", "Innovation Stream details released — " + summary
    details = {
        "sections": list(dict.fromkeys(_section_label(op["section"]) for op in ops)),
        "counts": counts,
        "blocks": ops[:MAX_OPS_STORED],
        "truncated": len(ops) > MAX_OPS_STORED,
        "facts": {k: unique_facts(v) for k, v in merged.items()},
        "reasons": reasons,
        "date_modified": {
            "before": old.get("meta", {}).get("date_modified"),
            "after": new_meta.get("date_modified"),
        },
    }
    return ChangeDecision("changed", significance, topics, summary, details, released)


@dataclass
class _NewPage:
    url: str
    title: str
    text: str
    blocks: list[dict[str, Any]]
    meta: dict[str, Any]
    watch_topics: list[str]
    topic_defs: dict[str, Topic]


def _new_page(p: _NewPage, *, discovered: bool, baseline: bool) -> ChangeDecision:
    """A page seen the first time: news when discovered (its facts first), a note when watching begins."""
    topics = assign_topics(p.url, p.watch_topics, [p.title, p.text], p.topic_defs)
    released, reasons = details_released(
        topics=topics,
        ops=[],
        old_text="",
        new_text=p.text,
        new_page=True,
        discovered=discovered,
        topic_defs=p.topic_defs,
    )
    # a baseline is a note, not news: no facts to list (its summary still names the key ones)
    facts = [] if baseline else unique_facts(extract_facts(p.text))
    headings = [b["text"] for b in p.blocks if b["kind"] in ("h2", "h3")]
    key = key_facts(p.text, 5)
    released_note = " — Innovation Stream details released" if released else ""
    if discovered:  # news: its facts first, then what the page is
        summary = (" · ".join(key) + " — new page: " if key else "New page: ") + short_title(p.title)
        summary += released_note
    else:  # a note that watching began: what is watched, then what it says
        summary = (
            clip(f"Now watching: {p.title}", 120) + released_note + (" — " + " · ".join(key) if key else "")
        )
    return ChangeDecision(
        "new_page",
        "low" if baseline and not released else _significance(2 if discovered else 0, released),
        topics,
        summary,
        {
            "sections": headings[:50],
            "facts": {"added": facts[:100], "removed": [], "changed": []},
            "baseline": baseline,
            "discovered": discovered,
            "reasons": reasons,
            "date_modified": {"before": None, "after": p.meta.get("date_modified")},
        },
        released,
    )


def _read_ops(
    ops: list[dict[str, Any]], old_blocks: list[dict[str, Any]], new_blocks: list[dict[str, Any]], title: str
) -> list[Meaning]:
    """Each operation's meaning, read with its context (the block before, a list's lead-in, a table's header;
    a listing page's title names its entries); the meaning is stored on the operation too."""
    _add_context(ops, old_blocks, new_blocks)
    _replacements(ops)
    for op in ops:  # a page that is a listing names its entries ("New program delivery update: …")
        op["listing"] = title or ""
    meanings = [classify(op) for op in ops]
    for op in ops:
        op.pop("listing", None)
    _sections(ops, meanings)
    for op, m in zip(ops, meanings, strict=True):
        op["meaning"] = {"class": m.cls, "significance": m.significance}
        if m.follow:  # a listing's new entry: the page it links to is watched from then on
            op["meaning"]["follow"] = list(m.follow)
    return meanings


def _replacements(ops: list[dict[str, Any]]) -> None:
    """A block removed and the next one added in its place (same section, same kind) but too unlike to be
    "changed": the removed one carries the word diff from it to the added one (`replaced_by`), so a diff page
    can show the two as one row without diffing words itself."""
    for op, nxt in zip(ops, ops[1:], strict=False):
        if (
            op["op"] == "removed"
            and nxt["op"] == "added"
            and (nxt.get("section") or []) == (op.get("section") or [])
            and nxt.get("kind") == op.get("kind")
        ):
            op["replaced_by"] = inline_diff(op.get("text", ""), nxt.get("text", ""))


def _headline(ops: list[dict[str, Any]], meanings: list[Meaning], counts: dict[str, int]) -> str:
    """The one line: the most significant operation's headline, a second when it adds a fact, and how many
    more there are."""
    order = sorted(range(len(ops)), key=lambda i: _rank(ops[i], meanings[i]))
    lead = meanings[order[0]].headline
    first = ops[order[0]]
    if meanings[order[0]].cls == "status" and first["op"] == "removed":
        # a status notice replaced by other words ("not accepting" → "accepting up to 600"): lead with what
        # the page says now, in the same section
        new_words = [op for op in ops if op["op"] == "added" and op["section"] == first["section"]]
        if new_words:
            lead = f"Status: {_quote(new_words[0]['text'])} (was: {_quote(first['text'], 60)})"
    leads = [order[0]]
    second = _second(ops, meanings, order)
    if second is not None:
        lead += "; " + clip(meanings[second].headline, 110)
        leads.append(second)
    return lead + _more([ops[i]["op"] for i in leads], counts)


def _publisher_note(new_meta: dict[str, Any], old_meta: dict[str, Any]) -> str:
    """The publisher's own change note, when this version brought a new one."""
    note = new_meta.get("change_note")
    if note and (note, new_meta.get("change_note_date")) != (
        old_meta.get("change_note"),
        old_meta.get("change_note_date"),
    ):
        return f" — publisher’s note: “{clip(note, 140)}”"
    return ""


def detect_json(
    *,
    url: str,
    title: str,
    old: dict[str, Any] | None,
    new_doc: dict[str, Any],
    watch_topics: list[str],
    topic_defs: dict[str, Topic],
    discovered: bool = False,
    baseline: bool = False,
) -> ChangeDecision | None:
    if old is None:
        topics = assign_topics(url, watch_topics, [title], topic_defs)
        n = len(new_doc["records"])
        return ChangeDecision(
            "new_page",
            "low" if baseline else "medium",
            topics,
            f"{'Now watching' if baseline else 'New data file'}: {title} ({n} records)",
            {
                "records": {"added": [], "removed": [], "changed": []},
                "record_count": n,
                "baseline": baseline,
                "discovered": discovered,
            },
        )
    rd = diff_records(old["blocks"], new_doc)
    if not (rd["added"] or rd["removed"] or rd["changed"] or rd["meta_changed"]):
        return None
    texts = [a["description"] for a in rd["added"]] + [c["description"] for c in rd["changed"]]
    topics = assign_topics(url, watch_topics, texts, topic_defs)
    parts = []
    if rd["added"]:
        parts.append(
            f"{rd['added'][0]['description']} added"
            + (f" (+{len(rd['added']) - 1} more)" if len(rd["added"]) > 1 else "")
        )
    if rd["changed"]:
        c = rd["changed"][0]
        f = c["fields"][0]
        field_name = f" {f['field']}" if f["field"] else ""
        parts.append(
            f"{c['description'].split(':')[0]}{field_name}: {f['before']} → {f['after']}"
            + (f" (+{len(rd['changed']) - 1} more records changed)" if len(rd["changed"]) > 1 else "")
        )
    if rd["removed"]:
        parts.append(
            f"{len(rd['removed'])} record{'s' if len(rd['removed']) > 1 else ''} removed "
            f"({', '.join(r['id'] for r in rd['removed'][:5])})"
        )
    if rd["meta_changed"] and not parts:
        parts.append("; ".join(f"{m['field']}: {m['before']} → {m['after']}" for m in rd["meta_changed"][:3]))
    score = (2 if rd["added"] else 0) + (1 if rd["changed"] else 0) + (2 if rd["removed"] else 0)
    details = {
        "records": {k: rd[k] for k in ("added", "removed", "changed")},
        "meta_changed": rd["meta_changed"],
        "id_field": rd["id_field"],
        "counts": {"added": len(rd["added"]), "removed": len(rd["removed"]), "changed": len(rd["changed"])},
    }
    return ChangeDecision("changed", _significance(score, False), topics, "; ".join(parts), details)


def removed_decision(*, url: str, title: str | None, status: int, watch_topics: list[str]) -> ChangeDecision:
    return ChangeDecision(
        "removed",
        "medium",
        list(watch_topics),
        f"Page removed: {title or url} (HTTP {status} on two consecutive passes)",
        {"http_status": status},
    )
