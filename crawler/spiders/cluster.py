"""The crawl worker of a distributed pass: the watchlist spider, fed from a shared Redis frontier (scrapy-redis).

`policywatch worker` starts it as `scrapy crawl cluster_worker -a config=… -a run_id=N` with scrapy-redis's
Scheduler and RFPDupeFilter on keys that carry the pass id (so nothing leaks into the next night). It reads the
coordinator's seeds (JSON: url, kind, source, depth) from `seeds_key`, follows links into the same shared queue,
and closes after `MAX_IDLE_TIME_BEFORE_CLOSE` seconds without work. Per-page work (extract, compare, store)
runs in this worker's item pipeline, exactly as on one machine.
"""
from __future__ import annotations

import json
from typing import Any, AsyncIterator

from scrapy.crawler import Crawler
from scrapy_redis.spiders import RedisMixin

from crawler.spiders.watchlist import WatchlistSpider
from storage import open_database
from storage import queries as q


class ClusterWorkerSpider(RedisMixin, WatchlistSpider):
    name = "cluster_worker"
    filter_duplicates = True

    def __init__(self, *args: Any, seeds_key: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not seeds_key:
            raise ValueError("cluster_worker needs -a seeds_key=… (policywatch worker passes it)")
        self.redis_key = seeds_key
        self.validators: dict[str, tuple[str | None, str | None]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> "ClusterWorkerSpider":
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.setup_redis(crawler)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        """Nothing up front: seeds arrive from Redis when the spider is idle (RedisMixin.spider_idle)."""
        db = open_database(self.pw_config.storage_url)
        try:
            with db.session() as s:
                # Read whole: seeds arrive one by one, in no order the worker could batch.
                self.validators = q.validators(s)  # conditional GET works exactly as on one machine
        finally:
            db.dispose()
        return
        yield  # an async generator that yields nothing

    def make_request_from_data(self, data: bytes) -> Any:
        seed = json.loads(data)
        url, kind = seed["url"], seed.get("kind", "page")
        if kind in ("sitemap", "feed"):
            return self._source_request(url, kind)
        return self._request(url, seed.get("source", "watch"), int(seed.get("depth", 0)), self.validators)
