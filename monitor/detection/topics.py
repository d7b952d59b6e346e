"""Topic rules and the built-in Innovation Stream detector.

A change's topics are its page's watch topics, plus every topic whose keywords occur in the changed text or
whose URL prefixes match the page. The Innovation Stream rule also decides `details_released`: the night
IRCC replaces "details will be released later" with criteria, eligibility or an exemption code (C88).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Topic:
    """A topic as detection uses it (the config builds these from `[topics.*]` and the watches' topics)."""

    name: str
    display: str
    keywords: tuple[str, ...] = ()
    url_prefixes: tuple[str, ...] = ()


#: The built-in Innovation Stream rule: a user `[topics.innovation-stream]` table only adds keywords.
INNOVATION_STREAM = "innovation-stream"
BUILTIN_TOPICS: dict[str, dict[str, Any]] = {
    INNOVATION_STREAM: {
        "display": "Innovation Stream",
        "keywords": ["Innovation Stream", "Global Hypergrowth Project", "C88"],
        "url_prefixes": [],
    }
}

#: Wording that promises details later; its disappearance is the signal consultants wait for.
LATER = re.compile(
    r"(?:will|to)\s+be\s+(?:released|announced|provided|published|shared|made available)\s+(?:later|at a "
    r"later date|in the coming (?:weeks|months)|soon)"
    r"|released\s+later|to\s+be\s+(?:announced|determined|confirmed)|\bTBA\b|\bTBD\b|coming\s+soon"
    r"|more\s+(?:details|information)\s+(?:will|to)\s+(?:be\s+(?:released|provided|available|shared)|follow)"
    r"|details\s+(?:will|to)\s+follow|(?:will|to)\s+launch\s+(?:later|by the end of)",
    re.IGNORECASE,
)
#: Headings that mean criteria or an application process were published.
CRITERIA_HEADING = re.compile(
    r"eligib|how to apply|who can apply|requirement|application (?:process|assessment)|criteria|documentary "
    r"evidence|wage",
    re.IGNORECASE,
)


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def contains_word(haystack_lower: str, needle: str) -> bool:
    """`needle` (any case) occurs in `haystack_lower` as a whole word — what a case-insensitive `kw` between
    non-word characters matches, found with str.find in C instead of a regex scan per position (a 50 KB page,
    many keywords)."""
    kw = needle.lower()
    start = 0
    while True:
        i = haystack_lower.find(kw, start)
        if i < 0:
            return False
        end = i + len(kw)
        if (i == 0 or not _is_word_char(haystack_lower[i - 1])) and (
            end >= len(haystack_lower) or not _is_word_char(haystack_lower[end])
        ):
            return True
        start = i + 1


def matches_keywords(topic: Topic, text: str) -> bool:
    lower = text.lower()
    return any(contains_word(lower, k) for k in topic.keywords)


def assign_topics(
    url: str, watch_topics: Iterable[str], texts: Iterable[str], topics: dict[str, Topic]
) -> list[str]:
    """Watch topics first (in config order), then matched topics in name order."""
    joined = "\n".join(texts)
    out = list(dict.fromkeys(watch_topics))
    for name in sorted(topics):
        t = topics[name]
        if name in out:
            continue
        if any(url.startswith(p) for p in t.url_prefixes) or matches_keywords(t, joined):
            out.append(name)
    return out


def details_released(
    *,
    topics: list[str],
    ops: list[dict[str, Any]],
    old_text: str,
    new_text: str,
    new_page: bool,
    discovered: bool,
    topic_defs: dict[str, Topic],
) -> tuple[bool, list[str]]:
    """Did this change release Innovation Stream details? Returns the verdict and the reasons, in words."""
    if INNOVATION_STREAM not in topics:
        return False, []
    stream = topic_defs.get(INNOVATION_STREAM)
    reasons: list[str] = []
    if new_page:
        if discovered and stream is not None and matches_keywords(stream, new_text):
            reasons.append("a new page about the Innovation Stream appeared")
        return bool(reasons), reasons
    old_later = {m.group(0).lower() for m in LATER.finditer(old_text)}
    new_later = {m.group(0).lower() for m in LATER.finditer(new_text)}
    gone = old_later - new_later
    if gone:
        reasons.append(f"the promise of later details is gone (“{sorted(gone)[0]}”)")
    for op in ops:
        if op["op"] != "added":
            continue
        if op["kind"] in ("h2", "h3", "h4") and CRITERIA_HEADING.search(op["text"]):
            reasons.append(f"a section “{op['text']}” was added")
        codes = [f["value"] for f in op.get("facts", {}).get("added", []) if f["type"] == "exemption_code"]
        if codes and stream is not None and (matches_keywords(stream, op["text"]) or "C88" in codes):
            reasons.append(f"exemption code {', '.join(codes)} was added")
    return bool(reasons), list(dict.fromkeys(reasons))
