"""Bytes into a document: the charset a page is really in, the document without what a server wrote around
it, and one parse with libxml2's HTML parser. Why a module of its own: every later step reads the text this
decides, so a wrong charset here would read as every accented word of a French page changing."""

from __future__ import annotations

import re

from lxml import etree

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


_UTF8 = {"utf-8", "utf8", "utf_8"}


def effective_encoding(body: bytes, declared: str | None) -> str:
    """The charset the bytes are in: the declared one (UTF-8 when none is) unless the bytes say otherwise.

    - declared single-byte Latin, bytes valid UTF-8 with non-ASCII characters: UTF-8. A server that mislabels
      canada.ca's UTF-8 for a night ("RÃ©sident") must not look like a content change; valid multi-byte UTF-8
      is vanishingly rare in real Latin-1 text.
    - declared (or assumed) UTF-8, but most of the non-ASCII bytes are not UTF-8 (a Windows-1252 page, an
      archived capture served with the archive's default): the charset they are in (`_real_charset`: the
      page's own <meta charset>, then Windows-1252), so "Résidence" is read, not "R\ufffdsidence". A
      UTF-8 page with a stray byte or two stays UTF-8 (the stray byte is replaced, the rest is right)."""
    enc = (declared or "utf-8").lower()
    if body.isascii():
        return declared or "utf-8"
    if enc in _SINGLE_BYTE:
        try:
            body.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            pass
    elif enc in _UTF8 and not _mostly_utf8(body):
        return _real_charset(body)
    return declared or "utf-8"


def _mostly_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
        return True
    except UnicodeDecodeError:
        pass
    text = body.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    return sum(1 for ch in text if ch > "\x7f") - bad > bad  # more valid non-ASCII characters than invalid


def _real_charset(body: bytes) -> str:
    """The charset of bytes that are not UTF-8: the one the document declares itself (<meta charset>, an XML
    declaration: beautifulsoup4's EncodingDetector reads them as browsers do) when the bytes decode in it,
    else Windows-1252 — what a Canadian government page that is not UTF-8 is written in — else Latin-1, which
    decodes anything. Why not a statistical guess: on a short French page it picks Windows-1250, where "à"
    is "ŕ"."""
    from bs4.dammit import EncodingDetector

    own = EncodingDetector.find_declared_encoding(body, is_html=True)
    for charset in (own, "windows-1252"):
        # (a page that calls itself UTF-16 but arrived as 8-bit bytes would "decode" into nonsense)
        if charset and charset.lower() not in _UTF8 and not charset.lower().startswith(("utf-16", "utf-32")):
            try:
                body.decode(charset)
                return charset.lower()
            except (UnicodeDecodeError, LookupError):
                continue
    return "iso-8859-1"


def guessed_charset(body: bytes, declared: str | None, effective: str) -> str | None:
    """The charset read instead of a declared (or assumed) UTF-8 that the bytes are not in, or None. Stored
    in a version's metadata, so its earlier versions are read the same way before they are compared."""
    declared_enc = (declared or "utf-8").lower()
    return effective if declared_enc in _UTF8 and effective.lower() not in _UTF8 else None


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


def parse_html(body: bytes | str, encoding: str | None = None, *, decided: bool = False) -> etree._Element:
    """Parse once with libxml2's HTML parser into plain lxml elements (no per-element Python class
    lookups). `decided`: the caller trimmed the body (`trim_outside_document`) and `encoding` is its
    effective charset (`effective_encoding`), so neither is done twice."""
    if isinstance(body, str):
        body = trim_outside_document(body.encode("utf-8")).decode("utf-8")
    elif not decided:
        body = trim_outside_document(body)
    if isinstance(body, bytes):
        charset = encoding if decided and encoding else effective_encoding(body, encoding)
        parser = etree.HTMLParser(encoding=charset, remove_comments=True, remove_pis=True)
    else:
        parser = etree.HTMLParser(remove_comments=True, remove_pis=True)
    root = etree.fromstring(body, parser)
    if root is None:  # an empty document
        root = etree.fromstring("<html><body></body></html>", etree.HTMLParser())
    return root
