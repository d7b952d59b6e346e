"""AutoThrottle that keeps each host's own delay as its floor.

Why: Scrapy's AutoThrottle adapts every slot's delay between DOWNLOAD_DELAY and AUTOTHROTTLE_MAX_DELAY; a host
given a slower pace of its own (`[crawl] host_delays`, Scrapy's DOWNLOAD_SLOTS) would be sped up to the global
floor by its first fast answers. Here a slot never goes below its configured delay."""

from __future__ import annotations

from typing import Any

from scrapy.extensions.throttle import AutoThrottle
from scrapy.http import Request, Response
from scrapy.spiders import Spider


class HostAwareAutoThrottle(AutoThrottle):
    def _response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        super()._response_downloaded(response, request, spider)
        key, slot = self._get_slot(request, spider)
        floor = self._floors().get(key or "", {}).get("delay")
        if slot is not None and floor is not None and slot.delay < float(floor):
            slot.delay = float(floor)

    def _floors(self) -> dict[str, Any]:
        return self.crawler.settings.getdict("DOWNLOAD_SLOTS")
