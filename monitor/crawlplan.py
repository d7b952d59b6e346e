"""The crawl plan: what a crawl needs from the history, read by the pass and handed to its crawl in a file.

A crawl asks the history three things: whether any run has completed (a first pass notes new pages quietly), the
pages discovered on earlier nights (fetched again), and each page's last ETag / Last-Modified (sent as conditional
requests). The pass already has the database open, so it answers them before it starts the crawl and writes the
answers here, with the watches themselves, in the order the crawl makes its requests. Why a file and not the
crawl's own queries: a crawl process that reads the database carries SQLAlchemy, its ORM and the models (≈ 20 MB
of its ≈ 105 MB) only for those reads; the page-work processes do the storing. Why streamed, watches included:
the crawl reads a few hundred lines at a time as it makes their requests, so it holds neither the validators nor
the watchlist of a 50,000-watch night (≈ 20 MB of `Watch` objects and their index, the part of the crawl's memory
that grew with the watchlist).

The file (JSON lines, written to a temporary name and renamed): a header `{"format", "first_run", "digest",
"only", "watches", "known"}`; `known` lines `[url, url_key, etag, last_modified]`, the discovered pages; then one
line `[url_key, etag, last_modified, url, topics, kind, json_records, json_id]` per watch, in the config's order.
The reader checks the config's settings digest (it covers the watchlist), the job's URL prefixes and the counts,
so a plan written for another config is refused, never misapplied; a plan that ends early raises PlanError where
it ends, and the crawl reads the rest from the config and the history.

Only the standard library and `monitor.config`: the crawl process imports this module.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator, Sequence

from monitor.config import Watch

FORMAT = 2
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


def write_plan(path: Path, *, first_run: bool, digest: str, watches: Sequence[Watch], watch_keys: Sequence[str],
               known: Sequence[tuple[str, str]], lookup: Callable[[list[str]], Validators],
               only: Sequence[str] = ()) -> Path:
    """Write the plan for a crawl of `watches` (with `watch_keys`, their normalized URLs, in the same order) and the
    `known` discovered pages (url, key); `lookup(keys)` reads the validators of up to CHUNK pages from the history.
    `only`: the URL prefixes of a scheduled job's pass (its crawl checks it has the same)."""
    if len(watches) != len(watch_keys):
        raise ValueError("write_plan: one key per watch")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        _line(f, {"format": FORMAT, "first_run": first_run, "digest": digest, "only": list(only),
                  "watches": len(watch_keys), "known": len(known)})
        for first in range(0, len(known), CHUNK):
            chunk = known[first:first + CHUNK]
            found = lookup([key for _, key in chunk])
            for url, key in chunk:
                _line(f, [url, key, *found.get(key, (None, None))])
        for first in range(0, len(watch_keys), CHUNK):
            keys = list(watch_keys[first:first + CHUNK])
            found = lookup(keys)
            for key, w in zip(keys, watches[first:first + CHUNK]):
                _line(f, [key, *found.get(key, (None, None)), w.url, list(w.topics), w.kind, w.json_records, w.json_id])
    os.replace(tmp, path)
    return path


def _line(f: IO[str], value: object) -> None:
    f.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    f.write("\n")


class CrawlPlan:
    """A plan opened by the crawl: `first_run` and `known` at once, the watches' validators chunk by chunk."""

    def __init__(self, path: Path, *, digest: str, watches: int, only: Sequence[str] = ()):
        try:
            self._file: IO[str] = open(path, encoding="utf-8")
        except OSError as exc:
            raise PlanError(f"cannot read the crawl plan {path}: {exc.strerror or exc}") from None
        try:
            head = self._read()
            if not isinstance(head, dict) or head.get("format") != FORMAT:
                raise PlanError(f"{path} is not a crawl plan this version reads")
            if head.get("digest") != digest or head.get("watches") != watches or head.get("only") != list(only):
                raise PlanError(f"{path} was written for another config ({head.get('watches')} watches, "
                                f"settings {head.get('digest')}, prefixes {head.get('only')}; this crawl: {watches}, "
                                f"{digest}, {list(only)})")
            self.first_run = bool(head.get("first_run"))
            self.known = [self._known() for _ in range(int(head.get("known") or 0))]
        except BaseException:
            self._file.close()
            raise
        self._left = self._total = watches
        self.read = 0  # watches handed out so far

    def _read(self) -> object:
        line = self._file.readline()
        if not line.endswith("\n"):
            raise PlanError(f"the crawl plan {self._file.name} ends early")
        try:
            return json.loads(line)
        except ValueError as exc:
            raise PlanError(f"the crawl plan {self._file.name} is damaged: {exc}") from None

    def watch_keys(self) -> Iterator[str]:
        """Every watch's normalized URL, read through a second handle: the crawl counts them all as seen before it
        requests the first. A damaged or cut plan yields the keys before the damage (next_watches then raises)."""
        with open(self._file.name, encoding="utf-8") as f:
            for _ in range(1 + len(self.known)):
                f.readline()
            for _ in range(self._total):
                line = f.readline()
                try:
                    row = json.loads(line) if line.endswith("\n") else None
                except ValueError:
                    return
                if not isinstance(row, list) or not row or not isinstance(row[0], str):
                    return
                yield row[0]

    def _known(self) -> KnownPage:
        row = self._read()
        if not isinstance(row, list) or len(row) != 4:
            raise PlanError(f"the crawl plan {self._file.name} is damaged: a known page reads {row!r:.80}")
        return KnownPage(*row)

    def next_watches(self, count: int) -> tuple[list[Watch], Validators]:
        """Up to `count` more watches, in the config's order, with their validators by normalized URL; ([], {})
        after the last. PlanError where the file ends early or is damaged: `read` says how many were handed out."""
        watches: list[Watch] = []
        out: Validators = {}
        for _ in range(min(count, self._left)):
            row = self._read()
            if not isinstance(row, list) or len(row) != 8 or not isinstance(row[3], str):
                raise PlanError(f"the crawl plan {self._file.name} is damaged after {self.read} watches")
            key, etag, last_modified, url, topics, kind, json_records, json_id = row
            watches.append(Watch(url, tuple(topics), kind, json_records, json_id))
            if etag is not None or last_modified is not None:
                out[key] = (etag, last_modified)
            self._left -= 1
        self.read += len(watches)  # counted once handed out: a chunk that breaks off is read again elsewhere
        return watches, out

    def close(self) -> None:
        self._file.close()
