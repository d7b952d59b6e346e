"""The crawl plan: what a crawl needs from the history, read by the pass and handed to its crawl in a file.

A crawl asks the history three things: whether any run has completed (a first pass notes new pages quietly), the
pages discovered on earlier nights (fetched again), and each page's last ETag / Last-Modified (sent as conditional
requests). The pass already has the database open, so it answers them before it starts the crawl and writes the
answers here, in the order the crawl makes its requests. Why a file and not the crawl's own queries: a crawl
process that reads the database carries SQLAlchemy, its ORM and the models (≈ 20 MB of its ≈ 105 MB) only for
those reads; the page-work processes do the storing. Why streamed: the crawl reads one line per request as it
makes it, so a 50,000-watch night never holds 50,000 validators.

The file (JSON lines, written to a temporary name and renamed): a header `{"format", "first_run", "digest",
"watches", "known"}`; `known` lines `[url, url_key, etag, last_modified]`, the discovered pages; then one line
`[url_key, etag, last_modified]` per watch, in the config's order. The reader checks the config digest, the
counts and every watch's key, so a plan that does not match its crawl's config is refused, never misapplied.

Only the standard library: the crawl process imports this module.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterable, Sequence

FORMAT = 1
CHUNK = 500  # watches whose validators the pass reads from the history in one query
Validators = dict[str, tuple[str | None, str | None]]


class PlanError(Exception):
    """The plan file is missing, damaged, or was written for another config: the crawl reads the history itself."""


@dataclass(frozen=True)
class KnownPage:
    url: str
    key: str
    etag: str | None
    last_modified: str | None


def write_plan(path: Path, *, first_run: bool, digest: str, watch_keys: Sequence[str],
               known: Sequence[tuple[str, str]], lookup: Callable[[list[str]], Validators]) -> Path:
    """Write the plan for a crawl of `watch_keys` (normalized watch URLs, in the config's order) and the `known`
    discovered pages (url, key); `lookup(keys)` reads the validators of up to CHUNK pages from the history."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        _line(f, {"format": FORMAT, "first_run": first_run, "digest": digest, "watches": len(watch_keys),
                  "known": len(known)})
        for first in range(0, len(known), CHUNK):
            chunk = known[first:first + CHUNK]
            found = lookup([key for _, key in chunk])
            for url, key in chunk:
                _line(f, [url, key, *found.get(key, (None, None))])
        for first in range(0, len(watch_keys), CHUNK):
            keys = list(watch_keys[first:first + CHUNK])
            found = lookup(keys)
            for key in keys:
                _line(f, [key, *found.get(key, (None, None))])
    os.replace(tmp, path)
    return path


def _line(f: IO[str], value: object) -> None:
    f.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    f.write("\n")


class CrawlPlan:
    """A plan opened by the crawl: `first_run` and `known` at once, the watches' validators chunk by chunk."""

    def __init__(self, path: Path, *, digest: str, watches: int):
        try:
            self._file: IO[str] = open(path, encoding="utf-8")
        except OSError as exc:
            raise PlanError(f"cannot read the crawl plan {path}: {exc.strerror or exc}") from None
        try:
            head = self._read()
            if not isinstance(head, dict) or head.get("format") != FORMAT:
                raise PlanError(f"{path} is not a crawl plan this version reads")
            if head.get("digest") != digest or head.get("watches") != watches:
                raise PlanError(f"{path} was written for another config ({head.get('watches')} watches, "
                                f"settings {head.get('digest')}; this crawl: {watches}, {digest})")
            self.first_run = bool(head.get("first_run"))
            self.known = [self._known() for _ in range(int(head.get("known") or 0))]
        except BaseException:
            self._file.close()
            raise
        self._left = watches

    def _read(self) -> object:
        line = self._file.readline()
        if not line.endswith("\n"):
            raise PlanError(f"the crawl plan {self._file.name} ends early")
        try:
            return json.loads(line)
        except ValueError as exc:
            raise PlanError(f"the crawl plan {self._file.name} is damaged: {exc}") from None

    def _known(self) -> KnownPage:
        row = self._read()
        if not isinstance(row, list) or len(row) != 4:
            raise PlanError(f"the crawl plan {self._file.name} is damaged: a known page reads {row!r:.80}")
        return KnownPage(*row)

    def validators(self, keys: Iterable[str]) -> Validators:
        """The validators of the next watches, which must be `keys` (their normalized URLs, in order)."""
        out: Validators = {}
        for key in keys:
            if self._left <= 0:
                raise PlanError(f"the crawl plan {self._file.name} has no more watches")
            row = self._read()
            if not isinstance(row, list) or len(row) != 3 or row[0] != key:
                raise PlanError(f"the crawl plan {self._file.name} does not follow the watchlist at {key}")
            self._left -= 1
            if row[1] is not None or row[2] is not None:
                out[key] = (row[1], row[2])
        return out

    def close(self) -> None:
        self._file.close()
