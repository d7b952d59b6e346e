"""What crosses between a pass and its crawl child, typed and versioned: the pass writes a `CrawlRequest`
(which config, as of which digest, for which run, which job's subset, where to report), the crawl writes a
`CrawlReport` (pages stored, pages it could not store with their errors, discovery sources it could not use).

Why files and not arguments or log lines: a request is more than argv should carry, and a report must reach
the pass even when the database is what failed; each is validated on read, so a stale or foreign file is a
clear error, never a guess. Both are the operator's only (0600, beside the logs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: Bump when a field changes meaning; a reader refuses another version by name.
VERSION = 1
#: A report lists this many failures of each kind (it counts them all).
LISTED = 50

M = TypeVar("M", bound="Handoff")


class HandoffError(Exception):
    """A request or report that cannot be read: missing, not JSON, another version, a field wrong."""


class Handoff(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)
    version: Literal[1] = 1  # VERSION

    def write(self, path: Path) -> None:
        """Written whole or not at all (a temporary file renamed), 0600."""
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.model_dump_json(indent=1))
        os.replace(tmp, path)

    @classmethod
    def read(cls: type[M], path: Path) -> M:
        what = cls.__name__
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise HandoffError(f"the {what} {path} cannot be read: {exc.strerror or exc}") from None
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(the file)"
            raise HandoffError(f"the {what} {path} is not valid: {where}: {first['msg']}") from None


class CrawlRequest(Handoff):
    """What the pass asks of its crawl."""

    config_path: str
    #: The config's digest as the pass read it (stored on the run): the crawl refuses a file changed since.
    config_digest: str
    run_id: int = Field(ge=1)
    #: A scheduled job's pass: only the watches under these URL prefixes, and no discovery. Empty: all.
    only: tuple[str, ...] = ()
    #: Where the crawl writes its CrawlReport; None for a crawl run by hand (it has no pass to tell).
    report_path: str | None = None
    #: A crawl run by hand (`scrapy crawl watchlist -a config=…`): it opened its run and finishes it itself.
    standalone: bool = False


class PageFailure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    error: str


class SourceFailure(BaseModel):
    """A sitemap or feed the crawl could not use (it never touches a page's history: this is its record)."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    url: str
    message: str


class CrawlReport(Handoff):
    """What the crawl tells the pass when it ends."""

    run_id: int = Field(ge=1)
    pages_stored: int = 0
    pages_failed: int = 0
    #: The first LISTED pages that could not be stored (nothing written for them; fetched again next pass).
    failures: list[PageFailure] = []
    discovery_failed: list[SourceFailure] = []

    def page_failed(self, url: str, error: str) -> None:
        self.pages_failed += 1
        if len(self.failures) < LISTED:
            self.failures.append(PageFailure(url=url, error=error[:500]))

    def source_failed(self, kind: str, url: str, message: str) -> None:
        if len(self.discovery_failed) < LISTED:
            self.discovery_failed.append(SourceFailure(kind=kind, url=url, message=message[:300]))
