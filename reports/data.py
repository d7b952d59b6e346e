"""What a report shows, loaded from storage: a run, its changes ranked for a consultant, and crawl health.

Ranking: Innovation Stream details first, then significance (high → low), then detection order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policywatch.reports.safetext import clip_words
from policywatch.reports.sitewide import Notice, split_notices
from policywatch.storage.models import Change, Run

SIGNIFICANCE_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class BaselineEntry:
    """A page recorded for the first time, as a report lists it."""

    id: int
    url: str
    title: str | None


@dataclass
class ReportData:
    run: Run
    changes: list[Change]
    groups: list[tuple[str, list[Change]]]
    baseline: list[BaselineEntry]
    health: dict[str, Any] = field(default_factory=dict)
    topic_names: dict[str, str] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    prev_run_id: int | None = None  # the reports link to the pass before and after
    next_run_id: int | None = None
    timezone: str = "UTC"  # `[schedule] timezone`: the report's times are shown in it (reports.clock)
    parity_notes: list[str] = field(default_factory=list)  # "French version not updated for 4 days: …"

    @property
    def failure_line(self) -> str | None:
        """What went wrong, first: "No page could be fetched (10 of 10 failed: connection refused …)"."""
        return failure_summary(self.health)

    @property
    def headline(self) -> str:
        released = [c for c in self.changes if c.details_released]
        n = len(self.changes)
        if not n and not self.notices and self.failure_line:
            return self.failure_line
        if released:
            return f"Innovation Stream: details released · {n} change{'s' if n != 1 else ''}"
        if n:
            return f"{n} change{'s' if n != 1 else ''} · top: {self.changes[0].title or self.changes[0].url}"
        if self.notices:
            return f"Site-wide notice on {self.notices[0].pages} pages"
        return "No changes"


def failure_summary(health: dict[str, Any] | None) -> str | None:
    """One line on a pass's failed fetches and discovery sources, or None when nothing failed. Why a line of
    its own: a pass whose every fetch failed must never read like a quiet night."""
    if not health:
        return None
    fetched, failed = int(health.get("fetched") or 0), int(health.get("failed") or 0)
    reasons = []
    for f in (health.get("failures") or [])[:3]:
        why = (f.get("message") or f.get("outcome") or "").split("\n")[0]
        reasons.append(clip_words(why, 100))
    why = "; ".join(dict.fromkeys(r for r in reasons if r))
    why = f": {why}{' …' if failed > 3 else ''}" if why else ""
    line = None
    if health.get("zero_fetches"):
        line = "No page was fetched: the pass fetched nothing"
    elif fetched and failed >= fetched:
        line = f"No page could be fetched ({failed} of {fetched} failed{why})"
    elif failed:
        line = f"{failed} of {fetched} pages could not be fetched{why}"
    sources = health.get("discovery_failures") or []
    if sources:
        listed = ", ".join(f"{d.get('kind')} {d.get('url')}" for d in sources[:3])
        extra = f"{len(sources)} discovery source{'s' if len(sources) != 1 else ''} failed ({listed})"
        line = f"{line}; {extra}" if line else extra
    return line


def is_baseline(c: Change) -> bool:
    """A first recording of a watched page ("now watching"): a note, not news."""
    return bool((c.details or {}).get("baseline"))


def stream_changes(s: Session, *criteria: Any) -> Iterator[Change]:
    """The changes matching `criteria`, in detection order, read in chunks (`yield_per`): a first night of a
    large watchlist has a "now watching" note per page, more than a report or a digest should hold at once."""
    query = select(Change).where(*criteria).order_by(Change.id).execution_options(yield_per=500)
    return iter(s.scalars(query))


def news(s: Session, *criteria: Any) -> list[Change]:
    """The changes matching `criteria` without the "now watching" notes (which no digest or site page
    shows)."""
    return [c for c in stream_changes(s, *criteria) if not is_baseline(c)]


def fact_count(c: Change) -> int:
    """How many facts (fees, codes, dates, caps …) a change added, removed or changed."""
    facts = (c.details or {}).get("facts") or {}
    return sum(len(v) for v in facts.values() if isinstance(v, list)) if isinstance(facts, dict) else 0


def rank_key(c: Change) -> tuple[int, int, int, float, int]:
    """The one order of every list of changes a person reads (run report, site, feed, digest, the demo):
    details released first, then by significance, then the change that says the most (facts), then newest."""
    when = c.detected_at.timestamp() if c.detected_at else 0.0
    return (
        0 if c.details_released else 1,
        SIGNIFICANCE_ORDER.get(c.significance, 3),
        -fact_count(c),
        -when,
        -c.id,
    )


def load_run_report(
    s: Session,
    run_id: int,
    topic_names: dict[str, str] | None = None,
    *,
    timezone: str = "UTC",
    parity: tuple[tuple[str, ...], float] = ((), 3.0),
) -> ReportData:
    """A run's report; `parity`: ([parity] languages, grace_days), for the language-parity notes."""
    from policywatch.reports.parity import notes

    run = s.get(Run, run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    # Streamed: a first night of 50,000 watches is 50,000 "now watching" notes, each a Change with its
    # details; a report keeps only their links (memory bounded by the night's real changes, not by the
    # watchlist).
    baseline: list[BaselineEntry] = []
    news: list[Change] = []
    for c in stream_changes(s, Change.run_id == run_id):
        if is_baseline(c):
            baseline.append(BaselineEntry(c.id, c.url, c.title))
        else:
            news.append(c)
    notices, rest = split_notices(news)
    changes = sorted(rest, key=rank_key)
    names = dict(topic_names or {})
    groups: dict[str, list[Change]] = {}
    for c in changes:
        key = c.topics[0] if c.topics else ""
        groups.setdefault(key, []).append(c)
    ordered = sorted(groups.items(), key=lambda kv: rank_key(kv[1][0]))
    return ReportData(
        run,
        changes,
        [(names.get(k, k.replace("-", " ").title()) if k else "Other pages", v) for k, v in ordered],
        baseline,
        run.health or {},
        names,
        notices,
        s.scalar(select(func.max(Run.id)).where(Run.id < run_id, Run.status != "running")),
        s.scalar(select(func.min(Run.id)).where(Run.id > run_id, Run.status != "running")),
        timezone,
        notes(s, *parity),
    )
