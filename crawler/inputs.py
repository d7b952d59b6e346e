"""What a crawl reads before it requests anything: the config file and, from the history, the pages discovered
on earlier nights and each page's validators (ETag / Last-Modified) for conditional GETs.

The crawl process reads them itself, so `policywatch run` and `scrapy crawl watchlist -a config=…` request
exactly the same pages with the same validators.
"""

from __future__ import annotations

from collections.abc import Iterator

from policywatch.monitor.config import Config, Watch, load_config
from policywatch.monitor.urls import normalize_url
from policywatch.storage import Database, open_database
from policywatch.storage import queries as q

#: Watches whose validators are read at once, just before their requests (one query per chunk, not per page).
VALIDATOR_CHUNK = 500
#: Normalized URL -> (ETag, Last-Modified) of the last good fetch.
Validators = dict[str, tuple[str | None, str | None]]


class CrawlInputs:
    """The config (a scheduled job's subset with `only`), the history database, and the "seen" URLs:
    everything this pass will request counts as seen from the start, so a link or sitemap entry read before a
    watch's turn never fetches that page twice. `close()` when the crawl ends."""

    def __init__(self, config_path: str | None, only: tuple[str, ...] = ()):
        config = load_config(config_path)
        self.config: Config = config.subset(only) if only else config
        self.db: Database = open_database(self.config.storage_url)
        self.seen: set[str] = set(self.config.watch_keys())

    def known_pages(self) -> list[tuple[str, str]]:
        """The pages discovered on earlier nights: (url, key)."""
        with self.db.session() as s:
            return [(p.url, p.url_key) for p in q.known_discovered_pages(s, self.config.discovery.max_pages)]

    def watch_chunks(self) -> Iterator[tuple[list[Watch], Validators]]:
        """The watches in the config's order, a few hundred at a time, with their validators."""
        watches = self.config.watches
        for first in range(0, len(watches), VALIDATOR_CHUNK):
            chunk = list(watches[first : first + VALIDATOR_CHUNK])
            yield chunk, self.validators([normalize_url(w.url) for w in chunk])

    def validators(self, url_keys: list[str]) -> Validators:
        """The ETag / Last-Modified of these pages' last good fetch."""
        with self.db.session() as s:
            return q.validators(s, url_keys)

    def close(self) -> None:
        self.db.dispose()
