"""Downloader middlewares: the allowed-domains fence and Retry-After.

Why our own fence: Scrapy's OffsiteMiddleware ignores `allowed_domains` entries with a port, and policywatch
must never request anything outside the configured scheme/host/port, redirects included.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as _ScrapyRobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from policywatch.monitor.retryafter import retry_after
from policywatch.monitor.urls import AllowedDomains

log = logging.getLogger(__name__)


class OffsiteRequest(IgnoreRequest):
    """A request (or redirect) outside the allowed domains."""


class AllowedDomainsMiddleware:
    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self._allowed: AllowedDomains | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AllowedDomainsMiddleware:
        return cls(crawler)

    @property
    def allowed(self) -> AllowedDomains:
        if self._allowed is None:
            entries = self.crawler.settings.getlist("POLICYWATCH_ALLOWED_DOMAINS")
            self._allowed = AllowedDomains(entries)
        return self._allowed

    def process_request(self, request: Request) -> None:
        if request.url.endswith("/robots.txt") and self.allowed.allows(request.url):
            return None
        if not self.allowed.allows(request.url):
            redirected = request.meta.get("redirect_urls")
            self.crawler.stats.inc_value("policywatch/offsite_dropped")
            if redirected:
                log.warning(
                    "dropped redirect from %s to %s: outside allowed domains", redirected[0], request.url
                )
                raise OffsiteRequest(f"redirect to {request.url} is outside the allowed domains")
            log.warning("dropped request to %s: outside allowed domains", request.url)
            raise OffsiteRequest(f"{request.url} is outside the allowed domains")
        return None


class RetryAfterMiddleware:
    """Honour `Retry-After` on 429/503 by delaying the retry (capped), before RetryMiddleware re-schedules it
    (its order must be above RetryMiddleware's 550: responses pass through middlewares from high to low).

    Scrapy's RetryMiddleware retries immediately; a server that says "come back in 30 s" deserves that pause.
    The wait is applied as a download slot delay for that host, so other hosts continue, and only for the time
    the server named: then the slot's own delay returns (a 3 s Retry-After must not slow the rest of the
    night).
    """

    MAX_WAIT = 120.0

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self._restores: dict[
            str, tuple[float, Any]
        ] = {}  # slot key -> (its delay before, pending restore call)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status in (429, 503) and b"Retry-After" in response.headers:
            wait = retry_after(response.headers.get(b"Retry-After"))
            if wait is not None:
                wait = min(wait, self.MAX_WAIT)
                self.crawler.stats.inc_value("policywatch/retry_after_honoured")
                downloader = self.crawler.engine.downloader if self.crawler.engine else None
                key = downloader.get_slot_key(request) if downloader else None
                slot = downloader.slots.get(key) if downloader and key is not None else None
                if key is not None and slot is not None:
                    self._hold(key, slot, wait)
                    log.info("server asked to wait %.1fs (Retry-After) for %s", wait, request.url)
        return response

    def _hold(self, key: str, slot: Any, wait: float) -> None:
        """Space the slot's requests by `wait` for `wait` seconds, then give it back its own delay."""
        from twisted.internet import reactor
        from twisted.internet.interfaces import IReactorTime

        before, pending = self._restores.pop(key, (slot.delay, None))
        if pending is not None and pending.active():
            pending.cancel()
        slot.delay = max(before, wait)

        def restore() -> None:
            self._restores.pop(key, None)
            slot.delay = before
            log.info("Retry-After over for %s: its delay is %.1fs again", key, before)

        clock = cast(IReactorTime, reactor)  # the installed reactor provides IReactorTime
        # (zope interfaces declare their methods without `self`, which mypy reads as one argument short)
        self._restores[key] = (before, clock.callLater(wait, restore))  # type: ignore[arg-type]


class RobotsTxtMiddleware(_ScrapyRobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with every waiter given its own copy of the parser.

    Why: in Scrapy 2.19 (asyncio reactor), all requests that arrive while robots.txt is being fetched await
    the same Deferred; the first awaiter's adapter consumes its result, so the third and later requests
    receive `None` and are sent *without* a robots check (found by bench/faults.py: a disallowed page was
    fetched when three or more pages of the host were queued at once). Forking the Deferred per waiter keeps
    the result.
    """

    async def robot_parser(self, request: Request):
        netloc = urlparse_cached(request).netloc
        pending = self._parsers.get(netloc)
        if isinstance(pending, Deferred):
            mine: Deferred = Deferred()

            def relay(result):
                mine.callback(result)
                return result  # pass it on, unchanged, to the next waiter

            pending.addBoth(relay)
            return await maybe_deferred_to_future(mine)
        return await super().robot_parser(request)
