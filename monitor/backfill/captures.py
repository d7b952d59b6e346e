"""Archive captures: what the CDX API lists, cleaned of the archive's quirks (pure, no I/O).

Quirks handled here: the same timestamp listed twice; the same content under http:// and https:// (the CDX
`urlkey` is scheme-less, so both come back); canada.ca's `/content/canadasite/` alias of every page, listed
separately; captures of identical content one after another (`collapse=digest` only collapses neighbours of
one listing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit, urlunsplit

CANADASITE = "/content/canadasite"


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
    """A --from/--to date (2023-06-27, 2023-06-27T10:00:00, 20230627) as the CDX API's digits."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) < 4 or len(digits) > 14:
        raise ValueError(f"{value!r} is not a date (write it as 2023-06-27)")
    return digits


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


def parse_cdx(payload: bytes) -> list[Capture]:
    """The CDX API's JSON output: the first row names the fields (urlkey, timestamp, original, mimetype,
    statuscode, digest, length); an empty listing is `[]`."""
    text = payload.decode("utf-8", "replace").strip()
    if not text:
        return []
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the archive's capture list is not JSON ({exc})") from None
    if not isinstance(rows, list) or not rows:
        return []
    header = rows[0]
    if not isinstance(header, list) or "timestamp" not in header or "original" not in header:
        raise ValueError("the archive's capture list has no header row naming timestamp and original")
    index = {name: i for i, name in enumerate(header)}

    def field(row: list[str], name: str) -> str:
        i = index.get(name)
        return str(row[i]) if i is not None and i < len(row) else ""

    return [
        Capture(
            field(r, "timestamp"),
            field(r, "original"),
            field(r, "digest"),
            field(r, "mimetype"),
            field(r, "statuscode"),
        )
        for r in rows[1:]
        if isinstance(r, list) and field(r, "timestamp").isdigit()
    ]


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
