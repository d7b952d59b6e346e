"""The watchlist spider: fetches every watched URL (and pages discovered earlier), follows links inside the
configured prefixes to find new pages, and yields one FetchResult per URL, whatever happened to it.

Run it through `policywatch run` (which opens the run, hands the crawl a typed request — monitor.handoff — and
reads its report, then renders reports) or directly: `scrapy crawl watchlist -a config=policywatch.toml` (the
crawl then opens and finishes a run of its own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from twisted.internet.error import (
    ConnectError,
    ConnectionLost,
    DNSLookupError,
    TCPTimedOutError,
)
from twisted.internet.error import (
    TimeoutError as TxTimeoutError,
)
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from policywatch.crawler.discovery import Found
from policywatch.crawler.inputs import VALIDATOR_CHUNK, CrawlInputs, Validators
from policywatch.crawler.items import FetchResult
from policywatch.crawler.middlewares import OffsiteRequest
from policywatch.monitor.config import Config, Watch
from policywatch.monitor.handoff import CrawlReport, CrawlRequest
from policywatch.monitor.urls import normalize_url
from policywatch.storage import queries as q

log = logging.getLogger(__name__)
#: Statuses handed to the callback instead of being filtered (redirects are still followed by Scrapy).
HANDLED = [304] + list(range(400, 600))


def _header(headers: Any, name: bytes) -> str:
    """A response header as text ("" when absent): HTTP header bytes are Latin-1."""
    return (headers.get(name) or b"").decode("latin-1")


def configure_settings(crawler: Crawler, config: Config) -> None:
    """Apply `[crawl]` to Scrapy's settings (allowed before the crawler freezes them)."""
    c = config.crawl
    st = crawler.settings
    prio = "spider"
    st.set("USER_AGENT", c.user_agent, priority=prio)
    st.set("ROBOTSTXT_OBEY", c.obey_robots, priority=prio)
    st.set("CONCURRENT_REQUESTS_PER_DOMAIN", c.concurrency_per_domain, priority=prio)
    st.set("DOWNLOAD_DELAY", c.download_delay, priority=prio)
    # Scrapy keys its download slots by host name (no port): a host's own delay is its slot's
    slots = {host.split(":")[0]: {"delay": delay} for host, delay in c.host_delays}
    st.set("DOWNLOAD_SLOTS", slots, priority=prio)
    st.set("AUTOTHROTTLE_ENABLED", c.autothrottle, priority=prio)
    st.set("DOWNLOAD_TIMEOUT", c.timeout, priority=prio)
    st.set("RETRY_TIMES", c.retries, priority=prio)
    st.set("DOWNLOAD_MAXSIZE", c.max_size_mb * 1024 * 1024, priority=prio)
    st.set("DOWNLOAD_WARNSIZE", c.max_size_mb * 1024 * 1024 // 2, priority=prio)
    st.set("POLICYWATCH_ALLOWED_DOMAINS", list(c.allowed_domains), priority=prio)


def _url_date(url: str) -> str | None:
    """The date an undated entry's URL carries (the Gazette's issue folders: `/2026-09-26/`), if any."""
    import re

    found = re.search(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)", url)
    return found.group(1) if found else None


def _when(stamp: str | None) -> float:
    """A feed entry's date as a sort key (RSS's RFC 822 or Atom's ISO 8601); undated entries sort last."""
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    if not stamp:
        return 0.0
    try:
        when = parsedate_to_datetime(stamp)
    except (TypeError, ValueError):
        try:
            when = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
        except ValueError:
            return 0.0
    return when.timestamp() if when.tzinfo else when.replace(tzinfo=None).timestamp()


def classify_failure(failure: Failure) -> tuple[str, str]:
    """Map a download failure to an outcome class and a one-line message."""
    exc = failure.value
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OffsiteRequest):
        return ("offsite_redirect" if "redirect" in text else "blocked"), text
    if isinstance(exc, IgnoreRequest):
        if "robots.txt" in text:
            return "blocked", "forbidden by robots.txt"
        low = text.lower()
        if "max size" in low or "maxsize" in low or "larger than" in low:
            return "too_large", text  # includes decompression bombs (DOWNLOAD_MAXSIZE during decompression)
        if "max redirections" in low:
            return "http_error", f"redirect loop ({text})"
        return "blocked", text
    if (
        isinstance(exc, (TxTimeoutError, TCPTimedOutError))
        or "timeout" in type(exc).__name__.lower()
        or "took longer than" in text
    ):
        return "timeout", text
    if isinstance(exc, (DNSLookupError, ConnectError, ConnectionLost, ResponseFailed, ResponseNeverReceived)):
        if "maxsize" in text.lower() or "max size" in text.lower():
            return "too_large", text
        detail = "; ".join(str(r.value) for r in getattr(exc, "reasons", []) if hasattr(r, "value")) or text
        return "connection_error", f"{type(exc).__name__}: {detail}"[:500]
    if "cancel" in type(exc).__name__.lower() or "maxsize" in text.lower() or "max size" in text.lower():
        return "too_large", text
    return "connection_error", f"{type(exc).__name__}: {text}"[:500]


