"""Load and validate policywatch's TOML configuration.

Why strict: a typo in a nightly job's config (``[storge]``) must fail loudly the first night, naming the key,
not silently fall back to defaults and watch nothing. Every error names the offending key path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from policywatch.monitor.config.ops import (
    MailSettings,
    Schedule,
    ScheduleJob,
    Subscriber,
    address,
    is_loopback,
)
from policywatch.monitor.config.schema import ConfigFile, MailTable, SubscriberTable, describe
from policywatch.monitor.detection.topics import BUILTIN_TOPICS, Topic
from policywatch.monitor.urls import AllowedDomains, normalize_url, redact_url

log = logging.getLogger("policywatch.config")

ENV_VAR = "POLICYWATCH_CONFIG"
DEFAULT_FILE = "policywatch.toml"


class ConfigError(Exception):
    """A configuration problem, with the key path in the message."""


@dataclass(frozen=True, slots=True)
class Watch:
    """One `[[watch]]` entry. Slotted: the pass and the crawl each hold the whole watchlist (see
    `_watch_index`)."""

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
    #: host → its own delay (seconds between requests), for the hosts that need another pace
    host_delays: tuple[tuple[str, float], ...] = ()


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
    keywords: tuple[str, ...] = ()  # an entry is followed only when it matches one (empty: every entry)
    source_keywords: tuple[tuple[str, tuple[str, ...]], ...] = ()  # a source's own keywords, by its URL
    issue_feeds: tuple[tuple[str, int], ...] = ()  # feeds whose entries are issues: (URL, newest issues read)

    def keywords_for(self, source: str) -> tuple[str, ...]:
        """The words a source's entries must match one of (its own, else `[discovery] keywords`)."""
        return dict(self.source_keywords).get(source) or self.keywords

    def issues_read(self, source: str) -> int:
        """How many of a feed's newest entries are issues to read (0: its entries are the pages)."""
        return dict(self.issue_feeds).get(source, 0)


@dataclass(frozen=True)
class Parity:
    """`[parity]`: watch each page's twin in the other official language and say when one falls behind."""

    languages: tuple[str, ...] = ()  # e.g. ("en", "fr"); empty: parity is off
    grace_days: float = 3.0  # a twin this late is reported (run report, site, digests)

    @property
    def on(self) -> bool:
        return len(self.languages) >= 2


@dataclass(frozen=True)
class ArchiveSettings:
    """`[archive]`: where `policywatch backfill` reads history, and how politely."""

    url: str = "https://web.archive.org"
    delay: float = 1.0
    retries: int = 3
    timeout: float = 60.0


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
    #: (it grows with the watchlist).
    settings_hash: str = field(default="", compare=False, repr=False)
    mail: MailSettings | None = None
    subscribers: tuple[Subscriber, ...] = ()
    schedule: Schedule = field(default_factory=Schedule)
    report_base_url: str | None = None  # where the static report site is published (links in e-mail and Atom)
    #: `[storage] read_url`: where `sql`, `export` and Datasette read (a read-only role for analysts)
    storage_read_url: str | None = None
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    parity: Parity = field(default_factory=Parity)

    @property
    def read_url(self) -> str:
        """The database the read-only commands use: `[storage] read_url` when set, else `[storage] url`."""
        return self.storage_read_url or self.storage_url

    def require_watchlist(self) -> None:
        """A pass with nothing to fetch is a config error, not a quiet night (commands that only read the
        history accept a config without watches)."""
        if not self.watches and not (self.discovery.sitemaps or self.discovery.feeds):
            raise ConfigError(
                "watch: the watchlist is empty and no discovery source is set, so a pass would fetch "
                "nothing: add [[watch]] entries (`policywatch init` writes a starter file)"
            )

    def rules_for(self, url: str) -> tuple[list[tuple[str, str]], list[str], str]:
        """(drop selectors with reasons, ignore patterns, digest) of the rules that apply to `url`."""
        applicable = [r for r in self.rules if r.applies(url)]
        drops = [(r.value, r.why or "rule") for r in applicable if r.kind == "drop"]
        ignores = [r.value for r in applicable if r.kind == "ignore"]
        digest = (
            hashlib.sha256(repr([(r.kind, r.value) for r in applicable]).encode()).hexdigest()[:12]
            if applicable
            else ""
        )
        return drops, ignores, digest

    @property
    def allowed(self) -> AllowedDomains:
        return AllowedDomains(list(self.crawl.allowed_domains))

    def digest(self) -> str:
        """A short hash of the file's settings, stored on each run so analysts can see config changes."""
        return self.settings_hash[:16]

    def subset(self, url_prefixes: tuple[str, ...]) -> Config:
        """The config of a scheduled job's pass: the watches under `url_prefixes`, and no discovery."""
        from dataclasses import replace

        return replace(
            self,
            watches=tuple(w for w in self.watches if w.url.startswith(url_prefixes)),
            discovery=Discovery(follow_prefixes=(), depth=0, max_pages=0),
        )

    def job(self, name: str) -> ScheduleJob:
        """A `[[schedule.jobs]]` entry by name (ConfigError naming the known ones)."""
        for j in self.schedule.jobs:
            if j.name == name:
                return j
        known = ", ".join(j.name for j in self.schedule.jobs) or "none configured"
        raise ConfigError(f"schedule.jobs: no job named {name!r} (known: {known})")

    @cached_property
    def _watch_index(self) -> dict[str, Watch]:
        """Normalized URL → watch. A key equal to its watch's URL (the usual case) is that same string object,
        not a copy, so the index and the crawl's "seen" set built from its keys add little to the watchlist.
        """
        index: dict[str, Watch] = {}
        for w in self.watches:
            key = normalize_url(w.url)
            index[w.url if key == w.url else key] = w
        return index

    def watch_keys(self) -> Iterable[str]:
        """The watchlist's normalized URLs (the index's own strings: a set built from them shares them)."""
        return self._watch_index.keys()

    def watch_for(self, url: str) -> Watch | None:
        """The watch for `url` (normalized), by dict lookup: the pipeline asks once per page, for 10,000
        pages."""
        return self._watch_index.get(normalize_url(url))


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


