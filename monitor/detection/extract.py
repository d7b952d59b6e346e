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
from urllib.parse import urljoin

import orjson
from lxml import etree
from lxml.cssselect import CSSSelector

from policywatch.monitor.detection import pubmeta
from policywatch.monitor.detection.layout import RULE_WORDS, analyse, drop_link_lists, inside
from policywatch.monitor.detection.normalize import normalize_text

HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
LEAF_BLOCKS = {
    "p",
    "li",
    "dt",
    "dd",
    "pre",
    "blockquote",
    "figcaption",
    "caption",
    "summary",
    "address",
    "legend",
}
INLINE = {
    "a",
    "abbr",
    "b",
    "strong",
    "i",
    "em",
    "span",
    "code",
    "small",
    "sup",
    "sub",
    "time",
    "br",
    "img",
    "mark",
    "q",
    "cite",
    "dfn",
    "kbd",
    "s",
    "u",
    "del",
    "ins",
    "data",
    "var",
    "label",
    "wbr",
    "bdi",
    "bdo",
    "font",
}
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


_SINGLE_BYTE = {
    "iso-8859-1",
    "latin-1",
    "latin1",
    "l1",
    "windows-1252",
    "cp1252",
    "us-ascii",
    "ascii",
    "iso8859-1",
}


def effective_encoding(body: bytes, declared: str | None) -> str:
    """The declared charset — unless it is a single-byte Latin one and the bytes are valid UTF-8 with
    non-ASCII characters. Why: a server that mislabels canada.ca's UTF-8 for a night ("RÃ©sident") must not
    look like a content change; valid multi-byte UTF-8 is vanishingly rare in real Latin-1 text."""
    enc = (declared or "utf-8").lower()
    if enc in _SINGLE_BYTE and not body.isascii():
        try:
            body.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            pass
    return declared or "utf-8"


_DOC_START = re.compile(rb"<!doctype\s|<html[\s>]", re.IGNORECASE)
_DOC_END = re.compile(rb"</html\s*>", re.IGNORECASE)


def trim_outside_document(body: bytes) -> bytes:
    """The document proper: text a server wrote before `<!DOCTYPE>`/`<html>` (debug output, warnings) or
    after `</html>` is no part of the page, and libxml2 would otherwise put it into the body."""
    start = _DOC_START.search(body, 0, 1 << 16)
    if start is not None and start.start() and body[: start.start()].strip(b" \t\r\n\xef\xbb\xbf"):
        body = body[start.start() :]
    tail = body.rfind(b"</html")
    if tail < 0:
        tail = body.rfind(b"</HTML")
    if tail >= 0:
        end = _DOC_END.match(body, tail)
        if end is not None and body[end.end() :].strip():
            body = body[: end.end()]
    return body


def parse_html(body: bytes | str, encoding: str | None = None) -> etree._Element:
    """Parse once with libxml2's HTML parser into plain lxml elements (no per-element Python class
    lookups)."""
    if isinstance(body, str):
        body = trim_outside_document(body.encode("utf-8")).decode("utf-8")
    else:
        body = trim_outside_document(body)
    if isinstance(body, bytes):
        parser = etree.HTMLParser(
            encoding=effective_encoding(body, encoding), remove_comments=True, remove_pis=True
        )
    else:
        parser = etree.HTMLParser(remove_comments=True, remove_pis=True)
    root = etree.fromstring(body, parser)
    if root is None:  # an empty document
        root = etree.fromstring("<html><body></body></html>", etree.HTMLParser())
    return root


@lru_cache(maxsize=512)
def _selector(css: str) -> CSSSelector:
    return CSSSelector(css, translator="html")


def _text(el: etree._Element) -> str:
    return "".join(el.itertext())


