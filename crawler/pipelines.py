"""The item pipeline: each FetchResult goes through monitor.pagework (extract, hash, compare, store) in one
transaction per page, in page-work processes (`crawl.page_workers`: by default one, plus one per further core while
page work falls behind; see crawler.workers — in a pass's crawl the first is the pass process, monitor.pageserve)
or, with `page_workers = 0`, on one thread of the crawl process. When the spider runs without a run id (plain `scrapy crawl watchlist`), the pipeline opens and closes a run itself so
the history stays complete.

With page-work processes and the pass's crawl plan (monitor.crawlplan: the pass ran it, so the run is open and the
plan says whether it is the first) the crawl process never opens the database, and storage, SQLAlchemy and the page
work are imported only by the page-work processes; the other cases import them here when they need them."""
from __future__ import annotations

import asyncio
import json
import os
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler

from crawler.items import FetchResult
from crawler.workers import PageWorkerDied, PageWorkerPool, PassChannel

log = logging.getLogger(__name__)


class StorePipeline:
    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.db: Any = None  # storage.Database, when this process needs the history itself
        self.work: Any = None  # monitor.pagework.PageWork, with page_workers = 0
        self.pool: PageWorkerPool | None = None
        self.own_run = False
        self.errors = 0
        self.first_error: str | None = None
        self.stopping: asyncio.Future[None] | None = None  # the crawl's early stop, once a write can never succeed
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagework")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "StorePipeline":
        return cls(crawler)

    def open_spider(self) -> None:
        spider = self.crawler.spider
        config = spider.pw_config
        processes = config.crawl.page_worker_count()
        first_run = getattr(spider, "first_run", None)
        if spider.run_id is None or first_run is None or not processes:
            from storage import open_database
            from storage import queries as q

            self.db = open_database(config.storage_url)
            with self.db.session() as s:
                if first_run is None:
                    first_run = not q.has_completed_run(s)
                if spider.run_id is None:
                    spider.run_id = q.open_run(s, config.digest()).id
                    self.own_run = True
        if processes:
            # The default (-1: up to one per core) starts one and adds more while page work falls behind; an
            # explicit count starts them all.
            start = 1 if config.crawl.page_workers == -1 else processes
            # Started by a pass, the first of them is the pass process itself (monitor.pageserve says why).
            channel = PassChannel.from_setting(self.crawler.settings.get("POLICYWATCH_PAGE_WORK_FDS"))
            self.pool = PageWorkerPool(config, spider.run_id, first_run, processes, start, channel)
        else:
            from monitor.pagework import PageWork

            self.work = PageWork(self.db, config, spider.run_id, first_run=first_run)

    async def process_item(self, item: Any) -> Any:
        """Page work runs in the page-work processes (or on one worker thread), so the reactor keeps downloading
        meanwhile. A page that cannot be stored is logged and counted; the run is then marked failed."""
        if not isinstance(item, FetchResult) or (self.pool is None and self.work is None):
            return item
        stats = self.crawler.stats
        try:
            if self.pool is not None:
                outcome = await self.pool.process(item)
            else:
                assert self.work is not None
                outcome = await asyncio.wrap_future(self.executor.submit(self.work.process, item))
        except Exception as exc:
            from storage.db import describe_error, is_fatal_storage_error  # only once a page could not be stored

            self.errors += 1
            self.first_error = self.first_error or f"{item.url}: {describe_error(exc)}"
            stats.inc_value("policywatch/page_errors")
            fatal = is_fatal_storage_error(exc) or (isinstance(exc, PageWorkerDied) and exc.fatal)
            log.error("could not store the result for %s; nothing was written for it: %s", item.url, exc,
                      exc_info=not fatal)
            if fatal and self.stopping is None:  # every later page would fail the same way
                log.error("stopping the crawl: %s", describe_error(exc))
                self.stopping = asyncio.ensure_future(self.crawler.engine.close_spider_async(reason="storage_error"))
            return item
        stats.inc_value(f"policywatch/result/{outcome.result}")
        stats.inc_value(f"policywatch/outcome/{outcome.outcome}")
        item.body = None  # free memory: the body is stored (or not needed) by now
        return item

    def close_spider(self) -> None:
        self.executor.shutdown(wait=True)
        if self.pool is not None:
            self.pool.shutdown()
            self.crawler.stats.set_value("policywatch/page_work_batches", self.pool.batches_sent)
            self.crawler.stats.set_value("policywatch/page_work_processes", len(self.pool.workers))
            self.crawler.stats.set_value("policywatch/page_work_processes_started", self.pool.spawned())
        self._write_result()
        if self.db is None:
            return
        spider = self.crawler.spider
        if self.own_run:
            from monitor.health import crawl_health
            from storage import queries as q

            with self.db.session() as s:
                health = crawl_health(s, spider.run_id, spider.pw_config)
                q.finish_run(s, spider.run_id, "completed" if not self.errors else "failed",
                             f"{self.errors} pages could not be stored" if self.errors else None, health)
        self.db.dispose()

    def _write_result(self) -> None:
        """Tell the pass (which owns the run) how many pages could not be stored: `POLICYWATCH_RESULT_FILE`.
        Why a file: the pages that failed left no row to count, and the database may be what failed."""
        path = self.crawler.settings.get("POLICYWATCH_RESULT_FILE")
        if not path:
            return
        try:
            data = json.dumps({"page_errors": self.errors, "first_error": self.first_error}).encode()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # beside the logs: the operator's only
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError as exc:  # a full disk: the pass sees no result file and fails the run
            log.error("could not write the crawl result file %s: %s", path, exc)
