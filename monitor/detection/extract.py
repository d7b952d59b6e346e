"""Content extraction: HTML → title, metadata and a sequence of content blocks.

canada.ca pages use the GCWeb template: the content is `<main property="mainContentOfPage">`, the "Date
modified" block (`#wb-dtmd`, inside `section.pagedetails`) is metadata, never content, and everything around
`<main>` (menus, rotating scripts, Akamai beacons, footers) is furniture. Other sites get a generic fallback
(`<main>`, else `<article>`, else `<body>` minus navigation). The document is parsed once, with lxml.

A block is one paragraph, list item, table row, definition term/description, heading or the like, with the
heading path it sits under, its normalized text, its link targets and its images, so that a moved link or a
removed image is a change even when the words stay the same.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import orjson
from lxml import etree
from lxml.cssselect import CSSSelector

from policywatch.monitor.detection import pubmeta
from policywatch.monitor.detection.blocks import Walker
from policywatch.monitor.detection.decode import (
    effective_encoding,
    guessed_charset,
    parse_html,
    trim_outside_document,
)
from policywatch.monitor.detection.headmeta import alternates, extract_metadata, first_text
from policywatch.monitor.detection.layout import RULE_WORDS, analyse, drop_link_lists, inside
from policywatch.monitor.detection.normalize import element_text, normalize_text

DROP_TAGS = {
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "object",
    "embed",
    "svg",
    "canvas",
    "form",
    "button",
    "input",
    "select",
    "textarea",
    "link",
    "meta",
}
#: GCWeb furniture that can sit inside <main>: page details (date modified, report a problem), share widgets.
#: Each as (CSS selector, tag or None, attribute, token): matched in `_match_simple` without an XPath per
#: selector.
GCWEB_NOISE_RULES = [
    ("section.pagedetails", "section", "class", "pagedetails"),
    ("#wb-dtmd", None, "id", "wb-dtmd"),
    (".pagedetails", None, "class", "pagedetails"),
    (".wb-share", None, "class", "wb-share"),
    (".gc-pgnt-hdr", None, "class", "gc-pgnt-hdr"),
    ("#gc-pft", None, "id", "gc-pft"),
]
GCWEB_NOISE = [rule[0] for rule in GCWEB_NOISE_RULES]
#: Form controls carry no content; the `<form>` around them may hold the whole page (ASP.NET WebForms).
GENERIC_DROP_TAGS = DROP_TAGS - {"form"}
#: Containers of alerts and site banners: their blocks are marked `"notice": true` (generic pages only) so
#: that a banner coming and going reads as the low-significance event it is.
NOTICE_WORDS = (
    "alert",
    "notification",
    "urgent",
    "banner",
    "notice",
    "announcement",
    "emergency",
    "site-message",
    "sitemessage",
    "message-bar",
    "messagebar",
)
#: "Last updated: 2024-03-12" and the like, on other templates: metadata (GCWeb's is #wb-dtmd), not content.
LAST_UPDATED = re.compile(
    r"^(?:page |this page was |content |date )?(?:last )?(?:updated|modified|reviewed|revised|published|"
    r"posted|generated)"
    r"(?: on| date)?\s*:?\s*(?P<date>.{4,40})$",
    re.IGNORECASE,
)
GENERIC_VERSION = (
    "generic-3"  # stored in a generic version's meta: a different one is re-extracted to compare
)

#: On non-canada.ca pages, relative times ("3 minutes ago", "yesterday") change every visit: not content.
RELATIVE_TIME = re.compile(
    r"\b(?:\d+|an?|one)\s+(?:second|minute|hour|day|week|month|year)s?\s+ago\b|\b(?:just "
    r"now|yesterday|today)\b",
    re.IGNORECASE,
)


@dataclass
class Extraction:
    """What one HTML response says, stripped of furniture."""

    extractor: str  # gcweb | generic
    title: str
    blocks: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # why-not-content notes, for `policywatch explain`

    @cached_property
    def text(self) -> str:
        """The blocks' texts, one per line (what `versions.text` stores); computed once: blocks are never
        edited."""
        return "\n".join([b["text"] for b in self.blocks if b["text"]])

    @cached_property
    def blocks_json(self) -> bytes:
        """The blocks as canonical JSON, UTF-8 (sorted keys, compact), byte for byte what `content_hash` below
        hashes with the stdlib. Why orjson: encoding hundreds of small dicts was a large share of a new page's
        CPU with the stdlib (BENCHMARKS.md); `tests/test_extract.py` holds the two encoders equal on every
        code point."""
        return orjson.dumps(self.blocks, option=orjson.OPT_SORT_KEYS)

    @property
    def parts(self) -> tuple[str, str, list[dict[str, Any]], str, dict[str, Any], str]:
        """(content hash, title, blocks, text, meta, extractor): what the page work stores."""
        return self.content_hash, self.title, self.blocks, self.text, self.meta, self.extractor

    @property
    def content_hash(self) -> str:
        """Equal to content_hash(title, blocks), with the blocks serialized once."""
        return hashlib.sha256(b"[" + orjson.dumps(self.title) + b"," + self.blocks_json + b"]").hexdigest()


def content_hash(title: str, blocks: Iterable[dict[str, Any]] | Any) -> str:
    """SHA-256 over the canonical JSON of title + blocks: equal content, equal hash, whatever the bytes."""
    payload = json.dumps([title, blocks], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@lru_cache(maxsize=512)
def _selector(css: str) -> CSSSelector:
    return CSSSelector(css, translator="html")


_MAIN = etree.XPath("//main[@property='mainContentOfPage']")
_TITLE = etree.XPath("//title/text()")
_COUNT_SCRIPTS = etree.XPath("count(.//script)")


def find_gcweb_main(doc: etree._Element) -> etree._Element | None:
    found = _MAIN(doc)
    return found[0] if found else None


def _remove(nodes: Iterable[etree._Element], why: str, dropped: list[str]) -> None:
    for node in list(nodes):
        parent = node.getparent()
        if parent is None:
            continue
        snippet = normalize_text(element_text(node))[:60] if node.tag not in ("script", "style") else ""
        dropped.append(
            f"{why}: <{node.tag}{'#' + node.get('id') if node.get('id') else ''}> {snippet}".rstrip()
        )
        tail = node.tail
        if tail:  # keep the text that followed the removed element
            prev = node.getprevious()
            if prev is not None:
                prev.tail = (prev.tail or "") + tail
            else:
                parent.text = (parent.text or "") + tail
        parent.remove(node)


_CLASS_OR_ID = etree.XPath("@class | @id | .//@class | .//@id")
_XML_SPACE = str.maketrans("\t\n\r", "   ")


def _attached(node: etree._Element, root: etree._Element) -> bool:
    while node is not None:
        if node is root:
            return True
        node = node.getparent()
    return False


def _match_simple(
    root: etree._Element, rules: list[tuple[str, str | None, str, str]], why: str, dropped: list[str]
) -> None:
    """Remove what each of `rules` (tag.class / .class / #id selectors) matches, in order, exactly as
    evaluating each CSS selector on the tree left by the previous one would — from one XPath over the
    attributes.

    Why: cssselect's XPath for `.x` or `#x` tests a predicate on every element (for each selector, on a long
    page, six selectors on every new or edited canada.ca page); listing the class and id attributes is one
    pass. Class tokens are split on XML whitespace only, as cssselect's `normalize-space(@class)` does."""
    found: list[list[etree._Element]] = [[] for _ in rules]
    for value in _CLASS_OR_ID(root):
        el, attr = value.getparent(), value.attrname
        tokens = value.translate(_XML_SPACE).split(" ") if attr == "class" else None
        for i, (_, tag, rule_attr, token) in enumerate(rules):
            if (
                rule_attr == attr
                and (tag is None or el.tag == tag)
                and (token in tokens if tokens is not None else value == token)
            ):
                found[i].append(
                    el
                )  # the XPath's node set is in document order, attributes with their element
    for (sel, *_), nodes in zip(rules, found, strict=False):
        if nodes:
            _remove([n for n in nodes if _attached(n, root)], f"{why} ({sel})", dropped)