_MAIN = etree.XPath("//main[@property='mainContentOfPage']")
_DTMD = etree.XPath("id('wb-dtmd')")  # libxml2's ID index: no scan of the document
_DATE_BY_ID = etree.XPath("id('wb-dtmd')//time/text()")
_DATE = etree.XPath("//*[@id='wb-dtmd']//time/text()")
_TITLE = etree.XPath("//title/text()")
_COUNT_SCRIPTS = etree.XPath("count(.//script)")
#: <meta name=…> / <link rel=…> → metadata key, read in one pass over the document's meta and link elements
_HEAD_KEYS = {
    ("meta", "name", "dcterms.modified"): ("modified", "content"),
    ("meta", "name", "dcterms.issued"): ("date_issued", "content"),
    ("link", "rel", "canonical"): ("canonical_url", "href"),
}


def find_gcweb_main(doc: etree._Element) -> etree._Element | None:
    found = _MAIN(doc)
    return found[0] if found else None


def _first_text(doc: etree._Element, xpath: etree.XPath) -> str | None:
    for node in xpath(doc):
        value = node if isinstance(node, str) else _text(node)
        value = normalize_text(str(value))
        if value:
            return value
    return None


def _head_values(doc: etree._Element) -> dict[str, str]:
    """The first non-empty value of each `_HEAD_KEYS` entry, in document order — what
    `//meta[@name='…']/@content` and `//link[@rel='canonical']/@href` would give, from lxml's C-level tag
    filter instead of three XPath scans of the whole document."""
    found: dict[str, str] = {}
    for el in doc.iter("meta", "link"):
        for (tag, attr, value), (key, source) in _HEAD_KEYS.items():
            if key in found or el.tag != tag or el.get(attr) != value:
                continue
            text = el.get(source)
            if text is not None:
                text = normalize_text(text)
                if text:
                    found[key] = text
    return found


def extract_metadata(doc: etree._Element) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    head = _head_values(doc)
    # The ID index finds the first #wb-dtmd; only when that one holds no date is the whole document scanned
    # (there is no #wb-dtmd at all when the index has none: then neither is there anything to scan for).
    modified = (
        _first_text(doc, _DATE_BY_ID)
        or (_first_text(doc, _DATE) if _DTMD(doc) else None)
        or head.get("modified")
    )
    if modified:
        meta["date_modified"] = modified
    for key in ("date_issued", "canonical_url"):
        if key in head:
            meta[key] = head[key]
    lang = doc.get("lang")
    if lang:
        meta["lang"] = lang
    return meta


def alternates(doc: etree._Element, url: str) -> dict[str, str]:
    """The page's versions in other languages, {"fr": absolute URL}: its `<link rel="alternate" hreflang>`,
    canada.ca's language toggle (`#wb-lng a[lang]`), or a provincial site's `<a hreflang>` / `<a lang>` link.
    The page's own language (`<html lang>`) is left out."""
    from urllib.parse import urljoin

    own = (doc.get("lang") or "").split("-")[0].lower()
    found: dict[str, str] = {}

    def add(lang: str | None, href: str | None) -> None:
        code = (lang or "").strip().split("-")[0].lower()
        href = (href or "").strip()
        if (
            len(code) == 2
            and code != own
            and code not in found
            and href
            and not href.startswith(("#", "javascript:"))
        ):
            found[code] = urljoin(url, href)

    head = doc.find("head")
    if head is not None:
        for link in head.iter("link"):
            if (link.get("rel") or "").lower() == "alternate" and link.get("hreflang"):
                add(link.get("hreflang"), link.get("href"))
    for a in doc.iter("a"):
        lang = a.get("hreflang") or a.get("lang")
        if lang:
            add(lang, a.get("href"))
    return found


def _remove(nodes: Iterable[etree._Element], why: str, dropped: list[str]) -> None:
    for node in list(nodes):
        parent = node.getparent()
        if parent is None:
            continue
        snippet = normalize_text(_text(node))[:60] if node.tag not in ("script", "style") else ""
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


def _has_block_child(el: etree._Element) -> bool:
    for c in el:
        tag = c.tag
        if tag.__class__ is str and tag not in INLINE:
            return True
    return False


