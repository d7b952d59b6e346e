"""A Scrapy extension for tests: when the spider closes, write the crawl process's loaded modules to PROBE_FILE.
Added to a real crawl command with `-s EXTENSIONS=…` (tests/test_crawl_process.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from scrapy import signals


class ModulesProbe:
    def __init__(self, path: str):
        self.path = Path(path)

    @classmethod
    def from_crawler(cls, crawler):
        probe = cls(crawler.settings.get("PROBE_FILE"))
        crawler.signals.connect(probe.closed, signal=signals.spider_closed)
        return probe

    def closed(self, spider) -> None:
        loaded = sorted(name for name, module in sys.modules.items() if module is not None)  # None: marked absent
        self.path.write_text(json.dumps(loaded), encoding="utf-8")
