"""The item pipeline: each FetchResult goes through monitor.pagework (extract, hash, compare, store), one
transaction per page. A page that must be read (parsed, compared) goes to one worker thread of the crawl
process with its own database connection, so the reactor keeps downloading meanwhile; on SQLite a 304, a
failure or an unchanged body (no parse) is settled at once, on the reactor's thread. A night is bounded by
politeness (one request per `download_delay` per host), not by this work. The run is the spider's (its
request's); what could not be stored goes into the spider's CrawlReport, which the spider hands to the pass
when the crawl ends."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

from scrapy.crawler import Crawler

from policywatch.crawler.items import FetchResult
from policywatch.monitor.handoff import CrawlReport
from policywatch.monitor.pagework import PageWork, Pending
from policywatch.storage import queries as q
from policywatch.storage.db import describe_error, is_fatal_storage_error

if TYPE_CHECKING:
    from policywatch.crawler.spiders.watchlist import WatchlistSpider

log = logging.getLogger(__name__)


class StorePipeline:
    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.work: PageWork | None = None
        self.settle_here = False
        self.report: CrawlReport | None = None  # the spider's: what the pass reads when the crawl ends
        self.stopping: asyncio.Future[None] | None = (
            None  # the crawl's early stop, once a write can never succeed
        )
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagework")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        spider = cast("WatchlistSpider", self.crawler.spider)
        db = spider.inputs.db
        with db.session() as s:
            first_run = not q.has_completed_run(s)
        self.work = PageWork(db, spider.pw_config, spider.run_id, first_run=first_run)
        self.report = spider.report
        # The paths that need no parse are settled on the reactor's thread only when a statement costs
        # microseconds (SQLite, a local file): on a database server each one waits on the network, which must
        # not hold up the downloads, so there every page goes to the worker thread.
        self.settle_here = db.engine.dialect.name == "sqlite"

    async def process_item(self, item: Any) -> Any:
        """A page that cannot be stored is logged and counted; the run is then marked failed."""
        if not isinstance(item, FetchResult) or self.work is None or self.report is None:
            return item
        stats = self.crawler.stats
        try:
            # Handing each page of an unchanged night to the worker and back cost more than its work
            # (BENCHMARKS.md): what needs no parse is settled here, on the reactor's thread (see open_spider).
            settled = self.work.settle(item) if self.settle_here else None
            outcome = (
                await asyncio.wrap_future(self.executor.submit(self.work.process, item, settled))
                if settled is None or isinstance(settled, Pending)
                else settled
            )
        except Exception as exc:
            self.report.page_failed(item.url, describe_error(exc))
            stats.inc_value("policywatch/page_errors")
            fatal = is_fatal_storage_error(exc)
            log.error(
                "could not store the result for %s; nothing was written for it: %s",
                item.url,
                exc,
                exc_info=not fatal,
            )
            if fatal and self.stopping is None:  # every later page would fail the same way
                log.error("stopping the crawl: %s", describe_error(exc))
                engine = self.crawler.engine
                assert engine is not None  # items flow only while the engine runs
                self.stopping = asyncio.ensure_future(engine.close_spider_async(reason="storage_error"))
            return item
        self.report.pages_stored += 1
        stats.inc_value(f"policywatch/result/{outcome.result}")
        stats.inc_value(f"policywatch/outcome/{outcome.outcome}")
        item.body = None  # free memory: the body is stored (or not needed) by now
        return item

    def close_spider(self) -> None:
        self.executor.shutdown(wait=True)  # every page handed over is stored (or failed) before the report
