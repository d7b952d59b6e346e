"""Crawl health at the end of a pass (like Spidermon): failure rate, failures by class, pages whose content
selector stopped matching, zero-fetch runs, and stale sources (watched URLs without a good fetch for N
passes).

Why: the classic failure of a monitor is silence — a scraper that fails quietly for weeks looks exactly like a
quiet policy. Health is stored on the run and printed at the end of every report.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from policywatch.monitor.config import Config
from policywatch.monitor.urls import normalize_url
from policywatch.storage.models import Fetch, Page, Run

STALE_AFTER = 3
GOOD = ("ok", "not_modified")


def crawl_health(s: Session, run_id: int, config: Config, stale_after: int = STALE_AFTER) -> dict[str, Any]:
    rows = s.execute(
        select(Fetch.outcome, Fetch.message, Page.url)
        .join(Page, Page.id == Fetch.page_id)
        .where(Fetch.run_id == run_id)
    ).all()
    by_class: dict[str, int] = {}
    failures: list[dict[str, str]] = []
    drift: list[str] = []
    for outcome, message, url in rows:
        if outcome in GOOD:
            continue
        by_class[outcome] = by_class.get(outcome, 0) + 1
        failures.append({"url": url, "outcome": outcome, "message": message or ""})
        if outcome == "soft_error" and message and "mainContentOfPage" in message:
            drift.append(url)
    fetched = len(rows)
    scope = s.scalar(
        select(Run.scope).where(Run.id == run_id)
    )  # an hourly JSON job says nothing about HTML pages
    recent_runs = list(
        s.scalars(
            select(Run.id)
            .where(Run.id <= run_id, Run.scope == scope)
            .order_by(Run.id.desc())
            .limit(stale_after)
        )
    )
    stale: list[str] = []
    if len(recent_runs) >= stale_after:
        watched = {normalize_url(w.url): w.url for w in config.watches}
        good = set(
            s.scalars(
                select(Page.url_key)
                .join(Fetch, Fetch.page_id == Page.id)
                .where(Fetch.run_id.in_(recent_runs), Fetch.outcome.in_(GOOD))
            )
        )
        stale = [url for key, url in watched.items() if key not in good]
    expected = len(config.watches)
    return {
        "fetched": fetched,
        "failed": len(failures),
        "failure_rate": round(len(failures) / fetched, 4) if fetched else (1.0 if expected else 0.0),
        "failures_by_class": by_class,
        "failures": failures[:200],
        "selector_drift": drift,
        "zero_fetches": fetched == 0 and expected > 0,
        "stale_sources": stale,
        "stale_after": stale_after,
    }
