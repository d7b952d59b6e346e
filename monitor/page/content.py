"""Step one: a response's bytes into `Content` — the same type for HTML and JSON, so what follows never asks
which it was. A response that is not the page (a maintenance or WAF page, malformed JSON, no main content, a
type that is neither) raises `Unreadable` with the reason a person reads."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policywatch.monitor.config import Config, Watch
from policywatch.monitor.detection import extract
from policywatch.monitor.detection.jsondiff import (
    MalformedJSON,
    parse_json,
    records_hash,
    records_text,
    to_records,
)
from policywatch.monitor.detection.quality import soft_error_reason
from policywatch.monitor.fetchresult import FetchResult
from policywatch.storage import bodypack

#: Bump when extraction changes what it reads from <main>, so stored fingerprints stop matching (each page is
#: parsed once more; its content, compared like with like, is unchanged unless it was read wrong).
#: 2: a page whose bytes are not the UTF-8 they are declared in is read in its real charset (decode).
EXTRACTION_VERSION = "2"
_TITLE = re.compile(rb"<title\b[^>]*>.*?</title\s*>", re.I | re.S)


class Unreadable(Exception):
    """The response is not the page's content (a soft error): the reason, for the fetch row."""


@dataclass(frozen=True, slots=True)
class Content:
    """What one response says, whatever its kind: the hash compared night to night, the blocks (HTML) or the
    records document (JSON), the text stored once, the metadata, and which extractor read it."""

    extractor: str  # gcweb | generic | json
    content_hash: str
    title: str | None
    blocks: Any
    text: str
    meta: dict[str, Any]

    @property
    def is_json(self) -> bool:
        return self.extractor == "json"

    def title_over(self, old: str | None) -> str | None:
        """The page's title once this content is stored: a JSON file keeps the title it has (its records carry
        none), an HTML page takes the one it shows."""
        return old if self.is_json and old else (self.title or old)


#: How a response's kind is told when the watch says `auto`: the first rule that matches (content type, URL).
KINDS: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
    ("json", lambda ct, url: "json" in ct or url.split("?")[0].lower().endswith(".json")),
    ("html", lambda ct, url: not ct or "html" in ct),
)


def content_kind(content_type: str | None, url: str, configured: str = "auto") -> str | None:
    """`json`, `html`, or None for a type policywatch does not read. A watch's `kind = "json"` wins; a watch
    that says `html` is still refused a PDF."""
    ct = (content_type or "").lower()
    if configured == "json":
        return "json"
    rules = KINDS if configured == "auto" else [k for k in KINDS if k[0] == configured]
    return next((kind for kind, matches in rules if matches(ct, url)), None)


def main_fingerprint(body: bytes, encoding: str | None, rules_digest: str) -> str | None:
    """A hash of the bytes extraction reads on a GCWeb page: <title> and <main>…</main>, with the charset, the
    noise rules and the extraction version. Equal fingerprints mean equal content, so a night where only the
    page furniture changed (rotated scripts, analytics, menus, "Date modified": the common case on canada.ca)
    is recognised without parsing. Why bytes and not a parse: it costs a regex search and a hash."""
    span = bodypack.main_span(body)
    if span is None:
        return None
    title = _TITLE.search(body, 0, span[0])
    h = hashlib.sha256()
    for part in (
        EXTRACTION_VERSION.encode(),
        (encoding or "").lower().encode(),
        rules_digest.encode(),
        title.group(0) if title else b"",
        body[span[0] : span[1]],
    ):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def read_html(
    config: Config, body: bytes, url: str, encoding: str | None, *, require_gcweb: bool = False
) -> tuple[extract.Extraction, str | None]:
    """The page's content with the noise rules that apply to it (their digest in its meta), and why it is
    not the page when it is not (a soft error: maintenance, WAF, almost empty). Raises NoMainContent."""
    drops, ignores, rules_digest = config.rules_for(url)
    ex = extract.extract_html(
        body, url, encoding=encoding, extra_noise=drops, ignore_patterns=ignores, require_gcweb=require_gcweb
    )
    ex.meta["rules"] = rules_digest
    headings = [b["text"] for b in ex.blocks if b["kind"] in ("h1", "h2")]
    return ex, soft_error_reason(ex.title, ex.text, headings)


def read_json(body: bytes, url: str, watch: Watch | None) -> Content:
    """A JSON file as records (the watch's records path and id field): its title is the file's name."""
    try:
        doc = to_records(
            parse_json(body), watch.json_records if watch else None, watch.json_id if watch else None
        )
    except MalformedJSON as exc:
        raise Unreadable(str(exc)) from exc
    meta = {"extractor": "json", "records": len(doc["records"])}
    return Content("json", records_hash(doc), url.rsplit("/", 1)[-1], doc, records_text(doc), meta)


def read_content(
    config: Config, r: FetchResult, *, watch: Watch | None, require_gcweb: bool = False
) -> Content:
    """The response (a live fetch, an archive capture) as `Content`, or `Unreadable` with the reason it is not
    the page."""
    body, url, content_type, encoding = r.body or b"", r.url, r.content_type, r.encoding
    kind = content_kind(content_type, url, watch.kind if watch else "auto")
    if kind == "json":
        return read_json(body, url, watch)
    if kind is None:
        raise Unreadable(f"unsupported content type {content_type!r}: not HTML or JSON")
    try:
        ex, reason = read_html(config, body, url, encoding, require_gcweb=require_gcweb)
    except extract.NoMainContent as exc:
        raise Unreadable(f"{exc} (selector drift or an error page)") from exc
    if reason:
        raise Unreadable(reason)
    return Content(ex.extractor, ex.content_hash, ex.title, ex.blocks, ex.text, ex.meta)


def reread_html(config: Config, raw: bytes, url: str) -> extract.Extraction | None:
    """An earlier body read again with today's rules (None when it has no main content today)."""
    drops, ignores, _ = config.rules_for(url)
    try:
        return extract.extract_html(raw, url, extra_noise=drops, ignore_patterns=ignores)
    except extract.NoMainContent:
        return None
