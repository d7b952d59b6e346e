"""The publisher's metadata on any template: "Published", "Last updated", its change history and change notes.

Why apart from the content: a page's "Last updated" date moves when a sibling page of its collection changes,
a banner comes and goes, or nothing visible changed at all; its change-history list grows with every update.
Compared as content, they lead every one-line summary ("Date: 12 May 2022 → 13 May 2022") and alert on
updates where nothing a reader acts on moved. They are the publisher's words *about* the update: kept in the
version's metadata (the latest change note is quoted beside policywatch's own facts), never compared.

Recognised by what they are, not by one site's markup: a definition list whose terms are publication terms
("Published", "Last updated", "From"), a container named as metadata, published dates, a byline, post meta or
a change/update history, and a list whose items are each a date with a short note. Pure: no I/O.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Any

from lxml import etree

#: Ids and classes of publisher metadata on common templates (GOV.UK's gem-c-metadata and
#: app-c-published-dates, WordPress's entry-meta/posted-on/byline, Drupal's node__meta/submitted, AEM's
#: page-details, "date modified" blocks, change and update histories).
META_NAMES = re.compile(
    r"(?:^|[-_\s])(?:metadata|published-?dates?|publication-?dates?|pub-?date|post-?meta|entry-?meta|"
    r"article-?meta|node__meta|page-?meta|posted-?on|byline|dateline|page-?details|last-?updated|"
    r"last-?modified|date-?modified|modified-?date|updated-?date|change-?history|update-?history|"
    r"page-?history|publication-?history|content-?history|revision-?history|report-?a-?problem)"
    r"(?:$|[-_\s])",
    re.IGNORECASE,
)
#: Terms of a publication definition list.
META_TERMS = re.compile(
    r"^(?:first\s+)?(?:published|last\s+updated|updated|date\s+modified|modified|last\s+modified|posted|"
    r"reviewed|last\s+reviewed|revised|issued|from|by|author|department|organi[sz]ation|part\s+of|type|"
    r"collection|applies\s+to)\s*:?$",
    re.IGNORECASE,
)
_DATE_WORDS = (
    r"(?:\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{4}|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}|\d{4}-\d{2}-\d{2})"
)
DATE = re.compile(_DATE_WORDS, re.IGNORECASE)
_LAST_UPDATED = re.compile(r"last\s+(?:updated|modified|reviewed)\s*:?\s*(" + _DATE_WORDS + ")", re.I)
_PUBLISHED = re.compile(r"(?:first\s+)?published\s*:?\s*(" + _DATE_WORDS + ")", re.I)
#: The most of a content area that may be metadata: a container holding more is the page, whatever its name.
MAX_SHARE = 0.4
MAX_HISTORY_SHARE = 0.9


def _text(el: etree._Element) -> str:
    return " ".join("".join(el.itertext()).split())


def _named(el: etree._Element) -> bool:
    names = f"{el.get('id') or ''} {el.get('class') or ''}"
    return bool(names.strip()) and META_NAMES.search(names) is not None


def _definition_list(el: etree._Element) -> bool:
    terms = [_text(dt) for dt in el.iterchildren("dt")]
    return (
        bool(terms)
        and all(META_TERMS.match(t) for t in terms)
        and any(
            re.match(r"(?:first\s+)?(?:published|last|updated|date|modified|posted|revised)", t, re.I)
            for t in terms
        )
    )


def _history_list(el: etree._Element) -> bool:
    """A list of at least two items, nearly all of them a date (a <time>, or a date first) with a note."""
    items = list(el.iterchildren("li"))
    if len(items) < 2:
        return False
    first = items[0]
    head = " ".join("".join(islice(first.itertext(), 4)).split())[:40]
    if first.find(".//time") is None and not DATE.match(head):  # most lists: one cheap look
        return False
    dated = 0
    for li in items:
        text = _text(li)
        if (li.find(".//time") is not None or DATE.match(text) is not None) and len(text) <= 1000:
            dated += 1
    return dated >= 0.9 * len(items)


#: Candidates found in libxml2, not by a Python walk over every element: lists, and the (few) elements with
#: an id or class, whose names META_NAMES then reads.
_LISTS = etree.XPath(".//dl | .//ol | .//ul")
_NAMED = etree.XPath(".//*[@id or @class]")


def find(root: etree._Element) -> list[etree._Element]:
    """The outermost metadata elements inside `root`, in document order (never `root` itself, never most of
    its text)."""
    total = 0
    found: list[etree._Element] = []
    taken: set[etree._Element] = set()
    named = [el for el in _NAMED(root) if _named(el)]
    for el in named + _LISTS(root):  # containers named as metadata first: a list inside one is theirs
        if taken and any(a in taken for a in el.iterancestors()):
            continue
        if el.tag == "dl":
            hit = _definition_list(el) or el in named
        elif el.tag in ("ol", "ul"):
            hit = (_history_list(el) and _near_history_words(el)) or el in named
        else:
            hit = True
        if hit:
            total = total or max(1, len(_text(root)))
            # a long change history may outweigh a short page: a dated list is metadata at any length
            share = MAX_HISTORY_SHARE if el.tag in ("ol", "ul") or _holds_history(el) else MAX_SHARE
            if len(_text(el)) <= share * total:
                found.append(el)
                taken.add(el)
    return found


def _holds_history(el: etree._Element) -> bool:
    return any(_history_list(lst) for lst in el.iter("ol", "ul"))


def _near_history_words(el: etree._Element) -> bool:
    """A dated list is a change history when it or what stands just before it says so ("updates",
    "history", "change log"): a list of event dates in the content is not."""
    context = (el.getparent().get("class") or "") + " " + (el.get("class") or "")
    prev = el.getprevious()
    if prev is not None:
        context += " " + _text(prev)[:200]
    parent = el.getparent()
    if parent is not None and parent.text:
        context += " " + parent.text
    return (
        re.search(r"updates?|history|change\s*log|changes|revisions?|amendments?", context, re.I) is not None
    )


def read(elements: list[etree._Element]) -> dict[str, Any]:
    """What the metadata says: `date_modified`, `published`, and the change notes (newest first)."""
    meta: dict[str, Any] = {}
    notes: list[dict[str, str]] = []
    for el in elements:
        text = _text(el)
        m = _LAST_UPDATED.search(text)
        if m and "date_modified" not in meta:
            meta["date_modified"] = m.group(1)
        m = _PUBLISHED.search(text)
        if m and "published" not in meta:
            meta["published"] = m.group(1)
        lists = [el] if el.tag in ("ol", "ul") else list(el.iter("ol", "ul"))
        for lst in lists:
            if not _history_list(lst):
                continue
            for li in lst.iterchildren("li"):
                time_el = li.find(".//time")
                when = _text(time_el) if time_el is not None else (DATE.match(_text(li)) or [""])[0]
                note = _text(li)
                if when and note.startswith(when):
                    note = note[len(when) :].strip(" —–-:")
                if note:
                    notes.append({"date": when, "note": note[:300]})
    if notes:
        meta["change_notes"] = notes[:5]
        latest = notes[0]
        if meta.get("date_modified") and notes[-1]["date"] == meta["date_modified"] != latest["date"]:
            latest = notes[-1]  # a history listed oldest first
        meta["change_note"] = latest["note"]
        meta["change_note_date"] = latest["date"]
    return meta
