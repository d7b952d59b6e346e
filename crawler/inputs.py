"""Where a crawl's settings, watchlist and history come from: the pass's crawl plan and its settings on stdin, or the
config file and the history database.

Why a module of its own: a nightly crawl started by the pass never parses the config file and never opens the
database (monitor.crawlplan says why); a crawl started by hand (`scrapy crawl watchlist -a config=…`), a cluster
worker, or a crawl whose plan does not match or breaks off reads them itself, and must request exactly the same
pages with the same validators. The spider asks this object and does not care which it was.
"""
from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path
from typing import Any, Iterator

from crawler.seen import SeenURLs
from monitor.config import Config, Watch, load_config
from monitor.crawlplan import CrawlPlan, PlanError, Validators
from monitor.memory import give_back_free_memory
from monitor.urls import normalize_url

log = logging.getLogger(__name__)
#: Watches whose validators are read (from the crawl plan, or the history) at once, just before their requests.
VALIDATOR_CHUNK = 500


class CrawlInputs:
    """The config (without its watchlist when a plan carries it), the plan, the "seen" URLs, and the history
    lookups the plan did not answer. `close()` when the crawl ends."""

    def __init__(self, config_path: str | None, only: tuple[str, ...] = (), plan: str | None = None,
                 settings_on_stdin: bool = False):
        self.config_path = config_path
        self.only = only
        self.db: Any = None  # storage.Database, opened only when the history must be asked (see _history)
        # The pass hands over its settings on stdin with a plan (monitor.passrun.crawl_settings): no config parse.
        given = self._settings_from_pass() if plan and settings_on_stdin else None
        self.config: Config = given[0] if given else self._config_from_file()
        #: What the pass read from the history for this crawl, and the watches (monitor.crawlplan); None: the crawl
        #: reads the config and asks the history itself.
        self.plan: CrawlPlan | None = None
        if plan:
            try:
                self.plan = CrawlPlan(Path(plan), digest=self.config.digest(),
                                      watches=given[1] if given else len(self.config.watches), only=only)
            except PlanError as exc:
                log.warning("%s; reading the history directly instead", exc)
        if self.plan is None and given:  # no usable plan: the watches come from the config file after all
            self.config = self._config_from_file()
        # Everything this pass will request counts as seen from the start (requests are made lazily): a link or
        # sitemap entry read meanwhile must not fetch a watched page a second time.
        self.seen = SeenURLs(self.plan.watch_keys() if self.plan is not None else self.config.watch_keys())
        if self.plan is not None and self.config.watches:  # the plan streams them: keep no watchlist here
            self.config = self.config.without_watchlist()
            give_back_free_memory()  # what parsing the watchlist took, for the whole crawl otherwise
        #: Whether no run has completed yet (from the plan); None: the pipeline asks the history.
        self.first_run: bool | None = self.plan.first_run if self.plan is not None else None

    def _config_from_file(self) -> Config:
        config = load_config(self.config_path)
        return config.subset(self.only) if self.only else config

    def _settings_from_pass(self) -> tuple[Config, int] | None:
        """(config without its watchlist, number of watches), pickled by the pass on this process's stdin."""
        try:
            config, count = pickle.load(sys.stdin.buffer)
            if not isinstance(config, Config) or not isinstance(count, int):
                raise TypeError(f"{type(config).__name__}, {type(count).__name__}")
            return config, count
        except Exception as exc:  # the pass died, or an old one: the file says the same, slower
            log.warning("the pass's settings did not arrive on stdin (%s: %s); reading %s", type(exc).__name__, exc,
                        self.config_path)
            return None

    def known_pages(self) -> tuple[list[tuple[str, str]], Validators | None]:
        """The pages discovered on earlier nights (url, key) and, from the plan, their validators (None: ask)."""
        if self.plan is not None:
            return ([(p.url, p.key) for p in self.plan.known],
                    {p.key: (p.etag, p.last_modified) for p in self.plan.known if p.etag or p.last_modified})
        from storage import queries as q

        with self._history().session() as s:
            return [(p.url, p.url_key) for p in q.known_discovered_pages(s, self.config.discovery.max_pages)], None

    def watch_chunks(self) -> Iterator[tuple[list[Watch], Validators]]:
        """The watches in the config's order, a few hundred at a time, with the ETag / Last-Modified of their last
        good fetch: from the crawl plan, else from the config and the history — also for the rest of a plan that
        ends early (a damaged plan costs a database connection, never a wrong or a lost request)."""
        done = 0
        if self.plan is not None:
            try:
                while True:
                    watches, validators = self.plan.next_watches(VALIDATOR_CHUNK)
                    if not watches:
                        return
                    yield watches, validators
            except PlanError as exc:
                done = self.plan.read
                log.warning("%s; reading the rest of the watchlist from the config and the history", exc)
                self.plan.close()
                self.plan = None
        watches = self.config.watches or self._config_watches()
        for first in range(done, len(watches), VALIDATOR_CHUNK):
            chunk = list(watches[first:first + VALIDATOR_CHUNK])
            yield chunk, self.history_validators([normalize_url(w.url) for w in chunk])

    def _config_watches(self) -> tuple[Watch, ...]:
        """The watchlist read again from the config file (the plan that carried it broke off)."""
        watches = self._config_from_file().watches
        self.seen.update(normalize_url(w.url) for w in watches)  # those past the break were not in `seen` yet
        return watches

    def history_validators(self, url_keys: list[str]) -> Validators:
        """The ETag / Last-Modified of these pages' last good fetch, from the history database."""
        from storage import queries as q

        with self._history().session() as s:
            return q.validators(s, url_keys)

    def candidate_validators(self, url_key: str) -> Validators:
        """For a page found during the crawl. With a plan it has no history to ask (the plan lists every page
        discovered before, and they are in `seen`): an unconditional GET, which is always correct."""
        return {} if self.plan is not None else self.history_validators([url_key])

    def _history(self) -> Any:
        """The history database, opened on first use for read-only lookups. Imported here: a crawl with a plan
        never loads SQLAlchemy."""
        if self.db is None:
            from storage import open_database

            self.db = open_database(self.config.storage_url)
        return self.db

    def close(self) -> None:
        if self.plan is not None:
            self.plan.close()
        if self.db is not None:
            self.db.dispose()
