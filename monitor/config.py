"""Load and validate policywatch's TOML configuration.

Why strict: a typo in a nightly job's config (``[storge]``) must fail loudly the first night, naming the key,
not silently fall back to defaults and watch nothing. Every error names the offending key path.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from policywatch.monitor.config_ops import (MailSettings, Schedule, ScheduleJob, Subscriber, parse_mail, parse_schedule,
                                parse_subscribers)
from policywatch.monitor.urls import AllowedDomains, normalize_url, redact_url, url_problem

log = logging.getLogger("policywatch.config")

ENV_VAR = "POLICYWATCH_CONFIG"
DEFAULT_FILE = "policywatch.toml"

#: The built-in Innovation Stream rule: a user `[topics.innovation-stream]` table only adds keywords.
INNOVATION_STREAM = "innovation-stream"
BUILTIN_TOPICS: dict[str, dict[str, Any]] = {
    INNOVATION_STREAM: {
        "display": "Innovation Stream",
        "keywords": ["Innovation Stream", "Global Hypergrowth Project", "C88"],
        "url_prefixes": [],
    }
}


class ConfigError(Exception):
    """A configuration problem, with the key path in the message."""


@dataclass(frozen=True)
class Topic:
    name: str
    display: str
    keywords: tuple[str, ...] = ()
    url_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Watch:
    """One `[[watch]]` entry. Slotted: the pass and the crawl each hold the whole watchlist (see `_watch_index`)."""

    url: str
    topics: tuple[str, ...] = ()
    kind: str = "auto"  # auto | html | json
    json_records: str | None = None  # key path of the record list in a JSON endpoint, e.g. "rounds"
    json_id: str | None = None  # natural id field of a record, e.g. "drawNumber"


@dataclass(frozen=True)
class CrawlSettings:
    allowed_domains: tuple[str, ...]
    user_agent: str = "policywatch/0.1 (+https://github.com/policywatch/policywatch)"
    obey_robots: bool = True
    concurrency_per_domain: int = 4
    download_delay: float = 0.5
    autothrottle: bool = True
    timeout: float = 30.0
    retries: int = 2
    max_size_mb: int = 16


@dataclass(frozen=True)
class Rule:
    """A user noise rule: drop elements (`selector`) or text (`pattern`) on pages under `url_prefix`."""

    kind: str  # drop | ignore
    value: str
    url_prefix: str = ""
    why: str = ""

    def applies(self, url: str) -> bool:
        return url.startswith(self.url_prefix)


@dataclass(frozen=True)
class Discovery:
    follow_prefixes: tuple[str, ...] = ()
    depth: int = 1
    max_pages: int = 500
    sitemaps: tuple[str, ...] = ()  # XML sitemaps (or sitemap indexes, gzip or not)
    feeds: tuple[str, ...] = ()  # Atom / RSS / JSON news feeds (e.g. the GC news API for IRCC)


@dataclass(frozen=True)
class Config:
    path: Path | None
    storage_url: str
    crawl: CrawlSettings
    watches: tuple[Watch, ...]
    topics: dict[str, Topic]
    reports_dir: Path
    discovery: Discovery = field(default_factory=Discovery)
    rules: tuple[Rule, ...] = ()
    #: sha256 of the file's settings (see `digest`), computed when parsed: the parsed TOML itself is not kept
    #: (with 50,000 watches it is ≈ 17 MB, in the pass, the crawl and every page-work process).
    settings_hash: str = field(default="", compare=False, repr=False)
    mail: MailSettings | None = None
    subscribers: tuple[Subscriber, ...] = ()
    schedule: Schedule = field(default_factory=Schedule)
    report_base_url: str | None = None  # where the static report site is published (links in e-mail and Atom)
    #: `[storage] read_url`: where `sql`, `export` and Datasette read (a read-only role for analysts)
    storage_read_url: str | None = None

    @property
    def read_url(self) -> str:
        """The database the read-only commands use: `[storage] read_url` when set, else `[storage] url`."""
        return self.storage_read_url or self.storage_url

    def require_watchlist(self) -> None:
        """A pass with nothing to fetch is a config error, not a quiet night (commands that only read the history
        accept a config without watches)."""
        if not self.watches and not (self.discovery.sitemaps or self.discovery.feeds):
            raise ConfigError("watch: the watchlist is empty and no discovery source is set, so a pass would fetch "
                              "nothing: add [[watch]] entries (`policywatch init` writes a starter file)")

    def rules_for(self, url: str) -> tuple[list[tuple[str, str]], list[str], str]:
        """(drop selectors with reasons, ignore patterns, digest) of the rules that apply to `url`."""
        applicable = [r for r in self.rules if r.applies(url)]
        drops = [(r.value, r.why or "rule") for r in applicable if r.kind == "drop"]
        ignores = [r.value for r in applicable if r.kind == "ignore"]
        digest = hashlib.sha256(repr([(r.kind, r.value) for r in applicable]).encode()).hexdigest()[:12] if applicable else ""
        return drops, ignores, digest

    @property
    def allowed(self) -> AllowedDomains:
        return AllowedDomains(list(self.crawl.allowed_domains))

    def digest(self) -> str:
        """A short hash of the file's settings, stored on each run so analysts can see config changes."""
        return self.settings_hash[:16]

    def subset(self, url_prefixes: tuple[str, ...]) -> "Config":
        """The config of a scheduled job's pass: the watches under `url_prefixes`, and no discovery."""
        from dataclasses import replace

        return replace(self, watches=tuple(w for w in self.watches if w.url.startswith(url_prefixes)),
                       discovery=Discovery(follow_prefixes=(), depth=0, max_pages=0))

    def job(self, name: str) -> "ScheduleJob":
        """A `[[schedule.jobs]]` entry by name (ConfigError naming the known ones)."""
        for j in self.schedule.jobs:
            if j.name == name:
                return j
        known = ", ".join(j.name for j in self.schedule.jobs) or "none configured"
        raise ConfigError(f"schedule.jobs: no job named {name!r} (known: {known})")

    @cached_property
    def _watch_index(self) -> dict[str, Watch]:
        """Normalized URL → watch. A key equal to its watch's URL (the usual case) is that same string object,
        not a copy: with the slotted `Watch` this took the watchlist from 355 to 229 bytes a watch (50,000 watches:
        17.0 → 11.0 MB, tracemalloc), and the crawl's "seen" set built from these keys from 128 to 41."""
        index: dict[str, Watch] = {}
        for w in self.watches:
            key = normalize_url(w.url)
            index[w.url if key == w.url else key] = w
        return index

    def watch_keys(self) -> Iterable[str]:
        """The watchlist's normalized URLs (the index's own strings: a set built from them shares them)."""
        return self._watch_index.keys()

    def watch_for(self, url: str) -> Watch | None:
        """The watch for `url` (normalized), by dict lookup: the pipeline asks once per page, for 10,000 pages."""
        return self._watch_index.get(normalize_url(url))


