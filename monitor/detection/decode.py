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