def _resolve_sqlite(url: str, base: Path) -> str:
    """Relative SQLite paths are relative to the config file, so cron jobs work from any directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        rel = url[len(prefix) :]
        if rel and not Path(rel).is_absolute():
            return prefix + str((base / rel).resolve())
    return url


def _relative(value: str, base: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else (base / path).resolve()


def _fail(key: str, message: str) -> NoReturn:
    raise ConfigError(f"{key}: {message}")


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    """Validate the parsed TOML against the schema (monitor.config.schema), then check what relates tables and
    build the config; ConfigError names the key path."""
    base = path.parent if path else Path.cwd()
    f = _validated(data)
    crawl = _crawl(f.crawl)
    inside = _Inside(crawl.allowed_domains)
    topics = _topics(f)
    watches = _watches(f, inside, topics)
    mail = _mail(f.mail, base) if f.mail is not None else None
    subscribers = _subscribers(f.subscriber, set(topics))
    if any(s.email for s in subscribers) and mail is None:
        _fail("subscriber", "subscribers with an email are configured but [mail] is missing (host, sender …)")
    return Config(
        path=path,
        storage_url=_resolve_sqlite(f.storage.url, base),
        crawl=crawl,
        watches=tuple(watches),
        topics=topics,
        reports_dir=_relative(f.reports.dir, base),
        discovery=_discovery(f.discovery, inside),
        rules=tuple(
            [Rule("drop", r.selector, r.url_prefix, r.why) for r in f.rules.drop]
            + [Rule("ignore", r.pattern, r.url_prefix, r.why) for r in f.rules.ignore]
        ),
        settings_hash=settings_hash(data),
        mail=mail,
        subscribers=subscribers,
        schedule=_schedule(f, inside),
        report_base_url=f.reports.base_url.rstrip("/") + "/" if f.reports.base_url else None,
        storage_read_url=_resolve_sqlite(f.storage.read_url, base) if f.storage.read_url else None,
        archive=ArchiveSettings(
            f.archive.url.rstrip("/"), float(f.archive.delay), f.archive.retries, float(f.archive.timeout)
        ),
        parity=Parity(tuple(dict.fromkeys(f.parity.languages)), float(f.parity.grace_days)),
    )


def _validated(data: dict[str, Any]) -> ConfigFile:
    if "cluster" in data:
        _fail(
            "cluster",
            "the cluster mode (Redis frontier, `policywatch worker`) was removed: a night is bounded by "
            "politeness towards each host, not by one machine. Delete [cluster]; to share the work, give "
            "each machine its own part of the watchlist and one PostgreSQL storage.url (docs/deployment.md, "
            '"Scaling")',
        )
    try:
        return ConfigFile.model_validate({"crawl": {}, **data})
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def _crawl(c: Any) -> CrawlSettings:
    if c.page_workers is not None:
        log.warning(
            "crawl.page_workers is deprecated and ignored: the page work runs on one thread of the crawl "
            "(a night is bounded by politeness, not CPU); remove the key"
        )
    return CrawlSettings(
        tuple(c.allowed_domains),
        c.user_agent,
        c.obey_robots,
        c.concurrency_per_domain,
        float(c.download_delay),
        c.autothrottle,
        float(c.timeout),
        c.retries,
        c.max_size_mb,
        _host_delays(c),
    )


def _host_delays(c: Any) -> tuple[tuple[str, float], ...]:
    """[crawl] host_delays, each host one of allowed_domains (a port, if it names one, is part of it)."""
    allowed = {d.lower() for d in c.allowed_domains} | {d.lower().split(":")[0] for d in c.allowed_domains}
    for host in c.host_delays:
        if host.lower() not in allowed:
            _fail(
                f"crawl.host_delays.{host}",
                f"{host!r} is not one of crawl.allowed_domains {list(c.allowed_domains)}",
            )
    return tuple((host.lower(), float(delay)) for host, delay in c.host_delays.items())


class _Inside:
    """Fails with the key path when a configured URL is outside crawl.allowed_domains."""

    def __init__(self, domains: tuple[str, ...]):
        self.domains, self.allowed = domains, AllowedDomains(list(domains))

    def __call__(self, url: str, key: str, hint: str = "") -> None:
        if not self.allowed.allows(url):
            _fail(
                key,
                f"{redact_url(url)!r} is outside crawl.allowed_domains {list(self.domains)} "
                f"(or not http/https){hint}",
            )


def _topics(f: ConfigFile) -> dict[str, Topic]:
    """The built-in topics, extended or added to by [topics.NAME]."""
    topics: dict[str, Topic] = {}
    for name in sorted(set(BUILTIN_TOPICS) | set(f.topics)):
        t, builtin = f.topics.get(name), BUILTIN_TOPICS.get(name, {})
        keywords = tuple(builtin.get("keywords", ())) + tuple(t.keywords if t else ())
        prefixes = tuple(builtin.get("url_prefixes", ())) + tuple(t.url_prefixes if t else ())
        display = (
            (t.display if t and t.display is not None else None)
            or builtin.get("display")
            or name.replace("-", " ").title()
        )
        topics[name] = Topic(name, display, tuple(dict.fromkeys(keywords)), prefixes)
    return topics


def _watches(f: ConfigFile, inside: _Inside, topics: dict[str, Topic]) -> list[Watch]:
    """[[watch]], each inside the allowed domains and listed once; a topic a watch names is known."""
    watches: list[Watch] = []
    seen: set[str] = set()
    for i, w in enumerate(f.watch):
        inside(w.url, f"watch[{i}].url")
        key = normalize_url(w.url)
        if key in seen:
            _fail(f"watch[{i}].url", f"{w.url!r} is listed twice")
        seen.add(key)
        for name in w.topics:
            topics.setdefault(name, Topic(name, name.replace("-", " ").title()))
        watches.append(Watch(w.url, tuple(w.topics), w.kind, w.json_records, w.json_id))
    return watches


def _discovery(d: Any, inside: _Inside) -> Discovery:
    for i, u in enumerate(d.follow_prefixes):
        inside(u, f"discovery.follow_prefixes[{i}]")
    own: list[tuple[str, tuple[str, ...]]] = []
    issues: list[tuple[str, int]] = []
    urls: dict[str, list[str]] = {"sitemaps": [], "feeds": []}
    for src in ("sitemaps", "feeds"):
        for i, item in enumerate(getattr(d, src)):
            u = item if isinstance(item, str) else item.url
            inside(u, f"discovery.{src}[{i}]", " — add its host, e.g. api.io.canada.ca for the GC news feed")
            urls[src].append(u)
            if not isinstance(item, str) and item.keywords:
                own.append((u, tuple(k.strip() for k in item.keywords if k.strip())))
            if not isinstance(item, str) and item.entries == "issues":
                if src != "feeds":
                    _fail(f"discovery.{src}[{i}].entries", '"issues" is for feeds whose entries are issues')
                issues.append((u, item.max_issues))
    return Discovery(
        tuple(d.follow_prefixes),
        d.depth,
        d.max_pages,
        tuple(urls["sitemaps"]),
        tuple(urls["feeds"]),
        tuple(k.strip() for k in d.keywords if k.strip()),
        tuple(own),
        tuple(issues),
    )


def _schedule(f: ConfigFile, inside: _Inside) -> Schedule:
    names: set[str] = set()
    jobs = []
    for i, j in enumerate(f.schedule.jobs):
        if j.name in names:
            _fail(f"schedule.jobs[{i}].name", f"{j.name!r} must be a unique lower-case name (not 'nightly')")
        names.add(j.name)
        for k, prefix in enumerate(j.url_prefixes):
            inside(prefix, f"schedule.jobs[{i}].url_prefixes[{k}]")
        jobs.append(ScheduleJob(j.name, j.cron, tuple(j.url_prefixes)))
    sch = f.schedule
    return Schedule(sch.cron, sch.timezone, float(sch.misfire_grace_hours), tuple(jobs))


def _mail(m: MailTable, base: Path) -> MailSettings:
    """[mail], with the rules about secrets: both credential variables or neither, and never a login in clear
    text, except to a relay on this machine when `allow_plaintext_auth` says so."""
    if (m.host is None) == (m.mbox is None):
        _fail(
            "mail",
            "set host (the SMTP server digests leave through) or mbox (a file they are appended to), not "
            + ("both" if m.host else "neither"),
        )
    if (m.username_env is None) != (m.password_env is None):
        _fail("mail", "set both username_env and password_env, or neither")
    if m.allow_plaintext_auth and not is_loopback(m.host or ""):
        _fail(
            "mail.allow_plaintext_auth",
            f"only for a relay on this machine (localhost, 127.0.0.1, ::1), not "
            f'{m.host!r}: use security = "starttls" or "ssl"',
        )
    if m.username_env and m.security == "none" and not m.allow_plaintext_auth:
        _fail(
            "mail.security",
            '"none" with username_env/password_env would send the SMTP password in clear text: '
            'use "starttls" or "ssl" (for a relay on this machine only: allow_plaintext_auth = true)',
        )
    port = m.port if m.port is not None else {"ssl": 465, "starttls": 587}.get(m.security, 25)
    return MailSettings(
        m.host or "",
        port,
        m.security,
        m.sender,
        m.username_env,
        m.password_env,
        float(m.timeout),
        _relative(m.ca_file, base) if m.ca_file else None,
        m.operator,
        m.allow_plaintext_auth,
        _relative(m.mbox, base) if m.mbox else None,
    )


def _subscribers(items: list[SubscriberTable], topics: set[str]) -> tuple[Subscriber, ...]:
    out: list[Subscriber] = []
    seen: set[str] = set()
    for i, t in enumerate(items):
        if t.email is None and not t.notify and not t.notify_env:
            _fail(
                f"subscriber[{i}]", "give email, notify (apprise URLs) or notify_env (a variable naming them)"
            )
        addr = address(t.email.strip()) if t.email is not None else None
        key = addr.addr_spec.lower() if addr is not None else (t.name or f"subscriber {i + 1}").strip()
        if key.lower() in seen:
            what = "email" if addr is not None else "name"
            _fail(f"subscriber[{i}].{what}", f"{key!r} is listed twice")
        seen.add(key.lower())
        _check_channels(i, t)
        for j, name in enumerate(t.topics):
            if name not in topics:
                _fail(
                    f"subscriber[{i}].topics[{j}]",
                    f"unknown topic {name!r} (known: {', '.join(sorted(topics))})",
                )
        display = addr.display_name if addr is not None else ""
        out.append(
            Subscriber(
                addr.addr_spec if addr is not None else "",
                t.name if t.name is not None else (display or ("" if addr is not None else key)),
                tuple(t.topics),
                t.min_significance,
                t.frequency,
                t.heartbeat,
                tuple(u.strip() for u in t.notify),
                t.notify_env,
            )
        )
    return tuple(out)


def _check_channels(i: int, t: SubscriberTable) -> None:
    """`notify` URLs apprise can use and that carry no secret; `notify_env` a variable's name (its value is
    read when messages are sent, so the secret never passes through the config)."""
    if t.notify:
        from policywatch.monitor.config.notify import url_problem

        for j, url in enumerate(t.notify):
            problem = url_problem(url)
            if problem:
                _fail(f"subscriber[{i}].notify[{j}]", problem)
    if t.notify_env is not None:
        from policywatch.monitor.config.notify import ENV_NAME

        if not ENV_NAME.fullmatch(t.notify_env):
            _fail(f"subscriber[{i}].notify_env", f"{t.notify_env!r} is not an environment variable's name")


def settings_hash(data: dict[str, Any]) -> str:
    """The hash `Config.digest` shows (its first 16 hex digits): the same formula since the first release, so
    runs recorded before and after compare."""
    return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()