KNOWN_SECTIONS = {"storage", "crawl", "watch", "topics", "reports", "discovery", "mail", "subscriber",
                  "schedule", "rules"}


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """`--config`, else `$POLICYWATCH_CONFIG`, else `./policywatch.toml`."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return Path(DEFAULT_FILE)


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    path = find_config_path(explicit)
    if not path.exists():
        hint = " (run `policywatch init` to write a starter file)" if path.name == DEFAULT_FILE else ""
        raise ConfigError(f"config file not found: {path}{hint}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_config(data, path)


def _expect(value: Any, typ: type | tuple[type, ...], key: str) -> Any:
    if isinstance(value, bool) and typ in (int, float, (int, float)):
        raise ConfigError(f"{key}: expected a number, got a boolean")
    if not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise ConfigError(f"{key}: expected {names}, got {type(value).__name__} {value!r}")
    return value


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    _expect(value, list, key)
    for i, item in enumerate(value):
        _expect(item, str, f"{key}[{i}]")
    return tuple(value)


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _resolve_sqlite(url: str, base: Path) -> str:
    """Relative SQLite paths are relative to the config file, so cron jobs work from any directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        rel = url[len(prefix):]
        if rel and not Path(rel).is_absolute():
            return prefix + str((base / rel).resolve())
    return url


