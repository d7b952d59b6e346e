"""Per-page change detection: compare a new extraction with the last good version and describe the change.

Runs inside the crawl's item pipeline. Unchanged content is recognised by hash before any diff runs; pure
noise never produces a change; what is produced says which section, which sentence, which fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policywatch.monitor.detection.diff import diff_blocks
from policywatch.monitor.detection.facts import describe_fact_change, extract_facts, merge_fact_changes
from policywatch.monitor.detection.jsondiff import diff_records
from policywatch.monitor.detection.topics import Topic, assign_topics, details_released

MAX_OPS_STORED = 200  # a page rewritten wholesale keeps the first 200 block operations in its record
SEVERITY = {"low": 0, "medium": 1, "high": 2}


@dataclass
class ChangeDecision:
    kind: str  # new_page | changed | removed
    significance: str
    topics: list[str]
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    details_released: bool = False


def _section_label(section: list[str]) -> str:
    return " › ".join(section) if section else "Top of page"


def _short(text: str, n: int = 140) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _significance(score: int, released: bool) -> str:
    if released or score >= 4:
        return "high"
    return "medium" if score >= 2 else "low"


def _describe_op(op: dict[str, Any]) -> str:
    where = _section_label(op["section"])
    kind = {
        "li": "list item",
        "tr": "table row",
        "p": "paragraph",
        "dd": "definition",
        "dt": "term",
        "img": "image",
    }.get(op["kind"], "heading" if op["kind"].startswith("h") else "text")
    facts = op.get("facts", {})
    if op["op"] == "changed":
        fc = facts.get("changed", [])
        if fc:
            return f"{where}: " + "; ".join(describe_fact_change(c) for c in fc)
        if op.get("links_before") is not None and op.get("before") == op["text"]:
            return f"{where}: link target changed in “{_short(op['text'], 80)}”"
        return f"{where}: {kind} reworded: “{_short(op['text'], 100)}”"
    if op["op"] == "added" and kind == "heading":
        return f"New section “{op['text']}”"
    if op["op"] == "removed" and kind == "heading":
        return f"Section “{op['text']}” removed"
    verb = {"added": "added", "removed": "removed", "moved": "moved"}[op["op"]]
    return f"{where}: {kind} {verb}: “{_short(op['text'], 100)}”"


def _rank(op: dict[str, Any]) -> int:
    facts = op.get("facts", {})
    n = len(facts.get("changed", [])) * 3 + len(facts.get("added", [])) + len(facts.get("removed", []))
    return (
        n * 10
        + (5 if op["kind"].startswith("h") else 0)
        + {"changed": 3, "added": 2, "removed": 2, "moved": 0}[op["op"]]
    )


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
        topics = assign_topics(url, watch_topics, [title, new_text], topic_defs)
        released, reasons = details_released(
            topics=topics,
            ops=[],
            old_text="",
            new_text=new_text,
            new_page=True,
            discovered=discovered,
            topic_defs=topic_defs,
        )
        facts = (
            [] if baseline else extract_facts(new_text)
        )  # a baseline is a note, not news: no facts to show
        headings = [b["text"] for b in new_blocks if b["kind"] in ("h2", "h3")]
        score = 2 if discovered else 0
        summary = f"New page: {title}" if discovered else f"Now watching: {title}"
        if released:
            summary += " — Innovation Stream details released"
        return ChangeDecision(
            "new_page",
            "low" if baseline and not released else _significance(score, released),
            topics,
            summary,
            {
                "sections": headings[:50],
                "facts": {"added": facts[:100], "removed": [], "changed": []},
                "baseline": baseline,
                "discovered": discovered,
                "reasons": reasons,
                "date_modified": {"before": None, "after": new_meta.get("date_modified")},
            },
            released,
        )
    ops = diff_blocks(old["blocks"], new_blocks)
    if not ops:
        return None  # same blocks (e.g. only the title tag or date metadata moved): not a change
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
    facts = merge_fact_changes([op.get("facts", {}) for op in ops])
    counts = {k: sum(1 for op in ops if op["op"] == k) for k in ("added", "removed", "changed", "moved")}
    score = min(4, 2 * len(facts["changed"]) + len(facts["added"]) + len(facts["removed"]))
    score += 1 if any(op["kind"].startswith("h") and op["op"] in ("added", "removed") for op in ops) else 0
    score += 1 if sum(counts.values()) >= 3 else 0
    score += 1 if set(topics) - set(watch_topics) else 0
    if all(op["op"] == "moved" for op in ops):
        score = 0
    ranked = sorted(ops, key=_rank, reverse=True)
    summary = _describe_op(ranked[0])
    if len(ops) > 1:
        summary += f" (+{len(ops) - 1} more: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n) + ")"
    if released:
        summary = "Innovation Stream details released — " + summary
    sections = list(dict.fromkeys(_section_label(op["section"]) for op in ops))
    details = {
        "sections": sections,
        "counts": counts,
        "blocks": ops[:MAX_OPS_STORED],
        "truncated": len(ops) > MAX_OPS_STORED,
        "facts": facts,
        "reasons": reasons,
        "date_modified": {
            "before": old.get("meta", {}).get("date_modified"),
            "after": new_meta.get("date_modified"),
        },
    }
    return ChangeDecision("changed", _significance(score, released), topics, summary, details, released)


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
