"""The archive client: the CDX listing and the raw captures, one request at a time, politely.

Why not Scrapy: a backfill reads a known list of captures from one host, in order (each capture is compared
with the one before it), at one request per `[archive] delay` — a loop, not a crawl (no discovery, no
concurrency, no reactor). The standard library's HTTP client does it; what a crawl would add here is handled
in a few lines: the delay, retries with backoff, the archive's 429 and its Retry-After, and no request ever
leaving the archive's host (a redirect elsewhere is refused).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urljoin, urlsplit

from policywatch.monitor.backfill.captures import (
    Capture,
    CdxReader,
    Screened,
    aliases,
    cdx_query,
    clean,
    raw_url,
    screen,
)
from policywatch.monitor.config import ArchiveSettings
from policywatch.monitor.retryafter import retry_after

MAX_BODY = 32 * 1024 * 1024
_CHUNK = 64 * 1024
MAX_RETRY_AFTER = 600.0  # seconds: a longer wait is not honoured in one go (the backfill can resume later)


class ArchiveError(Exception):
    """The archive could not answer (after retries), or answered with something unusable."""


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str | None
    encoding: str | None
    url: str
    retry_after: float | None = None  # seconds, from a 429's or 503's Retry-After
    listing: CdxReader | None = None  # a CDX listing, read as it arrived (its body is not kept)


class _SameHost(urllib.request.HTTPRedirectHandler):
    """Follow redirects within the archive (a capture redirects to its nearest timestamp), never away."""

    def __init__(self, host: str):
        self.host = host

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        target = urljoin(req.full_url, newurl)
        if _origin(target) != self.host:
            raise ArchiveError(f"the archive redirected off its host to {target}: not followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class ArchiveClient:
    """One request per `delay` seconds to the archive, whatever answers come back."""

    def __init__(
        self,
        settings: ArchiveSettings,
        user_agent: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_wait: Callable[[str], None] | None = None,
    ):
        self.settings = settings
        self.base = settings.url.rstrip("/")
        self.host = _origin(self.base)
        self.user_agent = user_agent
        self.sleep, self.clock = sleep, clock
        self.on_wait = on_wait or (lambda message: None)
        self._next_at = 0.0
        self.requests = 0
        self._opener = urllib.request.build_opener(_SameHost(self.host))

    # --- listing -----------------------------------------------------------------------------------------
    def list_captures(self, url: str, *, start: str | None = None, end: str | None = None) -> Screened:
        """Every successful capture of `url` (and of its canada.ca alias) in the period, cleaned, oldest
        first; rows of other pages or with impossible or future timestamps skipped, each with its reason."""
        found: list[Capture] = []
        for address in aliases(url):
            r = self.get(cdx_query(self.base, address, start=start, end=end), listing=True)
            if r.status == 404:
                continue
            if r.status != 200:
                raise ArchiveError(f"the archive's capture list for {address} answered HTTP {r.status}")
            found += r.listing.finish() if r.listing is not None else []
        screened = screen(found, url)
        screened.captures = clean(screened.captures)
        return screened

    def fetch(self, capture: Capture) -> Response:
        return self.get(raw_url(self.base, capture))

    # --- one polite request --------------------------------------------------------------------------------
    def get(self, url: str, *, listing: bool = False) -> Response:
        if _origin(url) != self.host:
            raise ArchiveError(f"{url} is not on the archive's host {self.host}: not requested")
        attempt = 0
        while True:
            self._wait_turn()
            try:
                r = self._request(url, listing=listing)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                if attempt >= self.settings.retries:
                    raise ArchiveError(f"{url}: {getattr(exc, 'reason', exc)}") from None
                self._back_off(attempt, f"{url}: {getattr(exc, 'reason', exc)}")
                attempt += 1
                continue
            if r.status == 429 or r.status >= 500:
                if attempt >= self.settings.retries:
                    return r
                if r.retry_after is not None:
                    wait = min(r.retry_after, MAX_RETRY_AFTER)
                    self.on_wait(f"the archive asked to wait {wait:.0f}s (HTTP {r.status}, Retry-After)")
                    self._next_at = max(self._next_at, self.clock() + wait)
                else:
                    self._back_off(attempt, f"HTTP {r.status} from the archive")
                attempt += 1
                continue
            return r

    def _request(self, url: str, *, listing: bool = False) -> Response:
        """One request with a total deadline (`[archive] timeout`): a server that drips a byte a second is
        cut off at the deadline, not after a timeout per read."""
        req = urllib.request.Request(
            url, headers={"User-Agent": self.user_agent, "Accept-Encoding": "identity"}
        )
        self.requests += 1
        deadline = self.clock() + self.settings.timeout
        try:
            with self._opener.open(req, timeout=self.settings.timeout) as resp:
                if listing and resp.status == 200:
                    reader = CdxReader()
                    decode = _decoder(resp.headers, url)
                    try:
                        for chunk in _chunks(resp, deadline, self.clock, url):
                            reader.feed(decode(chunk))
                        reader.feed(decode(b""))  # the decoder's tail
                    except ValueError as exc:
                        raise ArchiveError(f"{url}: {exc}") from None
                    r = _response(resp.status, resp.headers, b"", resp.geturl())
                    r.listing = reader
                    return r
                body = _read_all(resp, deadline, self.clock, url)
                return _response(resp.status, resp.headers, body, resp.geturl())
        except urllib.error.HTTPError as err:
            body = _read_all(err, deadline, self.clock, url) if err.fp else b""
            r = _response(err.code, err.headers, body, url)
            r.retry_after = retry_after(err.headers.get("Retry-After") if err.headers else None)
            return r

    def _wait_turn(self) -> None:
        now = self.clock()
        if now < self._next_at:
            self.sleep(self._next_at - now)
        self._next_at = max(now, self._next_at) + self.settings.delay

    def _back_off(self, attempt: int, why: str) -> None:
        wait = max(self.settings.delay, 1.0) * (2**attempt)
        self.on_wait(f"{why}; retrying in {wait:.0f}s")
        self._next_at = max(self._next_at, self.clock() + wait)


def _origin(url: str) -> str:
    """scheme://host:port, the default port written out: what "the archive's host" means (two servers on one
    machine are two hosts)."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _chunks(resp: Any, deadline: float, clock: Callable[[], float], url: str) -> Iterator[bytes]:
    """The response body as it arrives, until the deadline."""
    read = getattr(resp, "read1", None) or resp.read
    while True:
        left = deadline - clock()
        if left <= 0:
            raise ArchiveError(f"{url}: no complete answer within [archive] timeout; not stored")
        _socket_timeout(resp, left)
        try:
            chunk = read(_CHUNK)
        except TimeoutError:
            raise ArchiveError(
                f"{url}: no complete answer within [archive] timeout; not stored (tried again next time)"
            ) from None
        if not chunk:
            return
        yield chunk