def _clean(
    root: etree._Element,
    selectors: list[str] | list[tuple[str, str]],
    why: str,
    dropped: list[str],
    *,
    keep_root: bool = False,
) -> None:
    """Drop scripts, styles and forms, then what each selector matches, in order. GCWeb's own furniture list
    (`GCWEB_NOISE`, the very object) takes the one-pass matcher; any other list — the generic noise, users'
    rules — is evaluated selector by selector with cssselect."""
    if not keep_root:  # the generic path did both before choosing its content area
        for br in root.iter("br"):  # a line break separates words
            br.tail = " " + (br.tail or "")
        _remove(list(root.iter(*DROP_TAGS)), "script/style/form", dropped)
    if selectors is GCWEB_NOISE:
        _match_simple(root, GCWEB_NOISE_RULES, why, dropped)
        return
    for entry in selectors:
        sel, reason = entry if isinstance(entry, tuple) else (entry, why)
        try:
            found = _selector(sel)(root)
            _remove([n for n in found if n is not root] if keep_root else found, f"{reason} ({sel})", dropped)
        except Exception:  # an invalid user selector is reported by rule validation, not here
            continue


def extract_html(
    body: bytes | str,
    url: str,
    *,
    encoding: str | None = None,
    extra_noise: list[tuple[str, str]] | None = None,
    ignore_patterns: list[str] | None = None,
    require_gcweb: bool = False,
) -> Extraction:
    """Extract content from an HTML document.

    `require_gcweb`: the page was extracted with the GCWeb selector before, so a response without it is not
    content (raise NoMainContent; the caller records a soft error) rather than a generic-fallback extraction.

    Bytes are read in the charset they are in (decode.effective_encoding); when that is not the UTF-8 they
    were said to be, `meta["charset"]` says which, so earlier versions are read the same way before comparing.
    """
    rules = _Rules(extra_noise, ignore_patterns, require_gcweb)
    if not isinstance(body, bytes):
        doc = body if isinstance(body, etree._Element) else parse_html(body, encoding)
        return _extract(doc, url, rules)
    body = trim_outside_document(body)
    charset = effective_encoding(body, encoding)
    ex = _extract(parse_html(body, charset, decided=True), url, rules)
    guess = guessed_charset(body, encoding, charset)
    if guess:
        ex.meta["charset"] = guess
    return ex


