"""Language parity: each page and its twin in the other official language, and whether one is ahead.

A twin is the page a page names as its version in another language (`<link rel="alternate" hreflang>`,
canada.ca's language toggle, a provincial site's language link: `pages.twins` as the crawl last read them, and
`meta["alternates"]` of its versions). The
pair's changes are read in time order: a change on one side puts that side ahead, a change on the other side
answers it. What is left unanswered is the pair's state: "ahead" since the first unanswered change, or "in
step". Why not compare texts: the two languages never read alike; what a reader needs is "the English changed
on the 20th and the French has not since".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policywatch.reports.safetext import clip_words
from policywatch.storage.models import Change, Page, Version

LANGUAGE_NAMES = {"en": "English", "fr": "French"}


@dataclass(frozen=True)
class Pair:
    page: str  # the watched side's URL (or the first language's)
    twin: str
    page_lang: str
    twin_lang: str
    status: str  # in_step | ahead
    ahead: str | None  # the language that changed and was not followed
    since: datetime | None  # its first unanswered change
    days: int | None
    change: Any = None  # that change (its summary says which fact is behind)
    title: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "twin": self.twin,
            "status": self.status,
            "ahead": self.ahead,
            "since": self.since.isoformat() if self.since else None,
            "days": self.days,
        }

    def note(self) -> str:
        """ "French version not updated for 4 days: Fee: $155 → $230 (Work permits)"."""
        behind = self.twin_lang if self.ahead == self.page_lang else self.page_lang
        name = LANGUAGE_NAMES.get(behind or "", (behind or "").upper())
        days = f"for {self.days} day{'s' if self.days != 1 else ''}" if self.days else "yet"
        fact = clip_words(str(getattr(self.change, "summary", "") or ""), 140)
        where = f" ({self.title})" if self.title else ""
        return f"{name} version not updated {days}: {fact}{where}"


def _lang(version_meta: dict[str, Any], url: str) -> str:
    lang = str(version_meta.get("lang") or "").split("-")[0].lower()
    if lang:
        return lang
    for code in ("en", "fr"):  # canada.ca and most provincial sites put it in the path
        if f"/{code}/" in url:
            return code
    return ""


def pairs(s: Session, languages: tuple[str, ...], now: datetime | None = None) -> list[Pair]:
    """Every pair of pages that name each other (or one names the other) in `languages`, with its state."""
    now = now or datetime.now(UTC)
    latest = select(func.max(Version.id)).group_by(Version.page_id).scalar_subquery()
    rows = s.execute(
        select(Page.id, Page.url, Page.source, Page.title, Page.twins, Version.meta)
        .join(Version, Version.page_id == Page.id)
        .where(Version.id.in_(latest), Page.status != "removed")
    ).all()
    by_url = {urldefrag(r.url)[0]: r for r in rows}
    seen: set[tuple[int, int]] = set()
    found: list[Pair] = []
    for r in rows:
        meta = r.meta if isinstance(r.meta, dict) else {}
        own = _lang(meta, r.url)
        named = {**(meta.get("alternates") or {}), **(r.twins or {})}  # the crawl's latest reading wins
        for lang, url in named.items():
            twin = by_url.get(urldefrag(str(url))[0])
            if twin is None or lang not in languages or own not in languages or twin.id == r.id:
                continue
            key = (min(r.id, twin.id), max(r.id, twin.id))
            if key in seen:
                continue
            seen.add(key)
            a, b, a_lang, b_lang = _ordered(r, own, twin, lang, languages)
            found.append(_state(s, a, b, a_lang, b_lang, now))
    return sorted(found, key=lambda p: (p.status != "ahead", -(p.days or 0), p.page))


def _ordered(
    r: Any, r_lang: str, t: Any, t_lang: str, languages: tuple[str, ...]
) -> tuple[Any, Any, str, str]:
    """A pair is listed by its watched side (the twin was found from it), else by the first language."""
    if (r.source == "watch") != (t.source == "watch"):
        return (r, t, r_lang, t_lang) if r.source == "watch" else (t, r, t_lang, r_lang)
    if languages.index(r_lang) <= languages.index(t_lang):
        return (r, t, r_lang, t_lang)
    return (t, r, t_lang, r_lang)


def _state(s: Session, a: Any, b: Any, a_lang: str, b_lang: str, now: datetime) -> Pair:
    changes = s.scalars(
        select(Change)
        .where(Change.page_id.in_((a.id, b.id)), Change.kind == "changed")
        .order_by(Change.detected_at, Change.id)
    ).all()
    open_side: tuple[int, Change] | None = None
    for c in changes:
        if (c.details or {}).get("baseline"):
            continue
        if open_side is None:
            open_side = (c.page_id, c)
        elif open_side[0] != c.page_id:
            open_side = None  # the other language followed
    if open_side is None:
        return Pair(a.url, b.url, a_lang, b_lang, "in_step", None, None, None, title=a.title or "")
    page_id, change = open_side
    since = change.detected_at if change.detected_at.tzinfo else change.detected_at.replace(tzinfo=UTC)
    days = max(0, int((now - since).total_seconds() // 86400))
    ahead = a_lang if page_id == a.id else b_lang
    return Pair(a.url, b.url, a_lang, b_lang, "ahead", ahead, since, days, change, a.title or "")


def notes(s: Session, languages: tuple[str, ...], grace_days: float) -> list[str]:
    """The lines reports and digests carry: each pair one language has been ahead of for `grace_days`."""
    if len(languages) < 2:
        return []
    return [p.note() for p in late(pairs(s, languages), grace_days)]


def late(all_pairs: list[Pair], grace_days: float) -> list[Pair]:
    """The pairs to tell readers about: one language ahead for at least `grace_days`."""
    return [
        p for p in all_pairs if p.status == "ahead" and p.since is not None and (p.days or 0) >= grace_days
    ]
