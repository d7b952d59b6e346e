"""A loopback stand-in for a web archive (the Wayback Machine's CDX API and raw `id_` captures), and the
Innovation Stream story as an archive would hold it.

The archive answers what the real one does: `/cdx/search/cdx?url=…&output=json&from=…&to=…` with
`filter=statuscode:200&collapse=digest`, a header row naming the fields, then one row per capture;
`/web/<timestamp>id_/<url>` with the capture's bytes and its original Content-Type. It can answer 429 with
Retry-After first, and answer slowly (to be killed midway); it records every request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from policywatch.monitor.demo import LATER, _md, _shell, gcweb_page, markdown_to_html

CANADA = "https://www.canada.ca"
HUB = f"{CANADA}/en/immigration-refugees-citizenship/news/2023/06/canadas-tech-talent-strategy.html"
PILOT = (
    f"{CANADA}/en/immigration-refugees-citizenship/corporate/publications-manuals/operational-bulletins-manuals/"
    "temporary-residents/foreign-workers/public-policy-competitiveness-economy/innovation-stream-pilot.html"
)
CODES = (
    f"{CANADA}/en/immigration-refugees-citizenship/corporate/publications-manuals/operational-bulletins-manuals/"
    "temporary-residents/foreign-workers/exemption-codes.html"
)
RELEASED = (
    "The Innovation Stream pilot opened on March 22, 2024. Employers of the Global Hypergrowth Project can "
    "hire workers in TEER 0, 1, 2 or 3 occupations on employer-specific work permits of up to 5 years under "
    "LMIA exemption code C88. Applicants pay the $155 work permit processing fee."
)
MAINTENANCE = (
    b"<!DOCTYPE html><html><head><title>We'll be back soon - Canada.ca</title></head><body>"
    b"<h1>Service temporarily unavailable</h1><p>Maintenance.</p></body></html>"
)
ARCHIVE_ERROR = (
    b"<!DOCTYPE html><html><head><title>Wayback Machine</title></head><body><p>Got an HTTP 302 response at "
    b"crawl time</p><p>Redirecting to...</p></body></html>"
)


def digest(body: bytes) -> str:
    return base64.b32encode(hashlib.sha1(body).digest()).decode()


@dataclass
class Stored:
    timestamp: str
    original: str
    body: bytes
    ctype: str = "text/html; charset=UTF-8"


@dataclass
class FakeArchive:
    captures: list[Stored] = field(default_factory=list)
    requests: list[tuple[float, str]] = field(default_factory=list)
    throttle_first: int = 0  # answer the first N requests with 429 and Retry-After
    retry_after: int = 1
    slow: float = 0.0  # seconds before each capture's answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, url: str, timestamp: str, body: bytes, ctype: str = "text/html; charset=UTF-8") -> None:
        self.captures.append(Stored(timestamp, url, body, ctype))

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.requests.append((time.monotonic(), path))
            if self.throttle_first > 0:
                self.throttle_first -= 1
                return 429, {"Retry-After": str(self.retry_after)}, b"Too Many Requests"
        parts = urlsplit(path)
        if parts.path == "/cdx/search/cdx":
            return self._cdx(parse_qs(parts.query))
        if parts.path.startswith("/web/"):
            if self.slow:
                time.sleep(self.slow)
            return self._capture(path[len("/web/") :])
        return 404, {}, b"not found"

    def _cdx(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        target = query["url"][0].lower()
        start, end = query.get("from", [""])[0], query.get("to", ["99999999999999"])[0]
        rows = [["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"]]
        last = None
        for c in sorted(self.captures, key=lambda c: c.timestamp):
            if urlsplit(c.original)._replace(scheme="").geturl().removeprefix("//").lower() != target:
                continue
            if not (c.timestamp[: len(start)] >= start and c.timestamp[: len(end)] <= end):
                continue
            d = digest(c.body)
            if "collapse" in query and d == last:
                continue
            last = d
            rows.append(
                [
                    "ca,canada)" + urlsplit(c.original).path,
                    c.timestamp,
                    c.original,
                    c.ctype.split(";")[0],
                    "200",
                    d,
                    str(len(c.body)),
                ]
            )
        return 200, {"Content-Type": "application/json"}, json.dumps(rows).encode()

    def _capture(self, rest: str) -> tuple[int, dict[str, str], bytes]:
        ts, _, original = rest.partition("id_/")
        original = unquote(original)
        for c in self.captures:
            if c.timestamp == ts and c.original == original:
                return 200, {"Content-Type": c.ctype}, c.body
        return 404, {"Content-Type": "text/html"}, b"<html><title>Wayback Machine</title>not archived</html>"

    def capture_requests(self) -> list[str]:
        return [p for _, p in self.requests if p.startswith("/web/")]


def page(md: str, night: int, date: str) -> bytes:
    title, body = markdown_to_html(md)
    return gcweb_page(_shell(night), title, body, date).encode("utf-8")


def innovation_story(archive: FakeArchive) -> None:
    """The Tech Talent Strategy hub from its announcement (June 27, 2023: details "released later"), through
    a furniture-only capture and an archive error page, to the pilot's release (March 22, 2024: C88, TEER,
    the $155 fee), a maintenance page and the recovery; the pilot's instructions page from March 22, 2024; the
    exemption codes table gaining its C88 row the same day. Captures listed twice (http and https, and the
    /content/canadasite/ alias) as archives do."""
    hub = _md("tech-talent-strategy-backgrounder")
    released = hub.replace(LATER, RELEASED)
    codes = _md("exemption-codes")
    codes_before = "\n".join(ln for ln in codes.splitlines() if "| Innovation Stream pilot |" not in ln)
    pilot = _md("innovation-stream-pilot")

    a = page(hub, 1, "2023-06-27")
    archive.add(HUB, "20230627153000", a)
    archive.add(HUB.replace("https:", "http:"), "20230627153000", a)  # the same capture under http://
    archive.add(HUB, "20230901120000", page(hub, 2, "2023-06-27"))  # furniture only
    archive.add(HUB, "20231115080000", ARCHIVE_ERROR)  # the archive's own page, listed as a 200
    archive.add(HUB, "20240322170000", page(released, 3, "2024-03-22"))  # details released, $155
    archive.add(HUB, "20240501020000", MAINTENANCE)  # a maintenance page served with 200
    recovered = page(released, 1, "2024-03-22")
    archive.add(HUB, "20240615090000", recovered)  # recovery: the same content as on March 22
    alias = HUB.replace(f"{CANADA}/en/", f"{CANADA}/content/canadasite/en/")
    archive.add(alias, "20240701090000", page(released, 2, "2024-03-22"))  # the AEM alias, same content

    archive.add(CODES, "20230627160000", page(codes_before, 1, "2023-06-20"))
    archive.add(CODES, "20231201100000", page(codes_before, 2, "2023-06-20"))
    archive.add(CODES, "20240322180000", page(codes, 3, "2024-03-22"))  # the C88 row
    archive.add(CODES, "20240322180000", page(codes, 3, "2024-03-22"))  # listed twice

    archive.add(PILOT, "20240322190000", page(pilot, 1, "2024-03-22"))
    archive.add(PILOT, "20240501030000", MAINTENANCE)
    archive.add(PILOT, "20240801120000", page(pilot, 2, "2024-03-22"))