@dataclass(frozen=True, slots=True)
class _Rules:
    extra_noise: list[tuple[str, str]] | None
    ignore_patterns: list[str] | None
    require_gcweb: bool


def _extract(doc: etree._Element, url: str, rules: _Rules) -> Extraction:
    extra_noise, ignore_patterns, require_gcweb = (
        rules.extra_noise,
        rules.ignore_patterns,
        rules.require_gcweb,
    )
    meta = extract_metadata(doc)
    twins = alternates(doc, url)
    if twins:
        meta["alternates"] = twins  # the page in the other official language ([parity])
    dropped: list[str] = []
    main = find_gcweb_main(doc)
    if main is not None:
        extractor, noise = "gcweb", GCWEB_NOISE
        outside = int(_COUNT_SCRIPTS(doc) - _COUNT_SCRIPTS(main))
        dropped.append(
            f"outside the content area: menus, header, footer, breadcrumbs and {outside} scripts "
            "(rotating asset URLs, Akamai/analytics beacons)"
        )
    elif require_gcweb:
        raise NoMainContent('the canada.ca content area <main property="mainContentOfPage"> is missing')
    else:
        return _extract_generic(doc, url, meta, dropped, extra_noise, ignore_patterns)
    _clean(main, noise, "furniture", dropped)
    if extra_noise:
        _clean(main, list(extra_noise), "rule", dropped)
    text_filter = _text_filter([], ignore_patterns)
    walker = Walker(url, text_filter)
    walker.walk(main)
    blocks = walker.blocks
    _note_filtered(walker, text_filter, dropped)
    title = next((b["text"] for b in blocks if b["kind"] == "h1"), None) or first_text(doc, _TITLE) or ""
    title = title.removesuffix(" - Canada.ca").strip()
    meta["extractor"] = extractor
    return Extraction(extractor, title, blocks, meta, dropped)


def _text_filter(patterns: list[str], ignore_patterns: list[str] | None) -> re.Pattern[str] | None:
    patterns = patterns + list(ignore_patterns or [])
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def _note_filtered(walker: Walker, text_filter: re.Pattern[str] | None, dropped: list[str]) -> None:
    if walker.filtered:
        dropped.append(
            f"text rules: wording removed from {walker.filtered} blocks "
            f"({text_filter.pattern if text_filter else ''})"
        )


_NOISE_CLASS = re.compile(r"teaser|promo|related|view-?count|counter|share|social|cookie|advert")
_NOISE_ID = re.compile(r"cookie")
_GENERIC_NAMED = etree.XPath(".//*[@id or @class or @aria-hidden]")


def _drop_generic_furniture(root: etree._Element, furniture: set[etree._Element], dropped: list[str]) -> None:
    """Inside the content area: menus, site headers and footers, breadcrumbs (`layout`'s furniture), asides
    that state no rule, and widgets named as teasers, promos, related links, counters, share and cookie
    bars or hidden from screen readers — in one pass over the elements that have an id or class."""
    doomed = [el for el in furniture if inside(el, root)]
    doomed += [el for el in root.iterdescendants("aside") if not RULE_WORDS.search(element_text(el))]
    for el in _GENERIC_NAMED(root):
        cls = el.get("class")
        if (
            el.get("aria-hidden") == "true"
            or cls
            and (_NOISE_CLASS.search(cls) or "views" in cls.split())
            or _NOISE_ID.search(el.get("id") or "")
        ):
            doomed.append(el)
    doomed = [el for el in set(doomed) if not any(o is not el and inside(el, o) for o in doomed)]
    if len(doomed) > 1:  # in document order, as a notes reader expects
        position = {el: i for i, el in enumerate(root.iter())}
        doomed = sorted(set(doomed), key=lambda el: position.get(el, 0))
    _remove(
        [el for el in doomed if _attached(el, root)],
        "furniture (navigation, header, footer, teasers)",
        dropped,
    )