def _inline_only(el: etree._Element) -> bool:
    """An element with inline descendants only (most inline elements have no children at all)."""
    if not len(el):
        return True
    for c in el.iterdescendants():
        tag = c.tag
        if tag.__class__ is str and tag not in INLINE:
            return False
    return True


_NONE: Any = ()  # the links / images of a block without children (immutable: never appended to, never stored)


class _Walker:
    """Turns an element tree into blocks, tracking the heading path.

    Why it looks low-level: it runs once per element of every new or edited page (hundreds of elements on a
    long canada.ca page), so the common cases — a leaf with no links, a container of leaves — avoid generator
    expressions, repeated attribute lookups and per-block list copies. `tests/test_extract_golden.py` holds
    its output to the byte."""

    def __init__(
        self,
        base_url: str,
        text_filter: re.Pattern[str] | None = None,
        *,
        notices: set[etree._Element] | None = None,
    ):
        self.base_url = base_url
        self.notices = notices  # generic pages: blocks inside these alert/banner containers say so
        self.generic = notices is not None  # other templates: session ids are taken out of links
        self.mark_notices = bool(notices)
        self.in_notice = False
        self.text_filter = text_filter
        self.filtered = 0
        self.blocks: list[dict[str, Any]] = []
        self.path: list[tuple[int, str]] = []
        self._section: list[
            str
        ] = []  # shared by the blocks under one heading path: serialized, never mutated

    def section(self) -> list[str]:
        return list(self._section)

    def emit(self, kind: str, text: str, links: list[str], images: list[dict[str, str]]) -> None:
        if not images and (not text or text.isspace()):
            return
        if self.text_filter is not None:
            stripped = self.text_filter.sub("", text)
            if stripped != text:
                self.filtered += 1
            text = stripped
        text = normalize_text(text)
        if not text and not images:
            return
        block: dict[str, Any] = {"kind": kind, "section": self._section, "text": text}
        if self.in_notice:
            block["notice"] = True
        if links:
            block["links"] = links
        if images:
            block["images"] = images
        self.blocks.append(block)

    def _links(self, el: etree._Element, links: list[str], images: list[dict[str, str]]) -> None:
        """Link targets and images of `el` and its descendants, in document order."""
        for node in el.iter("a", "img"):
            if node.tag == "a":
                href = node.get("href")
                if href and not href.startswith(("javascript:", "#")):
                    url = urljoin(self.base_url, href.strip())
                    links.append(_SESSION_IN_URL.sub("", url).rstrip("?&") if self.generic else url)
            else:
                src = node.get("src")
                if src:
                    images.append(
                        {
                            "src": urljoin(self.base_url, src.strip()),
                            "alt": normalize_text(node.get("alt") or ""),
                        }
                    )

    def inline_text(self, el: etree._Element, links: list[str], images: list[dict[str, str]]) -> str:
        """All text of an element treated as inline (used for leaf blocks and table cells)."""
        if not len(el):  # no children (most paragraphs): no links below, the text is the element's own
            if el.tag == "a" or el.tag == "img":
                self._links(el, links, images)
            return el.text or ""
        self._links(el, links, images)
        return "".join(el.itertext())

    def heading(self, el: etree._Element) -> None:
        level = int(el.tag[1])
        text = normalize_text(_text(el))
        path = self.path
        if path and path[-1][0] >= level:
            while path and path[-1][0] >= level:
                path.pop()
            self._section = [t for _, t in path]
        links: list[str] = []
        images: list[dict[str, str]] = []
        self._links(el, links, images)
        self.emit(el.tag, text, links, images)
        if text and level > 1:  # the h1 is the page title, not a section
            path.append((level, text))
            self._section = [t for _, t in path]

    def walk(self, el: etree._Element) -> None:
        if self.notices and not self.in_notice and el in self.notices:
            self.in_notice = True
            try:
                self._walk(el)
            finally:
                self.in_notice = False
            return
        self._walk(el)

    def _walk(self, el: etree._Element) -> None:
        tag = el.tag
        if tag.__class__ is not str:
            tag = ""
        elif tag in HEADINGS:
            self.heading(el)
            return
        elif tag == "tr":
            links: list[str] = []
            images: list[dict[str, str]] = []
            cells = [normalize_text(self.inline_text(c, links, images)) for c in el if c.tag in ("td", "th")]
            self.emit("tr", " | ".join(cells), links, images)
            return
        if tag == "img" or tag in LEAF_BLOCKS and not _has_block_child(el):
            links, images = [], []
            if tag == "img":
                text = ""
                self._links(el, links, images)
            else:
                text = self.inline_text(el, links, images)
            self.emit(tag, text, links, images)
            return
        # A container: runs of text and inline children between block children become anonymous blocks.
        kind = tag if tag in LEAF_BLOCKS else "text"
        run: list[str] = [el.text or ""]
        links, images = [], []
        for child in el:
            ctag = child.tag
            if ctag.__class__ is not str:
                run.append(child.tail or "")
                continue
            if ctag in INLINE and _inline_only(child):
                run.append(self.inline_text(child, links, images))
            else:
                if len(run) > 1 or run[0] or images:
                    self.emit(kind, "".join(run), links, images)
                    if links:  # kept by the block just emitted: the next run needs lists of its own
                        links = []
                    if images:
                        images = []
                run = []
                if ctag in LEAF_BLOCKS and not len(child) and not self.mark_notices:
                    # the commonest block, a paragraph without markup
                    self.emit(ctag, child.text or "", _NONE, _NONE)
                else:
                    self.walk(child)
            run.append(child.tail or "")
        self.emit(kind, "".join(run), links, images)


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
    """
    doc = body if isinstance(body, etree._Element) else parse_html(body, encoding)
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
    walker = _Walker(url, text_filter)
    walker.walk(main)
    blocks = walker.blocks
    _note_filtered(walker, text_filter, dropped)
    title = next((b["text"] for b in blocks if b["kind"] == "h1"), None) or _first_text(doc, _TITLE) or ""
    title = title.removesuffix(" - Canada.ca").strip()
    meta["extractor"] = extractor
    return Extraction(extractor, title, blocks, meta, dropped)


def _text_filter(patterns: list[str], ignore_patterns: list[str] | None) -> re.Pattern[str] | None:
    patterns = patterns + list(ignore_patterns or [])
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def _note_filtered(walker: _Walker, text_filter: re.Pattern[str] | None, dropped: list[str]) -> None:
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
    doomed += [el for el in root.iterdescendants("aside") if not RULE_WORDS.search(_text(el))]
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
    if not ignore_patterns and not any(_relative_hint(_text(r)) for r in (main, *side)):
        text_filter = None
    notices = _notices(body)
    walker = _Walker(url, text_filter, notices=notices)
    for i, root in enumerate([main, *side]):
        if extra_noise:
            _clean(root, list(extra_noise), "rule", dropped, keep_root=True)
        if i:
            drop_link_lists(root)
            dropped.append(
                f"kept as a sidebar (it states rules): <{root.tag}> {normalize_text(_text(root))[:60]}"
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
    title = next((b["text"] for b in blocks if b["kind"] == "h1"), None) or _first_text(doc, _TITLE) or ""
    meta["extractor"] = "generic"
    meta["extraction"] = GENERIC_VERSION
    return Extraction("generic", title, blocks, meta, dropped)


#: A session in a link is not content: ASP.NET's cookieless "/(S(…))/", ";jsessionid=…", and session or
#: tracking parameters. Taken out of links on other templates (GCWeb's links are read as they are).
_SESSION_IN_URL = re.compile(
    r"/\((?:[A-Z]\([^()]*\))+\)(?=/)|;jsessionid=[^?#]*"
    r"|(?<=[?&])(?:PHPSESSID|JSESSIONID|ASPSESSIONID\w*|sid|sessionid|session_id|utm_\w+|_ga|gclid|fbclid)"
    r"=[^&#]*&?",
    re.IGNORECASE,
)


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
