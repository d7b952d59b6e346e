"""Read discovery sources: XML sitemaps (and sitemap indexes, gzipped or not), news feeds (Atom, RSS,
JSON), and the tables of contents of the issues a feed lists (the Canada Gazette's).

Why a module of its own: parsing is pure (bytes in, URLs out) and tested without a crawl. Scrapy's own
`Sitemap` parser (lxml, with entity resolution off) reads the XML; `lastmod` is kept as a *hint* for ordering
(newest first when `discovery.max_pages` caps the crawl), never as a reason to skip a fetch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap


@dataclass(frozen=True)
class Found:
    url: str
    lastmod: str | None = None
    text: str = ""  # what the entry says of itself (a feed entry's title, summary, categories)

    def matches(self, keywords: tuple[str, ...]) -> bool:
        """Whether the entry speaks of one of `keywords` (case and accents aside); no keywords: it does."""
        if not keywords:
            return True
        said = _fold(f"{self.text} {self.url}")
        return any(_fold(k) in said for k in keywords)


def _fold(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def _text(element: Any, *paths: str) -> str:
    """The text of an entry's title, summary, categories …, markup dropped."""
    parts = []
    for path in paths:
        for node in element.findall(path):
            parts.append(" ".join(node.itertext()) or node.get("term") or "")
    return " ".join(" ".join(parts).split())


def read_sitemap(body: bytes, max_size: int) -> tuple[str, list[Found]]:
    """('sitemapindex' | 'urlset', entries). Raises ValueError on a body that is not a sitemap."""
    if gzip_magic_number_of(body):  # a .xml.gz served without Content-Encoding
        try:
            body = gunzip(body, max_size=max_size)
        except (
            ValueError,
            EOFError,
            OSError,
        ) as exc:  # over DOWNLOAD_MAXSIZE once unpacked, or a broken gzip
            raise ValueError(f"unusable gzipped sitemap: {exc}") from None
    try:
        sm = Sitemap(body)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ValueError(f"not a sitemap: {exc}") from None
    if sm.type not in ("sitemapindex", "urlset"):
        raise ValueError(f"not a sitemap: root element <{sm.type}>")
    entries = [Found(e["loc"].strip(), e.get("lastmod")) for e in sm if e.get("loc")]
    entries.sort(key=lambda f: f.lastmod or "", reverse=True)  # newest first: a hint for the max_pages cap
    return sm.type, entries


def gzip_magic_number_of(body: bytes) -> bool:
    return body[:3] == b"\x1f\x8b\x08"


_ATOM = "{http://www.w3.org/2005/Atom}"


def read_feed(body: bytes, content_type: str = "") -> list[Found]:
    """Entry links of an Atom or RSS feed, or the URLs of a JSON feed (the GC news API's `format=json`)."""
    head = body.lstrip()[:1]
    if "json" in content_type.lower() or head in (b"{", b"["):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed JSON feed: {exc}") from None
        return [Found(u) for u in dict.fromkeys(_json_links(data))]
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"malformed feed: {exc}") from None
    found: list[Found] = []
    for entry in root.iter(f"{_ATOM}entry"):
        updated = entry.findtext(f"{_ATOM}updated") or entry.findtext(f"{_ATOM}published")
        links = entry.findall(f"{_ATOM}link")
        best = next(
            (ln for ln in links if ln.get("rel", "alternate") == "alternate"), links[0] if links else None
        )
        if best is not None and best.get("href"):
            said = _text(entry, f"{_ATOM}title", f"{_ATOM}summary", f"{_ATOM}content", f"{_ATOM}category")
            found.append(Found(best.get("href").strip(), updated, said))
    for item in root.iter("item"):  # RSS 2.0
        link = item.findtext("link")
        if link:
            said = _text(item, "title", "description", "category")
            found.append(Found(link.strip(), item.findtext("pubDate"), said))
    if not found and root.tag not in (f"{_ATOM}feed", "rss"):
        raise ValueError(f"not a feed: root element <{root.tag}>")
    return found


_LINK_KEYS = ("link", "url", "href", "uri")


def _json_links(data: Any) -> Iterator[str]:
    """http(s) strings under link-like keys, anywhere in the document (the news API nests them in entries)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if (
                key.lower() in _LINK_KEYS
                and isinstance(value, str)
                and value.startswith(("http://", "https://"))
            ):
                yield value.strip()
            elif key.lower() in _LINK_KEYS and isinstance(value, dict) and isinstance(value.get("href"), str):
                yield value["href"].strip()
            else:
                yield from _json_links(value)
    elif isinstance(data, list):
        for item in data:
            yield from _json_links(item)


_HEADINGS = ("h2", "h3", "h4")


def read_issue(body: bytes, url: str) -> list[Found]:
    """The items an issue's table of contents lists: every link in its main content, each with what it is
    filed under (the section and department headings above it) as what it says of itself, so a keyword can
    match "Department of Citizenship and Immigration" as well as a title; first, the page itself with its
    heading (an extra edition's entry is the document). Links back to the issue itself, to anchors on it,
    and a heading's own link to its section page are not items. Raises ValueError on a body that is not
    HTML."""
    from urllib.parse import urldefrag, urljoin

    from lxml import html

    try:
        doc = html.document_fromstring(body)
    except (etree.ParserError, ValueError) as exc:
        raise ValueError(f"not an issue page: {exc}") from None
    main = next(iter(doc.xpath("//main | //*[@role='main']")), None)
    root = main if main is not None else doc.find("body")
    if root is None:
        raise ValueError("not an issue page: no body")
    own = urldefrag(url)[0]
    filed: dict[str, str] = {}
    # An extra edition's entry links the document itself, not a table of contents: the page is an item too,
    # saying what its heading says ("… Regulations Amending the Immigration and Refugee Protection …").
    heading = next(iter(root.iter("h1")), None)
    found = [Found(own, None, " ".join(heading.text_content().split()))] if heading is not None else []
    for el in root.iter(*_HEADINGS, "a"):
        if el.tag in _HEADINGS:
            level = _HEADINGS.index(el.tag)
            for deeper in _HEADINGS[level:]:
                filed.pop(deeper, None)
            filed[el.tag] = " ".join(el.text_content().split())
            continue
        href = (el.get("href") or "").strip()
        title = " ".join(el.text_content().split())
        target = urljoin(url, href)
        if not href or href.startswith("#") or not title or urldefrag(target)[0] == own:
            continue
        if title in filed.values():  # a heading's link to its whole section's page
            continue
        found.append(Found(target, None, " ".join([*filed.values(), title])))
    return found
