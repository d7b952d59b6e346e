"""Archive captures: what the CDX API lists, cleaned of the archive's quirks (pure, no I/O).

Quirks handled here: the same timestamp listed twice; the same content under http:// and https:// (the CDX
`urlkey` is scheme-less, so both come back); canada.ca's `/content/canadasite/` alias of every page, listed
separately; captures of identical content one after another (`collapse=digest` only collapses neighbours of
one listing).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit, urlunsplit

CANADASITE = "/content/canadasite"
#: How far past now a capture may be dated (clocks differ by minutes, not days); later is refused, or one bad
#: row would become the version every live pass compares with.
FUTURE_SLACK = timedelta(days=1)
_DIGITS14 = re.compile(r"[0-9]{14}")
#: A CDX row is a few hundred bytes; a "row" this long is a broken or hostile listing.
MAX_ROW_CHARS = 1024 * 1024


@dataclass(frozen=True, order=True)
class Capture:
    """One archived capture of a page."""

    timestamp: str  # 14 digits, UTC, as the archive writes it
    original: str  # the URL the archive fetched
    digest: str = ""  # the archive's content digest (SHA-1, base 32), or a WARC payload digest
    mimetype: str = ""
    status: str = ""

    @property
    def key(self) -> str:
        """What identifies the capture in the history (`fetches.archive_capture`)."""
        return f"{self.timestamp} {self.digest}".strip()

    @property
    def when(self) -> datetime:
        return parse_timestamp(self.timestamp)


def parse_timestamp(ts: str) -> datetime:
    """A 14-digit archive timestamp (shorter ones are padded: "2024" is 2024-01-01 00:00:00) as UTC."""
    digits = (ts + "0101000000"[len(ts) - 4 :]) if 4 <= len(ts) < 14 else ts
    return datetime.strptime(digits[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def archive_day(value: str) -> str:
    """A --from/--to date (2023-06-27, 2023-06-27T10:00:00, 20230627) as the CDX API's digits, a prefix:
    "20230627" is the whole day. Raises ValueError for anything that is not a real date."""
    value = value.strip()
    if not re.fullmatch(
        r"[0-9]{4}(?:-?[0-9]{2}(?:-?[0-9]{2}(?:[T ]?[0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2})?)?)?)?)?Z?", value
    ):
        raise ValueError(f"{value!r} is not a date (write it as 2023-06-27, or archive digits 20230627)")
    digits = "".join(ch for ch in value if ch in "0123456789")
    try:
        parse_timestamp(digits)
    except ValueError:
        raise ValueError(f"{value!r} is not a real date") from None
    return digits


def timestamp_problem(ts: str, now: datetime) -> str | None:
    """Why a capture's timestamp cannot be stored (None: it can): 14 ASCII digits, a real time, not after now
    (a day of slack)."""
    if not _DIGITS14.fullmatch(ts):
        return f"timestamp {ts[:20]!r} is not 14 digits"
    try:
        when = parse_timestamp(ts)
    except ValueError:
        return f"timestamp {ts} is not a real date"
    if when > now + FUTURE_SLACK:
        return f"timestamp {ts} is in the future"
    return None


def _page_key(url: str) -> tuple[str, int | None, str, str] | None:
    """What makes two addresses the same page: the host without `www.`, a port other than the scheme's,
    the path without a trailing slash (and without canada.ca's /content/canadasite), the query."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    if port in (80, 443):
        port = None
    host = parts.hostname.lower().removeprefix("www.")
    path = parts.path or "/"
    if host == "canada.ca" and path.startswith(CANADASITE + "/"):
        path = path[len(CANADASITE) :]
    return host, port, path.rstrip("/") or "/", parts.query


def same_page(original: str, url: str) -> bool:
    """Whether an archive row's `original` is the watched page `url` or one of its aliases (http/https,
    `www.`, canada.ca's /content/canadasite/, a trailing slash). Anything else is another site's page."""
    key = _page_key(original)
    return key is not None and key == _page_key(url)


@dataclass
class Screened:
    """Captures fit to store, and why the others were skipped."""

    captures: list[Capture] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def screen(captures: Iterable[Capture], url: str, now: datetime | None = None) -> Screened:
    """Keep the captures of `url` (or its aliases) dated in the past; say why each other one is skipped."""
    now = now or datetime.now(UTC)
    out = Screened()
    for c in captures:
        problem = timestamp_problem(c.timestamp, now)
        if problem is None and not same_page(c.original, url):
            problem = f"{c.original[:200]!r} is not {url} or one of its aliases"
        if problem:
            out.skipped.append(problem)
        else:
            out.captures.append(c)
    return out


def aliases(url: str) -> list[str]:
    """The URL and the other addresses the same page has: canada.ca serves every page also under
    /content/canadasite/ (the AEM path), and archives list the two separately."""
    parts = urlsplit(url)
    out = [url]
    if parts.hostname in ("www.canada.ca", "canada.ca"):
        if parts.path.startswith(CANADASITE + "/"):
            out.append(urlunsplit(parts._replace(path=parts.path[len(CANADASITE) :])))
        elif parts.path.startswith(("/en/", "/fr/")):
            out.append(urlunsplit(parts._replace(path=CANADASITE + parts.path)))
    return out


def cdx_query(archive: str, url: str, *, start: str | None, end: str | None) -> str:
    """The CDX API request listing `url`'s successful captures, one per distinct content in a row."""
    parts = urlsplit(url)
    target = urlunsplit(("", parts.netloc, parts.path, parts.query, "")).removeprefix("//")
    params = [("url", target), ("output", "json"), ("filter", "statuscode:200"), ("collapse", "digest")]
    if start:
        params.append(("from", start))
    if end:
        params.append(("to", end))
    return f"{archive}/cdx/search/cdx?" + "&".join(f"{k}={quote(v, safe=':/')}" for k, v in params)


class CdxReader:
    """The CDX API's JSON output, read as it arrives: `feed` chunks, then `finish`. The first row names the
    fields (urlkey, timestamp, original, mimetype, statuscode, digest, length); an empty listing is `[]`.
    Why a stream: a page with many captures lists tens of megabytes, and only the rows are kept."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._json = json.JSONDecoder()
        self._buf = ""
        self._state = "start"  # start → rows → end
        self._index: dict[str, int] | None = None
        self.captures: list[Capture] = []

    def feed(self, chunk: bytes) -> None:
        self._buf += self._decoder.decode(chunk)
        self._parse(final=False)

    def finish(self) -> list[Capture]:
        self._buf += self._decoder.decode(b"", final=True)
        self._parse(final=True)
        if self._state == "rows":
            raise ValueError("the archive's capture list ends before its closing bracket")
        return self.captures

    def _parse(self, *, final: bool) -> None:
        pos, buf = 0, self._buf
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                if buf[pos] == "," and self._state != "rows":
                    raise ValueError("the archive's capture list is not JSON (a comma out of place)")
                pos += 1
            if pos >= len(buf):
                break
            if self._state == "start":
                if buf[pos] != "[":
                    raise ValueError("the archive's capture list is not JSON (no opening bracket)")
                self._state, pos = "rows", pos + 1
                continue
            if self._state == "end":
                raise ValueError("the archive's capture list has text after its closing bracket")
            if buf[pos] == "]":
                self._state, pos = "end", pos + 1
                continue
            try:
                row, end = self._json.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if final or len(buf) - pos > MAX_ROW_CHARS:
                    raise ValueError(f"the archive's capture list is not JSON ({exc})") from None
                break  # the row is not all here yet
            self._row(row)
            pos = end
        self._buf = buf[pos:]

    def _row(self, row: object) -> None:
        if not isinstance(row, list):
            raise ValueError("the archive's capture list has a row that is not a list")
        if self._index is None:
            if "timestamp" not in row or "original" not in row:
                raise ValueError("the archive's capture list has no header row naming timestamp and original")
            self._index = {str(name): i for i, name in enumerate(row)}
            return

        def value(name: str) -> str:
            i = self._index.get(name) if self._index else None
            return str(row[i]) if i is not None and i < len(row) else ""

        self.captures.append(
            Capture(
                value("timestamp"), value("original"), value("digest"), value("mimetype"), value("statuscode")
            )
        )


def parse_cdx(payload: bytes) -> list[Capture]:
    """A whole CDX JSON listing at once (CdxReader in one go)."""
    if not payload.strip():
        return []
    reader = CdxReader()
    reader.feed(payload)
    return reader.finish()


def clean(captures: list[Capture]) -> list[Capture]:
    """Oldest first; one capture per timestamp (https preferred); a capture whose content is the one before
    it dropped (the same digest under the other scheme or the alias, or listed twice)."""
    by_time: dict[str, Capture] = {}
    for c in sorted(captures):
        kept = by_time.get(c.timestamp)
        if kept is None or (c.original.startswith("https:") and not kept.original.startswith("https:")):
            by_time[c.timestamp] = c
    out: list[Capture] = []
    for c in sorted(by_time.values()):
        if out and c.digest and c.digest == out[-1].digest:
            continue
        out.append(c)
    return out


def spread(captures: list[Capture], limit: int | None) -> list[Capture]:
    """At most `limit` captures, spread evenly over the period, the oldest and the newest always kept."""
    if limit is None or len(captures) <= limit:
        return captures
    if limit <= 1:
        return captures[-1:]
    step = (len(captures) - 1) / (limit - 1)
    return [captures[round(i * step)] for i in range(limit)]


def raw_url(archive: str, capture: Capture) -> str:
    """The capture as the site served it (`id_`: no archive banner, no rewritten links)."""
    return f"{archive}/web/{capture.timestamp}id_/{capture.original}"