def _check_url(url: str, key: str) -> None:
    problem = url_problem(url)
    if problem:
        shown = redact_url(url)
        raise ConfigError(f"{key}: {shown[:120] + '…' if len(shown) > 120 else shown!r} {problem}")


def _storage_url(value: Any, key: str, base: Path) -> str:
    url = _expect(value, str, key)
    if "://" not in url:
        raise ConfigError(f"{key}: {url!r} is not an SQLAlchemy URL (e.g. sqlite:///policywatch.db)")
    return _resolve_sqlite(url, base)


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    base = path.parent if path else Path.cwd()
    if "cluster" in data:
        raise ConfigError("cluster: the cluster mode (Redis frontier, `policywatch worker`) was removed: a night is "
                          "bounded by politeness towards each host, not by one machine. Delete [cluster]; to share "
                          "the work, give each machine its own part of the watchlist and one PostgreSQL storage.url "
                          "(docs/deployment.md, \"Scaling\")")
    for key in data:
        if key not in KNOWN_SECTIONS:
            raise ConfigError(f"{key}: unknown section (known: {', '.join(sorted(KNOWN_SECTIONS))})")

    storage = _expect(data.get("storage", {}), dict, "storage")
    _check_keys(storage, {"url", "read_url"}, "storage")
    storage_url = _storage_url(storage.get("url", "sqlite:///policywatch.db"), "storage.url", base)
    read_url = _storage_url(storage["read_url"], "storage.read_url", base) if "read_url" in storage else None

    crawl_t = _expect(data.get("crawl", {}), dict, "crawl")
    crawl_keys = {"allowed_domains", "user_agent", "obey_robots", "concurrency_per_domain", "download_delay",
                  "autothrottle", "timeout", "retries", "max_size_mb", "page_workers"}
    _check_keys(crawl_t, crawl_keys, "crawl")
    if "allowed_domains" not in crawl_t:
        raise ConfigError("crawl.allowed_domains: missing (list the hosts policywatch may request, e.g. [\"www.canada.ca\"])")
    domains = _str_list(crawl_t["allowed_domains"], "crawl.allowed_domains")
    if not domains:
        raise ConfigError("crawl.allowed_domains: empty; nothing could be requested")
    for i, d in enumerate(domains):
        try:
            AllowedDomains([d])
        except ValueError as exc:
            raise ConfigError(f"crawl.allowed_domains[{i}]: {exc}") from exc
    crawl_kwargs: dict[str, Any] = {}
    for key, typ in (("user_agent", str), ("obey_robots", bool), ("autothrottle", bool), ("concurrency_per_domain", int),
                     ("retries", int), ("max_size_mb", int), ("page_workers", int), ("download_delay", (int, float)), ("timeout", (int, float))):
        if key in crawl_t:
            crawl_kwargs[key] = _expect(crawl_t[key], typ, f"crawl.{key}")
    if crawl_kwargs.get("max_size_mb", 16) < 10:
        raise ConfigError("crawl.max_size_mb: must be at least 10 (IRCC's rounds JSON alone is 0.5 MB and growing)")
    if crawl_kwargs.pop("page_workers", None) is not None:
        log.warning("crawl.page_workers is deprecated and ignored: the page work runs on one thread of the crawl "
                    "(a night is bounded by politeness, not CPU); remove the key")
    if crawl_kwargs.get("concurrency_per_domain", 1) < 1:
        raise ConfigError("crawl.concurrency_per_domain: must be at least 1")
    if crawl_kwargs.get("timeout", 30) <= 0:
        raise ConfigError(f"crawl.timeout: {crawl_kwargs['timeout']!r} must be a positive number of seconds")
    if crawl_kwargs.get("retries", 0) < 0:
        raise ConfigError(f"crawl.retries: {crawl_kwargs['retries']!r} must be 0 (no retry) or more")
    if crawl_kwargs.get("download_delay", 0) < 0:
        raise ConfigError(f"crawl.download_delay: {crawl_kwargs['download_delay']!r} must be 0 or more seconds")
    crawl = CrawlSettings(allowed_domains=domains, **crawl_kwargs)
    allowed = AllowedDomains(list(domains))

    topics: dict[str, Topic] = {}
    topics_t = _expect(data.get("topics", {}), dict, "topics")
    names = set(BUILTIN_TOPICS) | set(topics_t)
    for name in sorted(names):
        t = _expect(topics_t.get(name, {}), dict, f"topics.{name}")
        _check_keys(t, {"keywords", "url_prefixes", "display"}, f"topics.{name}")
        builtin = BUILTIN_TOPICS.get(name, {})
        keywords = tuple(builtin.get("keywords", ())) + _str_list(t.get("keywords", []), f"topics.{name}.keywords")
        prefixes = tuple(builtin.get("url_prefixes", ())) + _str_list(t.get("url_prefixes", []), f"topics.{name}.url_prefixes")
        display = _expect(t.get("display", builtin.get("display", name.replace("-", " ").title())), str, f"topics.{name}.display")
        topics[name] = Topic(name, display, tuple(dict.fromkeys(keywords)), prefixes)

    watches: list[Watch] = []
    watch_list = _expect(data.get("watch", []), list, "watch")
    seen: set[str] = set()
    for i, w in enumerate(watch_list):
        where = f"watch[{i}]"
        _expect(w, dict, where)
        _check_keys(w, {"url", "topics", "kind", "json_records", "json_id"}, where)
        if "url" not in w:
            raise ConfigError(f"{where}.url: missing")
        url = _expect(w["url"], str, f"{where}.url").strip()
        _check_url(url, f"{where}.url")
        if not allowed.allows(url):
            raise ConfigError(f"{where}.url: {url!r} is outside crawl.allowed_domains {list(domains)} (or not http/https)")
        key = normalize_url(url)
        if key in seen:
            raise ConfigError(f"{where}.url: {url!r} is listed twice")
        seen.add(key)
        wt = _str_list(w.get("topics", []), f"{where}.topics")
        for t in wt:
            topics.setdefault(t, Topic(t, t.replace("-", " ").title()))
        kind = _expect(w.get("kind", "auto"), str, f"{where}.kind")
        if kind not in ("auto", "html", "json"):
            raise ConfigError(f"{where}.kind: {kind!r} is not auto, html or json")
        jr = w.get("json_records")
        ji = w.get("json_id")
        watches.append(Watch(url, wt, kind, _expect(jr, str, f"{where}.json_records") if jr is not None else None,
                             _expect(ji, str, f"{where}.json_id") if ji is not None else None))

    disc_t = _expect(data.get("discovery", {}), dict, "discovery")
    _check_keys(disc_t, {"follow_prefixes", "depth", "max_pages", "sitemaps", "feeds"}, "discovery")
    prefixes = _str_list(disc_t.get("follow_prefixes", []), "discovery.follow_prefixes")
    for i, p in enumerate(prefixes):
        _check_url(p, f"discovery.follow_prefixes[{i}]")
        if not allowed.allows(p):
            raise ConfigError(f"discovery.follow_prefixes[{i}]: {p!r} is outside crawl.allowed_domains")
    sources: dict[str, tuple[str, ...]] = {}
    for src in ("sitemaps", "feeds"):
        sources[src] = _str_list(disc_t.get(src, []), f"discovery.{src}")
        for i, u in enumerate(sources[src]):
            _check_url(u, f"discovery.{src}[{i}]")
            if not allowed.allows(u):
                raise ConfigError(f"discovery.{src}[{i}]: {u!r} is outside crawl.allowed_domains (add its host, "
                                  "e.g. api.io.canada.ca for the GC news feed)")
    depth = _expect(disc_t.get("depth", 1), int, "discovery.depth")
    max_pages = _expect(disc_t.get("max_pages", 500), int, "discovery.max_pages")
    if depth < 0 or max_pages < 0:
        raise ConfigError("discovery.depth and discovery.max_pages must not be negative")
    discovery = Discovery(prefixes, depth, max_pages, sources["sitemaps"], sources["feeds"])

    rules = _parse_rules(_expect(data.get("rules", {}), dict, "rules"))

    reports = _expect(data.get("reports", {}), dict, "reports")
    _check_keys(reports, {"dir", "base_url"}, "reports")
    rdir = Path(_expect(reports.get("dir", "reports"), str, "reports.dir"))
    if not rdir.is_absolute():
        rdir = (base / rdir).resolve()
    base_url = reports.get("base_url")
    if base_url is not None:
        base_url = _expect(base_url, str, "reports.base_url")
        _check_url(base_url, "reports.base_url")
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(f"reports.base_url: {base_url!r} must be an http(s) URL (where the report site is published)")
        base_url = base_url.rstrip("/") + "/"

    mail = parse_mail(_expect(data.get("mail", {}), dict, "mail"), base, _expect, _check_keys, ConfigError)
    subscribers = parse_subscribers(_expect(data.get("subscriber", []), list, "subscriber"), set(topics), _expect,
                                    _check_keys, ConfigError)
    if subscribers and mail is None:
        raise ConfigError("subscriber: subscribers are configured but [mail] is missing (host, sender, ...)")
    schedule = parse_schedule(_expect(data.get("schedule", {}), dict, "schedule"), _expect, _check_keys, ConfigError,
                              allowed.allows)

    return Config(path=path, storage_url=storage_url, crawl=crawl, watches=tuple(watches), topics=topics,
                  reports_dir=rdir, discovery=discovery, rules=rules, settings_hash=settings_hash(data), mail=mail,
                  subscribers=subscribers,
                  schedule=schedule, report_base_url=base_url, storage_read_url=read_url)


