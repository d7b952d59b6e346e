"""The URLs a crawl has requested or will request (normalized), so that a link or sitemap entry never fetches a
page twice in one pass."""
from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Iterable


class SeenURLs:
    """The watchlist's URLs as a sorted array of their 64-bit hashes, the rest (pages discovered now or on earlier
    nights, at most `discovery.max_pages`) as strings in a set.

    Why hashes: the crawl no longer holds the watchlist (it streams it from the crawl plan), and a set of 50,000 URL
    strings of its own would be ≈ 5 MB that grows with the watchlist; the array is 8 bytes a URL (0.4 MB). The cost
    is a chance of about n·m / 2^64 that one of m found URLs is taken for one of n watches by hash (≈ 3·10^-11 for
    50,000 watches and 10,000 links): that page would wait for the next pass, whose hashes differ (Python salts
    `hash()` per process)."""

    def __init__(self, watch_keys: Iterable[str]):
        self._watched = array("q", sorted({hash(k) for k in watch_keys}))
        self._found: set[str] = set()

    def _watched_has(self, key: str) -> bool:
        h = hash(key)
        i = bisect_left(self._watched, h)
        return i < len(self._watched) and self._watched[i] == h

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in self._found or self._watched_has(key))

    def add(self, key: str) -> None:
        if not self._watched_has(key):
            self._found.add(key)

    def update(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def __len__(self) -> int:
        return len(self._watched) + len(self._found)
