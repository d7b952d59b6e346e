"""A page's metadata from its head and its GCWeb furniture: the publisher's "Date modified" (`#wb-dtmd`,
else `dcterms.modified`), its issue date, its canonical URL, its language, and its versions in the other
official language (`hreflang` alternates, canada.ca's language toggle, a provincial site's language link).
Never content: a change here alone is no change of the page."""

from __future__ import annotations

from typing import Any

from lxml import etree

from policywatch.monitor.detection.normalize import element_text, normalize_text

_DTMD = etree.XPath("id('wb-dtmd')")  # libxml2's ID index: no scan of the document
_DATE_BY_ID = etree.XPath("id('wb-dtmd')//time/text()")
_DATE = etree.XPath("//*[@id='wb-dtmd']//time/text()")
#: <meta name=…> / <link rel=…> → metadata key, read in one pass over the document's meta and link elements
_HEAD_KEYS = {
    ("meta", "name", "dcterms.modified"): ("modified", "content"),
    ("meta", "name", "dcterms.issued"): ("date_issued", "content"),
    ("link", "rel", "canonical"): ("canonical_url", "href"),
}


def first_text(doc: etree._Element, xpath: etree.XPath) -> str | None:
    for node in xpath(doc):
        value = node if isinstance(node, str) else element_text(node)
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
        first_text(doc, _DATE_BY_ID)
        or (first_text(doc, _DATE) if _DTMD(doc) else None)
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


#: How Government of Canada URLs name their language (the Canada Gazette's `-eng.html`/`-fra.html`, Justice
#: Laws' `/eng/`, older sites' `_e.html`, query strings), English and French in step.
_URL_LANGUAGE = {
    "en": ("-eng.", "/eng/", "_eng.", "_e.", "-e.", "lang=eng", "lang=en", "/en/"),
    "fr": ("-fra.", "/fra/", "_fra.", "_f.", "-f.", "lang=fra", "lang=fr", "/fr/"),
}


def _is_switch_script(url: str) -> bool:
    """A language toggle that is a script answering with the other language of whatever page sent the reader
    (the Gazette's `/cgi-bin/language.pl`), not a page of its own: the same link on every page."""
    from urllib.parse import urlsplit

    path = urlsplit(url).path.lower()
    return "/cgi-bin/" in path or path.endswith((".pl", ".cgi"))


def swap_language(url: str, own: str, lang: str) -> str | None:
    """The page's URL in `lang` by the site's own naming (`…/notice-avis-eng.html` → `…-fra.html`), or None
    when its URL names no language."""
    if own not in _URL_LANGUAGE or lang not in _URL_LANGUAGE:
        return None
    for mine, theirs in zip(_URL_LANGUAGE[own], _URL_LANGUAGE[lang], strict=True):
        at = url.rfind(mine)
        if at > url.find("//") + 1:
            return url[:at] + theirs + url[at + len(mine) :]
    return None


def alternates(doc: etree._Element, url: str) -> dict[str, str]:
    """The page's versions in other languages, {"fr": absolute URL}: its `<link rel="alternate" hreflang>`,
    canada.ca's language toggle (`#wb-lng a[lang]`), or a provincial site's `<a hreflang>` / `<a lang>` link.
    A toggle that is a switching script (the same link on every page) stands for the page's own URL in the
    other language, when the URL names its language. The page's own language (`<html lang>`) is left out."""
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
            target = urljoin(url, href)
            if _is_switch_script(target):
                swapped = swap_language(url, own, code)
                if swapped is None:
                    return
                target = swapped
            found[code] = target

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