def settings_hash(data: dict[str, Any]) -> str:
    """The hash `Config.digest` shows (its first 16 hex digits): the same formula since the first release, so
    runs recorded before and after compare."""
    return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()


def _parse_rules(table: dict[str, Any]) -> tuple[Rule, ...]:
    """`[[rules.drop]]` (selector, url_prefix, why) and `[[rules.ignore]]` (pattern, url_prefix, why)."""
    import re

    from cssselect import GenericTranslator, SelectorError

    _check_keys(table, {"drop", "ignore"}, "rules")
    out: list[Rule] = []
    for kind, key in (("drop", "selector"), ("ignore", "pattern")):
        for i, r in enumerate(_expect(table.get(kind, []), list, f"rules.{kind}")):
            where = f"rules.{kind}[{i}]"
            _expect(r, dict, where)
            _check_keys(r, {key, "url_prefix", "why"}, where)
            if key not in r:
                raise ConfigError(f"{where}.{key}: missing")
            value = _expect(r[key], str, f"{where}.{key}")
            try:
                GenericTranslator().css_to_xpath(value) if kind == "drop" else re.compile(value)
            except (SelectorError, re.error) as exc:
                raise ConfigError(f"{where}.{key}: invalid {'CSS selector' if kind == 'drop' else 'regular expression'} {value!r}: {exc}") from exc
            out.append(Rule(kind, value, _expect(r.get("url_prefix", ""), str, f"{where}.url_prefix"),
                            _expect(r.get("why", ""), str, f"{where}.why")))
    return tuple(out)