def _socket_timeout(resp: Any, seconds: float) -> None:
    """Each read waits at most until the deadline (best effort: the socket is not public API)."""
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(0.01, seconds))
        except OSError:
            pass


def _read_all(resp: Any, deadline: float, clock: Callable[[], float], url: str) -> bytes:
    """The whole body, decoded from its Content-Encoding, at most MAX_BODY bytes either way."""
    decode = _decoder(resp.headers, url)
    parts, size = [], 0
    for chunk in _chunks(resp, deadline, clock, url):
        data = decode(chunk)
        size += len(data)
        if size > MAX_BODY:
            raise ArchiveError(f"{url}: the capture is larger than {MAX_BODY // (1024 * 1024)} MB")
        parts.append(data)
    parts.append(decode(b""))  # the decoder's tail (an empty chunk flushes it)
    body = b"".join(parts)
    if len(body) > MAX_BODY:
        raise ArchiveError(f"{url}: the capture is larger than {MAX_BODY // (1024 * 1024)} MB")
    return body


class _Inflate:
    """gzip or deflate, decoded as it arrives and never past MAX_BODY (a small bomb stays small)."""

    def __init__(self, wbits: int, url: str):
        self.z = zlib.decompressobj(wbits)
        self.url = url

    def __call__(self, chunk: bytes) -> bytes:
        try:
            out = self.z.decompress(chunk, MAX_BODY + 1) if chunk else self.z.flush()
        except zlib.error as exc:
            raise ArchiveError(f"{self.url}: the compressed capture is corrupt ({exc}); not stored") from None
        if len(out) > MAX_BODY or self.z.unconsumed_tail:
            raise ArchiveError(f"{self.url}: the capture is larger than {MAX_BODY // (1024 * 1024)} MB")
        return out


def _decoder(headers: Message | None, url: str) -> Callable[[bytes], bytes]:
    """What undoes the response's Content-Encoding (as Scrapy's HttpCompressionMiddleware does); an
    encoding it cannot undo refuses the capture rather than store compressed bytes as the page."""
    coding = (headers.get("Content-Encoding") if headers else None) or ""
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return lambda chunk: chunk
    if coding in ("gzip", "x-gzip"):
        return _Inflate(16 + zlib.MAX_WBITS, url)
    if coding == "deflate":
        return _Inflate(zlib.MAX_WBITS, url)
    raise ArchiveError(f"{url}: Content-Encoding {coding!r} cannot be decoded here; the capture is refused")


def _response(status: int, headers: Message, body: bytes, url: str) -> Response:
    ctype = headers.get("Content-Type") if headers else None
    charset = headers.get_content_charset() if headers else None
    return Response(status, body, ctype, charset, url)
