"""An element tree into content blocks: one per paragraph, list item, table row, definition, heading or the
like, with the heading path it sits under, its normalized text, its links and its images (`Walker`). The
extractor (`extract`) chooses the content area and drops the furniture; this reads what is left."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

from lxml import etree

from policywatch.monitor.detection.normalize import element_text, normalize_text

#: Session ids and tracking parameters in links on other templates: a new one every visit, never a change.
_SESSION_IN_URL = re.compile(
    r"/\((?:[A-Z]\([^()]*\))+\)(?=/)|;jsessionid=[^?#]*"
    r"|(?<=[?&])(?:PHPSESSID|JSESSIONID|ASPSESSIONID\w*|sid|sessionid|session_id|utm_\w+|_ga|gclid|fbclid)"
    r"=[^&#]*&?",
    re.IGNORECASE,
)

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


class Walker:
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
        text = normalize_text(element_text(el))
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
