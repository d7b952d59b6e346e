"""After a pass: publish the static report site and deliver digests and operator alerts.

Why here (the monitor) and not in reports: this is where the config is known. The reports package only gets
plain settings objects and the database, so it reads nothing but storage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from policywatch.monitor.config import Config
from policywatch.monitor.config.notify import env_urls, label
from policywatch.monitor.config.ops import Subscriber
from policywatch.reports.channels import Channel, ChannelSubscriber
from policywatch.reports.data import news
from policywatch.reports.outbox import DeliveryReport, Outbox, Transport, operator_reasons
from policywatch.reports.site import Site
from policywatch.storage.models import Change, Run


def topic_names(config: Config) -> dict[str, str]:
    return {n: t.display for n, t in config.topics.items()}


def site_dir(config: Config) -> Path:
    return config.reports_dir / "site"


def report_site(config: Config) -> Site:
    """The report site as the config says: where, its public address, topic names, time zone."""
    return Site(
        site_dir(config),
        base_url=config.report_base_url,
        topic_names=topic_names(config),
        timezone=config.schedule.timezone,
        parity=(config.parity.languages, config.parity.grace_days),
    )


def publish_site(db: Any, config: Config, run_id: int) -> Path:
    """Pages for this pass's changes, their pages' timelines, the index and the Atom feed: work in proportion
    to what a reader can open (a first night's "now watching" notes get none)."""
    site = report_site(config)
    with db.session() as s:
        site.write_changes(s, news(s, Change.run_id == run_id))
    return site.dir / "index.html"


def publish_changes(db: Any, config: Config, change_ids: list[int]) -> Path:
    """Pages for these changes (a backfill's: at their historic dates), their timelines, index and feed."""
    site = report_site(config)
    with db.session() as s:
        if change_ids:
            site.write_changes(s, news(s, Change.id.in_(change_ids)))
    return site.dir / "index.html"


def rebuild_site(db: Any, config: Config) -> int:
    site = report_site(config)
    with db.session() as s:
        return site.rebuild(s)


def outbox(db: Any, config: Config, transport: Transport | None = None) -> Outbox:
    return Outbox(
        db,
        config.mail,
        base_url=config.report_base_url,
        topic_names=topic_names(config),
        transport=transport,
        timezone=config.schedule.timezone,
        parity=(config.parity.languages, config.parity.grace_days),
    )


def channels_of(sub: Subscriber, environ: Mapping[str, str] | None = None) -> tuple[list[Channel], list[str]]:
    """A subscriber's channels tonight (`notify`, and the URLs its `notify_env` variable holds), and what is
    wrong with them (an unset variable): secret URLs are read here, at delivery, and kept in memory only."""
    env = os.environ if environ is None else environ
    found = [Channel(sub.owner, label(u), u) for u in sub.notify]
    problems = []
    if sub.notify_env:
        urls = env_urls(sub.notify_env, dict(env))
        if not urls:
            problems.append(
                f"{sub.owner}: notify_env {sub.notify_env} is not set (or empty): nothing sent there"
            )
        found += [Channel(sub.owner, f"${sub.notify_env}#{i + 1}", u) for i, u in enumerate(urls)]
    return found, problems


def channel_subscribers(
    subscribers: tuple[Subscriber, ...], environ: Mapping[str, str] | None = None
) -> tuple[list[ChannelSubscriber], list[str]]:
    out, problems = [], []
    for sub in subscribers:
        chans, why = channels_of(sub, environ)
        problems += why
        out += [
            ChannelSubscriber(c, sub.name, sub.topics, sub.min_significance, sub.frequency) for c in chans
        ]
    return out, problems


def deliver(
    db: Any,
    config: Config,
    *,
    run_id: int | None = None,
    transport: Transport | None = None,
    subscribers: bool = True,
) -> DeliveryReport | None:
    """Send what is pending (the caller holds the pass lock): e-mail and team channels. `subscribers=False` (a
    `[[schedule.jobs]]` pass): only those whose frequency is "immediate". None when nothing is configured to
    deliver to (no `[mail]`, no channel)."""
    chosen = tuple(s for s in config.subscribers if subscribers or s.frequency == "immediate")
    teams, problems = channel_subscribers(chosen)
    if config.mail is None and not teams and not problems:
        return None
    box = outbox(db, config, transport)
    report = box.deliver(chosen, run_id=run_id, channels=teams)
    report.failed += [("channels", p) for p in problems]
    if run_id is not None:
        with db.session() as s:
            run = s.get(Run, run_id)
            assert run is not None
            prev = s.scalar(
                select(Run).where(Run.id < run_id, Run.status != "running").order_by(Run.id.desc()).limit(1)
            )
            previous_stale = ((prev.health or {}).get("stale_sources") or []) if prev else []
            reasons = operator_reasons(run, run.health or {}, previous_stale)
        box.alert_operator(run_id, reasons, report)
    return report
