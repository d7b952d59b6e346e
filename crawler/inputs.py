"""What a crawl reads before it requests anything: its request (monitor.handoff: the config file as of the
pass's digest, the run, a job's subset), the config, and from the history the pages discovered on earlier
nights and each page's validators (ETag / Last-Modified) for conditional GETs.

The crawl process reads them itself, so `policywatch run` and `scrapy crawl watchlist -a config=…` request
exactly the same pages with the same validators; a crawl run by hand opens its own run (`standalone`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from policywatch.monitor.config import Config, Watch, load_config
from policywatch.monitor.handoff import CrawlRequest, HandoffError
from policywatch.monitor.urls import normalize_url
from policywatch.storage import Database, open_database
from policywatch.storage import queries as q

#: Watches whose validators are read at once, just before their requests (one query per chunk, not per page).
VALIDATOR_CHUNK = 500
#: Normalized URL -> (ETag, Last-Modified) of the last good fetch.
Validators = dict[str, tuple[str | None, str | None]]


class CrawlInputs:
    """The request, the config (a scheduled job's subset with `only`), the history database, and the "seen"
    URLs: everything this pass will request counts as seen from the start, so a link or sitemap entry read
    before a watch's turn never fetches that page twice. `close()` when the crawl ends."""

    def __init__(self, request: CrawlRequest, config: Config, db: Database):
        self.request = request
        self.config: Config = config.subset(request.only) if request.only else config
        self.db = db
        self.seen: set[str] = set(self.config.watch_keys())

    @classmethod
    def for_request(cls, request: CrawlRequest) -> CrawlInputs:
        """A pass's crawl: the config must be the one the pass read (its run records that digest)."""
        config = load_config(request.config_path)
        if config.digest() != request.config_digest:
            raise HandoffError(
                f"the config {request.config_path} changed since the pass started (digest {config.digest()}, "
                f"the run's is {request.config_digest}): nothing was crawled; the next pass reads the new one"
            )
        return cls(request, config, open_database(config.storage_url))

    @classmethod
    def standalone(cls, config_path: str | None) -> CrawlInputs:
        """A crawl run by hand: it opens its own run (and finishes it when it closes)."""
        config = load_config(config_path)
        db = open_database(config.storage_url)
        with db.session() as s:
            run_id = q.open_run(s, config.digest()).id
        where = str(Path(config.path).resolve()) if config.path else str(config_path)
        request = CrawlRequest(
            config_path=where, config_digest=config.digest(), run_id=run_id, standalone=True
        )
        return cls(request, config, db)

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