def _extract_generic(
    doc: etree._Element,
    url: str,
    meta: dict[str, Any],
    dropped: list[str],
    extra_noise: list[tuple[str, str]] | None,
    ignore_patterns: list[str] | None,
) -> Extraction:
    """Any template but GCWeb: the content area by landmarks, else text density (`layout`); columns beside
    it that state rules as a "Sidebar" section; "Last updated" lines as metadata."""
    body = doc.find(".//body")
    if body is None:
        body = doc
    for br in body.iter("br"):  # a line break separates words
        br.tail = " " + (br.tail or "")
    _remove(list(body.iter(*GENERIC_DROP_TAGS)), "script/style/control", dropped)
    # "Published", "Last updated" and the change history, wherever they stand: the publisher's, never content
    published = pubmeta.find(body)
    if published:
        for key, value in pubmeta.read(published).items():
            meta.setdefault(key, value)
        _remove(published, "publisher metadata (published and updated dates, change notes)", dropped)
    layout = analyse(body)
    main, side = layout.main, layout.sidebars
    dropped.append(f"content area: {layout.how}; everything around it is furniture unless it states rules")
    for root in (main, *side):
        _drop_generic_furniture(root, layout.furniture, dropped)

    # The relative-time filter runs block by block only on a page where it finds something at all.
    text_filter = _text_filter([RELATIVE_TIME.pattern], ignore_patterns)
    if not ignore_patterns and not any(_relative_hint(element_text(r)) for r in (main, *side)):
        text_filter = None
    notices = _notices(body)
    walker = Walker(url, text_filter, notices=notices)
    for i, root in enumerate([main, *side]):
        if extra_noise:
            _clean(root, list(extra_noise), "rule", dropped, keep_root=True)
        if i:
            drop_link_lists(root)
            dropped.append(
                f"kept as a sidebar (it states rules): <{root.tag}> {normalize_text(element_text(root))[:60]}"
            )
            walker.path = [(1, "Sidebar")]
            walker._section = ["Sidebar"]
        walker.walk(root)
    _note_filtered(walker, text_filter, dropped)
    blocks = []
    for b in walker.blocks:
        m = LAST_UPDATED.match(b["text"]) if len(b["text"]) <= 80 and b["kind"] != "tr" else None
        if m and _MAYBE_DATE.search(m.group("date")):
            meta.setdefault("date_modified", m.group("date").strip())
            dropped.append(f"metadata, not content: {b['text']}")
            continue
        blocks.append(b)
    title = next((b["text"] for b in blocks if b["kind"] == "h1"), None) or first_text(doc, _TITLE) or ""
    meta["extractor"] = "generic"
    meta["extraction"] = GENERIC_VERSION
    return Extraction("generic", title, blocks, meta, dropped)


#: A session in a link is not content: ASP.NET's cookieless "/(S(…))/", ";jsessionid=…", and session or
#: tracking parameters. Taken out of links on other templates (GCWeb's links are read as they are).


def _relative_hint(text: str) -> bool:
    """Every RELATIVE_TIME match holds one of these words: substring tests run in C, far cheaper than the
    pattern over a long page (a false hint, "Chicago", only means the blocks are filtered one by one)."""
    lower = text.lower()
    return "ago" in lower or "yesterday" in lower or "today" in lower or "just now" in lower


_WITH_ROLE = etree.XPath(".//*[@role]")


def _notices(body: etree._Element) -> set[etree._Element]:
    """Alert and banner containers: `NOTICE_WORDS` in an id or class, or an alert/status role."""
    found = {el for el in _WITH_ROLE(body) if el.get("role").lower() in ("alert", "status")}
    for el in _GENERIC_NAMED(body):
        names = f"{el.get('id') or ''} {el.get('class') or ''}".lower()
        if any(word in names for word in NOTICE_WORDS):
            found.add(el)
    return found


_MAYBE_DATE = re.compile(r"\d{4}|\d{1,2}[/-]\d{1,2}")


class NoMainContent(Exception):
    """The page's usual content container is missing (maintenance or error page served with 200)."""