class WatchlistSpider(scrapy.Spider):
    name = "watchlist"

    def __init__(self, request: str | None = None, config: str | None = None, *args: Any, **kwargs: Any):
        """`request`: the pass's CrawlRequest file; without one (`-a config=…`, a crawl run by hand) the crawl
        opens a run of its own."""
        super().__init__(*args, **kwargs)
        self.inputs = (
            CrawlInputs.for_request(CrawlRequest.read(Path(request)))
            if request
            else CrawlInputs.standalone(config)
        )
        self.request: CrawlRequest = self.inputs.request
        self.run_id: int = self.request.run_id
        #: A scheduled job's pass: only the watches under these prefixes, no discovery.
        self.only: tuple[str, ...] = self.request.only
        self.report = CrawlReport(run_id=self.run_id)
        self.discovered = 0
        self.pw_config: Config = self.inputs.config
        self.seen = self.inputs.seen

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> WatchlistSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        configure_settings(crawler, spider.pw_config)
        crawler.signals.connect(spider._drop_below_log_level, signal=signals.spider_opened)
        return spider

    def _drop_below_log_level(self) -> None:
        """Scrapy opens its own loggers and the root logger to every level (the root each time it installs
        its handler, the last time just before the spider opens) and filters in its handler, so each
        request's DEBUG lines ("Crawled (304) <GET …>") were built and thrown away: they are dropped where
        they start."""
        level = self.crawler.settings.get("LOG_LEVEL") or logging.DEBUG
        for name in ("", "scrapy"):
            logging.getLogger(name).setLevel(level)

    def _request(
        self, url: str, source: str, depth: int, validators: Validators, watch: Watch | None = None
    ) -> scrapy.Request:
        headers = {}
        etag, last_modified = validators.get(normalize_url(url), (None, None))
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        self.seen.add(normalize_url(url))
        return scrapy.Request(
            url,
            callback=self.parse,
            errback=self.failed,
            headers=headers,
            dont_filter=True,
            meta={
                "pw_url": url,
                "pw_source": source,
                "pw_depth": depth,
                "pw_start": time.monotonic(),
                "pw_watch": watch,
                "handle_httpstatus_list": HANDLED,
            },
        )

    async def start(self) -> AsyncIterator[Any]:
        known = self.inputs.known_pages()
        known_todo = [
            (url, key) for url, key in known if key not in self.seen and self.pw_config.allowed.allows(url)
        ]
        self.seen.update(key for _, key in known_todo)  # (the watches are in `seen` since __init__)
        self.discovered += len(known_todo)
        for watches, validators in self.inputs.watch_chunks():
            for watch in watches:
                await self._room()
                yield self._request(watch.url, "watch", 0, validators, watch)
        disc = self.pw_config.discovery
        for kind, urls in (("sitemap", disc.sitemaps), ("feed", disc.feeds)):
            for url in urls:
                yield self._source_request(url, kind)
        for first in range(0, len(known_todo), VALIDATOR_CHUNK):
            chunk = known_todo[first : first + VALIDATOR_CHUNK]
            validators = self.inputs.validators([k for _, k in chunk])
            for url, _ in chunk:
                await self._room()
                yield self._request(url, "discovered", 1, validators)

    def closed(self, reason: str) -> None:
        """After the item pipeline has stored its last page (Scrapy closes it first): tell the pass, or finish
        the run this crawl opened itself."""
        try:
            if self.request.standalone:
                self._finish_own_run()
            elif self.request.report_path:
                self.report.write(Path(self.request.report_path))
        except OSError as exc:  # a full disk: the pass sees no report and fails the run
            log.error("could not write the crawl report %s: %s", self.request.report_path, exc)
        finally:
            self.inputs.close()

    def _finish_own_run(self) -> None:
        from policywatch.monitor.nightly.health import crawl_health

        failed = self.report.pages_failed
        with self.inputs.db.session() as s:
            health = crawl_health(s, self.run_id, self.pw_config)
            health["discovery_failures"] = [f.model_dump() for f in self.report.discovery_failed]
            status, message = (
                ("failed", f"{failed} pages could not be stored") if failed else ("completed", None)
            )
            q.finish_run(s, self.run_id, status, message, health)

    async def _room(self) -> None:
        """Wait while the downloader is full and the scheduler still holds requests (Scrapy's lazy start
        pattern). Why: the engine otherwise drains start() into the scheduler at once — 10,000 watches are
        10,000 Request objects with their headers and meta held for the whole pass, memory that grows with the
        watchlist."""
        engine = self.crawler.engine
        if engine is not None and engine.needs_backout():
            await self.crawler.signals.wait_for(signals.scheduler_empty)

    def _result(
        self, response: Response | None, request: scrapy.Request, outcome: str, message: str | None = None
    ) -> FetchResult:
        meta = request.meta
        started = meta.get("pw_start")
        url = meta.get("pw_url", request.url)
        r = FetchResult(
            url=url,
            source=meta.get("pw_source", "watch"),
            outcome=outcome,
            message=message,
            attempts=int(meta.get("retry_times", 0)) + 1,
            duration_ms=max(0, int((time.monotonic() - started) * 1000)) if started else None,
            watch=meta.get("pw_watch") or self.pw_config.watch_for(url),
        )
        if response is not None:
            r.status = response.status
            headers = response.headers
            r.content_type = _header(headers, b"Content-Type") or None
            r.etag = _header(headers, b"ETag") or None
            r.last_modified = _header(headers, b"Last-Modified") or None
            r.body = response.body
            r.encoding = getattr(response, "encoding", None)
        return r

    def parse(self, response: Response) -> Any:
        request = response.request
        assert request is not None  # a response Scrapy hands a callback carries its request
        status = response.status
        if status == 304:
            yield self._result(response, request, "not_modified")
            return
        if status >= 400:
            reason = f"HTTP {status}" + (" after retries" if request.meta.get("retry_times") else "")
            yield self._result(response, request, "http_error", reason)
            return
        result = self._result(response, request, "ok")
        twins = self._twins(response)
        if twins is not None:
            result.twins = twins  # recorded with the page, changed or not: [parity] pairs read it
        yield result
        for lang, url in (twins or {}).items():
            twin = self._candidate(url, via=f"{lang} twin of {response.url}", any_prefix=True)
            if twin is not None:
                yield twin
        yield from self._follow(response)

    def _twins(self, response: Response) -> dict[str, str] | None:
        """[parity]: a watched page's versions in the other official languages ({"fr": URL}, those in
        `[parity] languages` and inside the allowed domains), fetched too (as discovered pages, so later
        passes fetch them again) whatever the follow prefixes say. None: not looked for."""
        parity = self.pw_config.parity
        if not parity.on or response.meta.get("pw_source", "watch") != "watch":
            return None
        ctype = _header(response.headers, b"Content-Type").lower()
        if "html" not in ctype or not hasattr(response, "selector"):
            return None
        from policywatch.monitor.detection.headmeta import alternates

        try:
            found = alternates(response.selector.root, response.url)
        except (AttributeError, TypeError, ValueError):  # not a document lxml could read
            return None
        return {
            lang: url
            for lang, url in found.items()
            if lang in parity.languages and self.pw_config.allowed.allows(urldefrag(url)[0])
        }

    def _follow(self, response: Response) -> Any:
        disc = self.pw_config.discovery
        depth = response.meta.get("pw_depth", 0)
        if not disc.follow_prefixes or depth >= disc.depth or not hasattr(response, "xpath"):
            return
        ctype = _header(response.headers, b"Content-Type").lower()
        if "html" not in ctype:
            return
        for href in response.xpath("//a/@href").getall():
            url = urljoin(response.url, href.strip())
            request = self._candidate(url, via=f"link on {response.url}")
            if request is not None:
                request.meta["pw_depth"] = depth + 1
                yield request
            elif self.discovered >= disc.max_pages:
                return

    # --- discovery sources: sitemaps and feeds --------------------------------------------------------------
    def _source_request(self, url: str, kind: str, source: str | None = None) -> scrapy.Request:
        """A discovery source's request; `source`: the configured source it came from (a sitemap index's)."""
        return scrapy.Request(
            url,
            callback=self.parse_source,
            errback=self.source_failed,
            dont_filter=True,
            meta={"pw_discovery": kind, "pw_source_url": source or url},
        )

    def parse_source(self, response: Response) -> Any:
        """A sitemap (index) or a feed: every listed URL inside the follow prefixes is a candidate page."""
        from policywatch.crawler.discovery import read_feed, read_sitemap

        kind = response.meta["pw_discovery"]
        try:
            if kind == "sitemap":
                sm_type, entries = read_sitemap(
                    response.body, self.crawler.settings.getint("DOWNLOAD_MAXSIZE")
                )
            else:
                sm_type = "feed"
                entries = read_feed(response.body, _header(response.headers, b"Content-Type"))
        except ValueError as exc:
            self._source_problem(response.url, kind, str(exc))
            return
        self.crawler.stats.inc_value(f"policywatch/discovery/{kind}_entries", len(entries))
        source = response.meta.get("pw_source_url", response.url)
        if kind == "feed" and self.pw_config.discovery.issues_read(source):
            yield from self._issues(response, entries, source)
            return
        words = self.pw_config.discovery.keywords_for(source)
        for found in entries:
            url = urljoin(response.url, found.url)
            if sm_type == "sitemapindex":
                if self.pw_config.allowed.allows(url):
                    yield self._source_request(url, "sitemap", source=source)
                continue
            if not found.matches(words):  # the source's keywords: an entry about something else is not news
                self.crawler.stats.inc_value(f"policywatch/discovery/{kind}_filtered")
                continue
            request = self._candidate(url, via=f"{kind} {response.url}", lastmod=found.lastmod)
            if request is not None:
                yield request

    def _issues(self, response: Response, entries: list[Found], source: str) -> Any:
        """A feed whose entries are issues: the newest few issues' tables of contents are read (on the
        feed's hosts only), and their items are what the keywords choose from."""
        newest = sorted(entries, key=lambda f: _when(f.lastmod) or _when(_url_date(f.url)), reverse=True)
        for found in newest[: self.pw_config.discovery.issues_read(source)]:
            url = urljoin(response.url, found.url)
            if self.pw_config.allowed.allows(url):
                request = self._source_request(url, "issue", source=source)
                request.callback = self.parse_issue
                yield request

    def parse_issue(self, response: Response) -> Any:
        """An issue's table of contents: each item filed under or titled with one of the feed's keywords is
        a candidate page, like a feed entry."""
        from policywatch.crawler.discovery import read_issue

        if response.status != 200:  # an error page's links are not the issue's items
            self._source_problem(response.url, "issue", f"HTTP {response.status}")
            return
        try:
            items = read_issue(response.body, response.url)
        except ValueError as exc:
            self._source_problem(response.url, "issue", str(exc))
            return
        self.crawler.stats.inc_value("policywatch/discovery/issue_entries", len(items))
        words = self.pw_config.discovery.keywords_for(response.meta["pw_source_url"])
        for found in items:
            if not found.matches(words):
                self.crawler.stats.inc_value("policywatch/discovery/issue_filtered")
                continue
            request = self._candidate(found.url, via=f"issue {response.url}")
            if request is not None:
                yield request

    def _candidate(
        self, url: str, *, via: str, lastmod: str | None = None, any_prefix: bool = False
    ) -> scrapy.Request | None:
        disc = self.pw_config.discovery
        url = urldefrag(url)[0]
        if not url.startswith(("http://", "https://")) or not self.pw_config.allowed.allows(url):
            return None
        if (
            disc.follow_prefixes
            and not any_prefix
            and not any(url.startswith(p) for p in disc.follow_prefixes)
        ):
            return None
        if normalize_url(url) in self.seen:
            return None
        if self.discovered >= disc.max_pages:
            log.warning(
                "discovery.max_pages (%d) reached; not fetching %s (from %s)", disc.max_pages, url, via
            )
            return None
        self.discovered += 1
        log.info("discovered %s via %s%s", url, via, f" (lastmod {lastmod})" if lastmod else "")
        return self._request(url, "discovered", 1, self.inputs.validators([normalize_url(url)]))

    def _source_problem(self, url: str, kind: str, message: str) -> None:
        """A discovery source that fails is logged and counted; it never touches the pages' history."""
        log.error("discovery %s %s unusable: %s", kind, url, message)
        self.report.source_failed(kind, url, message)
        self.crawler.stats.inc_value(f"policywatch/discovery/{kind}_failed")

    def source_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        outcome, message = classify_failure(failure)
        self._source_problem(request.url, request.meta.get("pw_discovery", "source"), f"{outcome}: {message}")

    def failed(self, failure: Failure) -> Any:
        request = failure.request  # type: ignore[attr-defined]
        outcome, message = classify_failure(failure)
        log.warning("fetch failed for %s: %s (%s)", request.meta.get("pw_url", request.url), outcome, message)
        yield self._result(None, request, outcome, message)
