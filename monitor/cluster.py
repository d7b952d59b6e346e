"""Distributed passes: a coordinator seeds a Redis frontier, crawl workers (scrapy-redis) drain it.

Why this shape: scrapy-redis is the well-kept engine for sharing one request queue and one duplicate filter
between Scrapy processes; we only add what a nightly pass needs around it:

* every key carries the pass id (`<prefix>:run:<id>:…`), so no queue or duplicate filter leaks into the next
  night, and `<prefix>:current` names the open pass, so workers may start before the coordinator;
* workers announce themselves with a heartbeat key (TTL), so a worker killed with SIGKILL stops counting as
  busy within seconds; the pass is drained when the seeds and the request queue are empty and no worker is alive;
* per-page work stays in each worker's item pipeline (one transaction per page, constraints on pages and
  changes), and the coordinator runs the pass's health, reports and digests once, from the database.

Seeded URLs that no worker fetched (a worker died holding them) are listed in the run's health as
`not_completed`; the next pass fetches them again. Nothing is recorded twice: a page is stored in one
transaction, and the shared duplicate filter hands each URL to one worker.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select

from monitor.child import python_module
from monitor.config import Config
from storage import queries as q
from storage.models import Fetch, Page

log = logging.getLogger("policywatch.cluster")

HEARTBEAT_TTL = 15  # seconds a worker counts as alive without a heartbeat
HEARTBEAT_EVERY = 3


class ClusterError(Exception):
    """Redis unreachable, or no pass to work on."""


@dataclass(frozen=True)
class Keys:
    prefix: str
    run_id: int

    @property
    def current(self) -> str:
        return f"{self.prefix}:current"

    @property
    def base(self) -> str:
        return f"{self.prefix}:run:{self.run_id}"

    @property
    def seeds(self) -> str:
        return f"{self.base}:seeds"

    @property
    def requests(self) -> str:
        return f"{self.base}:requests"

    @property
    def dupefilter(self) -> str:
        return f"{self.base}:dupefilter"

    @property
    def joined(self) -> str:
        return f"{self.base}:joined"

    def worker(self, wid: str) -> str:
        return f"{self.base}:worker:{wid}"


def connect(config: Config):
    import redis

    assert config.cluster is not None
    r = redis.Redis.from_url(config.cluster.redis_url, socket_timeout=10, socket_connect_timeout=5)
    try:
        r.ping()
    except redis.RedisError as exc:
        raise ClusterError(f"Redis at cluster.redis_url is not reachable: {exc}") from None
    return r


def seeds(db: Any, config: Config) -> list[dict[str, Any]]:
    """What a single-machine pass would start with: watches, known discovered pages, discovery sources."""
    out: list[dict[str, Any]] = [{"url": w.url, "kind": "page", "source": "watch", "depth": 0} for w in config.watches]
    watched = {w.url for w in config.watches}
    with db.session() as s:
        for p in q.known_discovered_pages(s, config.discovery.max_pages):
            if p.url not in watched and config.allowed.allows(p.url):
                out.append({"url": p.url, "kind": "page", "source": "discovered", "depth": 1})
    out += [{"url": u, "kind": "sitemap"} for u in config.discovery.sitemaps]
    out += [{"url": u, "kind": "feed"} for u in config.discovery.feeds]
    return out


ProgressFn = Callable[[int, int], None]


def coordinate(db: Any, config: Config, run_id: int, progress: ProgressFn | None,
               timeout: float | None) -> tuple[str | None, dict[str, Any]]:
    """Seed the frontier for `run_id`, wait until workers drain it; (failure message or None, health additions)."""
    assert config.cluster is not None
    r = connect(config)
    k = Keys(config.cluster.key_prefix, run_id)
    plan = seeds(db, config)
    for key in r.scan_iter(match=f"{k.base}:*"):  # a crashed coordinator with the same run id cannot exist, but be tidy
        r.delete(key)
    if plan:
        r.rpush(k.seeds, *[json.dumps(x) for x in plan])
    r.set(k.current, run_id)
    log.info("pass %d: %d seeds in %s; waiting for workers", run_id, len(plan), k.seeds)
    limit = timeout if timeout is not None else config.cluster.drain_timeout_minutes * 60
    started = time.monotonic()
    message = None
    expected = len(plan)
    try:
        while True:
            pending = r.llen(k.seeds) + r.zcard(k.requests)
            live = sum(1 for _ in r.scan_iter(match=k.worker("*")))
            joined = int(r.get(k.joined) or 0)
            if progress is not None:
                with db.session() as s:
                    done = q.run_fetch_count(s, run_id)
                progress(done, max(expected, done))
            if pending == 0 and live == 0 and joined > 0:
                break
            if time.monotonic() - started > limit:
                message = (f"workers did not drain the frontier within {limit / 60:.0f} min "
                           f"({pending} requests pending, {live} workers alive, {joined} joined)"
                           + ("; start workers with `policywatch worker`" if joined == 0 else ""))
                break
            time.sleep(0.5)
    finally:
        if int(r.get(k.current) or 0) == run_id:
            r.delete(k.current)
        joined = int(r.get(k.joined) or 0)
        for key in r.scan_iter(match=f"{k.base}:*"):
            r.delete(key)
    with db.session() as s:
        fetched = set(s.scalars(select(Page.url).join(Fetch, Fetch.page_id == Page.id).where(Fetch.run_id == run_id)))
    missing = [x["url"] for x in plan if x["kind"] == "page" and x["url"] not in fetched]
    if missing:
        log.warning("pass %d: %d seeded URLs were not completed (fetched again next pass)", run_id, len(missing))
    return message, {"cluster": {"workers_joined": joined, "seeds": len(plan)}, "not_completed": missing[:500]}


def worker_command(config: Config, run_id: int, log_file: Path) -> list[str]:
    assert config.cluster is not None and config.path is not None
    k = Keys(config.cluster.key_prefix, run_id)
    settings = {
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": "True",  # the queue belongs to the pass, not to this worker
        "REDIS_URL": config.cluster.redis_url,
        "SCHEDULER_QUEUE_KEY": k.requests,
        "SCHEDULER_DUPEFILTER_KEY": k.dupefilter,
        "MAX_IDLE_TIME_BEFORE_CLOSE": str(config.cluster.idle_seconds),
        "LOG_FILE": str(log_file),
        "LOG_LEVEL": "INFO",
    }
    cmd = [*python_module("crawler"), "crawl", "cluster_worker", "-a", f"config={config.path.resolve()}",
           "-a", f"run_id={run_id}", "-a", f"seeds_key={k.seeds}"]
    for name, value in settings.items():
        cmd += ["-s", f"{name}={value}"]
    return cmd


def wait_for_pass(r: Any, prefix: str, wait_seconds: float, skip: int | None = None) -> int | None:
    end = time.monotonic() + wait_seconds
    while True:
        raw = r.get(f"{prefix}:current")
        if raw is not None and int(raw) != skip:
            return int(raw)
        if time.monotonic() >= end:
            return None
        time.sleep(1.0)


def run_worker(config: Config, *, wait_seconds: float | None = None,
               on_start: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Work on the open pass (waiting for one if needed) until its frontier is drained; (run id, exit status)."""
    from monitor.passrun import spawn_crawl

    assert config.cluster is not None
    r = connect(config)
    wait = config.cluster.worker_wait_minutes * 60 if wait_seconds is None else wait_seconds
    run_id = wait_for_pass(r, config.cluster.key_prefix, wait)
    if run_id is None:
        raise ClusterError(f"no pass opened within {wait / 60:.1f} min (the coordinator runs `policywatch run`)")
    k = Keys(config.cluster.key_prefix, run_id)
    wid = f"{socket.gethostname()}-{os.getpid()}"
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_EVERY):
            try:
                r.set(k.worker(wid), 1, ex=HEARTBEAT_TTL)
            except Exception:  # Redis blip: the TTL covers a few missed beats
                log.warning("heartbeat to Redis failed", exc_info=True)

    r.set(k.worker(wid), 1, ex=HEARTBEAT_TTL)  # alive before joined: the coordinator never sees a gap
    r.incr(k.joined)
    if on_start:
        on_start(run_id)
    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    log_dir = config.reports_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"run-{run_id}.worker-{wid}.log"
    try:
        proc = spawn_crawl(worker_command(config, run_id, log_file), log_dir / f"run-{run_id}.worker-{wid}.console.log")
        try:
            rc = proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait(60)
            raise
    finally:
        stop.set()
        r.delete(k.worker(wid))
    return run_id, rc
