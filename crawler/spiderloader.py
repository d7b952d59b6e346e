"""Spiders by name, imported only when a crawl asks for one (Scrapy's `SPIDER_LOADER_CLASS`).

Why not Scrapy's own loader: it imports every module under `SPIDER_MODULES` before any crawl, so the nightly
`scrapy crawl watchlist` also imported the cluster worker spider and, through it, scrapy-redis and the Redis client
(≈ 7 MB of the crawl process's memory, on every machine, for a spider that runs only in a distributed pass).
The names are listed here instead; `scrapy list` still shows them all without importing any.
"""
from __future__ import annotations

from typing import Any

from scrapy import Request, Spider
from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

#: spider name → the import path of its class
SPIDERS: dict[str, str] = {
    "watchlist": "crawler.spiders.watchlist.WatchlistSpider",
    "cluster_worker": "crawler.spiders.cluster.ClusterWorkerSpider",
}


class NamedSpiderLoader:
    """Implements Scrapy's SpiderLoaderProtocol over the fixed table `SPIDERS`."""

    def __init__(self, spiders: dict[str, str]):
        self.spiders = dict(spiders)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> "NamedSpiderLoader":
        return cls(SPIDERS)

    def load(self, spider_name: str) -> type[Spider]:
        try:
            path = self.spiders[spider_name]
        except KeyError:
            raise KeyError(f"Spider not found: {spider_name} (policywatch's spiders: {', '.join(self.list())})") from None
        spider: Any = load_object(path)
        if spider.name != spider_name:  # the table and the class disagree: fail loudly, not with the wrong spider
            raise KeyError(f"{path} is named {spider.name!r}, not {spider_name!r}")
        return spider

    def list(self) -> list[str]:
        return sorted(self.spiders)

    def find_by_request(self, request: Request) -> list[str]:
        """Used by `scrapy fetch` / `scrapy parse` only; imports each spider to ask it."""
        return [name for name in self.list() if self.load(name).handles_request(request)]
