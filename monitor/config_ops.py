"""The operational parts of the config: `[mail]`, `[[subscriber]]` and `[schedule]`.

Why a module of its own: the crawl (per-page work) never needs these, and they carry the rules about secrets:
SMTP credentials are named by environment variable (`username_env`, `password_env`), never written in the file,
so the config can be committed and the database never sees a password.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.errors import HeaderParseError
from pathlib import Path
from typing import Any, Callable

SIGNIFICANCES = ("low", "medium", "high")
SECURITY = ("none", "starttls", "ssl")
FREQUENCIES = ("nightly", "weekly")


@dataclass(frozen=True)
class MailSettings:
    """How digests leave: one SMTP server, one sender, secrets from the environment."""

    host: str
    port: int
    security: str = "none"  # none | starttls | ssl
    sender: str = "policywatch <policywatch@localhost>"
    username_env: str | None = None
    password_env: str | None = None
    timeout: float = 30.0
    ca_file: Path | None = None  # a CA bundle for a private mail relay's certificate
    operator: str | None = None  # operator alerts (failed pass, stale sources) go here only
    #: log in without TLS: only to a relay on this machine (loopback), and only when set explicitly
    allow_plaintext_auth: bool = False

    @property
    def sender_domain(self) -> str:
        """The right-hand side of our Message-IDs."""
        try:
            return _address(self.sender).domain or "policywatch.invalid"
        except ValueError:
            return "policywatch.invalid"


@dataclass(frozen=True)
class Subscriber:
    email: str
    name: str = ""
    topics: tuple[str, ...] = ()  # empty: every topic
    min_significance: str = "low"
    frequency: str = "nightly"  # nightly | weekly
    heartbeat: bool = False  # also send "no changes" on empty nights


@dataclass(frozen=True)
class ScheduleJob:
    """An extra schedule for some watches (e.g. IRCC's JSON endpoints every hour)."""

    name: str
    cron: str
    url_prefixes: tuple[str, ...]


@dataclass(frozen=True)
class Schedule:
    cron: str = "0 3 * * *"
    timezone: str = "America/Toronto"
    misfire_grace_hours: float = 6.0
    jobs: tuple[ScheduleJob, ...] = ()


def _address(value: str) -> Address:
    """Parse "Name <a@b.c>" or "a@b.c"; ValueError if it is not one address."""
    from email.headerregistry import HeaderRegistry

    try:
        header = HeaderRegistry()("To", value)
    except (HeaderParseError, IndexError) as exc:
        raise ValueError(str(exc)) from exc
    addrs = header.addresses
    if len(addrs) != 1 or not addrs[0].domain or not addrs[0].username or header.defects:
        raise ValueError("not a single e-mail address")
    return addrs[0]


Expect = Callable[[Any, Any, str], Any]


def parse_mail(table: dict[str, Any], base: Path, expect: Expect, check_keys: Callable[..., None],
               error: type[Exception]) -> MailSettings | None:
    if not table:
        return None
    check_keys(table, {"host", "port", "security", "sender", "username_env", "password_env", "timeout", "ca_file",
                       "operator", "allow_plaintext_auth"}, "mail")
    if "host" not in table:
        raise error("mail.host: missing (the SMTP server digests are sent through)")
    security = expect(table.get("security", "none"), str, "mail.security")
    if security not in SECURITY:
        raise error(f"mail.security: {security!r} is not none, starttls or ssl")
    port = expect(table.get("port", 465 if security == "ssl" else 587 if security == "starttls" else 25), int, "mail.port")
    if not 0 < port < 65536:
        raise error(f"mail.port: {port} is not a TCP port")
    sender = expect(table.get("sender", "policywatch <policywatch@localhost>"), str, "mail.sender")
    operator = table.get("operator")
    for key, value in (("sender", sender), ("operator", operator)):
        if value is None:
            continue
        expect(value, str, f"mail.{key}")
        try:
            _address(value)
        except ValueError:
            raise error(f"mail.{key}: {value!r} is not an e-mail address") from None
    envs = {}
    for key in ("username_env", "password_env"):
        if key in table:
            name = expect(table[key], str, f"mail.{key}")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise error(f"mail.{key}: {name!r} is not an environment variable name (write the variable's "
                            "name here, never the secret itself)")
            envs[key] = name
    if ("username_env" in envs) != ("password_env" in envs):
        raise error("mail: set both username_env and password_env, or neither")
    host = expect(table["host"], str, "mail.host")
    plaintext = expect(table.get("allow_plaintext_auth", False), bool, "mail.allow_plaintext_auth")
    if plaintext and not is_loopback(host):
        raise error(f"mail.allow_plaintext_auth: only for a relay on this machine (localhost, 127.0.0.1, ::1), "
                    f"not {host!r}: use security = \"starttls\" or \"ssl\"")
    if envs and security == "none" and not plaintext:
        raise error("mail.security: \"none\" with username_env/password_env would send the SMTP password in clear "
                    "text: use \"starttls\" or \"ssl\" (for a relay on this machine only: allow_plaintext_auth = true)")
    timeout = float(expect(table.get("timeout", 30), (int, float), "mail.timeout"))
    if timeout <= 0:
        raise error(f"mail.timeout: {timeout:g} must be a positive number of seconds")
    ca = table.get("ca_file")
    ca_file = None
    if ca is not None:
        ca_file = Path(expect(ca, str, "mail.ca_file"))
        ca_file = ca_file if ca_file.is_absolute() else (base / ca_file).resolve()
    return MailSettings(host, port, security, sender, envs.get("username_env"), envs.get("password_env"), timeout,
                        ca_file, operator, plaintext)


def is_loopback(host: str) -> bool:
    """A host name or address on this machine (no network between us and it)."""
    import ipaddress

    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_subscribers(items: list[Any], topics: set[str], expect: Expect, check_keys: Callable[..., None],
                      error: type[Exception]) -> tuple[Subscriber, ...]:
    out: list[Subscriber] = []
    seen: set[str] = set()
    for i, t in enumerate(items):
        where = f"subscriber[{i}]"
        expect(t, dict, where)
        check_keys(t, {"email", "name", "topics", "min_significance", "frequency", "heartbeat"}, where)
        if "email" not in t:
            raise error(f"{where}.email: missing")
        email = expect(t["email"], str, f"{where}.email").strip()
        try:
            addr = _address(email)
        except ValueError:
            raise error(f"{where}.email: {email!r} is not an e-mail address") from None
        key = addr.addr_spec.lower()
        if key in seen:
            raise error(f"{where}.email: {email!r} is listed twice")
        seen.add(key)
        sub_topics = expect(t.get("topics", []), list, f"{where}.topics")
        for j, name in enumerate(sub_topics):
            expect(name, str, f"{where}.topics[{j}]")
            if name not in topics:
                raise error(f"{where}.topics[{j}]: unknown topic {name!r} (known: {', '.join(sorted(topics))})")
        sig = expect(t.get("min_significance", "low"), str, f"{where}.min_significance")
        if sig not in SIGNIFICANCES:
            raise error(f"{where}.min_significance: {sig!r} is not low, medium or high")
        freq = expect(t.get("frequency", "nightly"), str, f"{where}.frequency")
        if freq not in FREQUENCIES:
            raise error(f"{where}.frequency: {freq!r} is not nightly or weekly")
        out.append(Subscriber(addr.addr_spec, expect(t.get("name", addr.display_name or ""), str, f"{where}.name"),
                              tuple(sub_topics), sig, freq, expect(t.get("heartbeat", False), bool, f"{where}.heartbeat")))
    return tuple(out)


def parse_schedule(table: dict[str, Any], expect: Expect, check_keys: Callable[..., None],
                   error: type[Exception], allows: Callable[[str], bool]) -> Schedule:
    check_keys(table, {"cron", "timezone", "misfire_grace_hours", "jobs"}, "schedule")
    cron = expect(table.get("cron", Schedule.cron), str, "schedule.cron")
    tz = expect(table.get("timezone", Schedule.timezone), str, "schedule.timezone")
    grace = float(expect(table.get("misfire_grace_hours", Schedule.misfire_grace_hours), (int, float),
                         "schedule.misfire_grace_hours"))
    if grace <= 0:
        raise error("schedule.misfire_grace_hours: must be positive")
    _check_cron(cron, tz, "schedule.cron", error)
    jobs: list[ScheduleJob] = []
    names = set()
    for i, j in enumerate(expect(table.get("jobs", []), list, "schedule.jobs")):
        where = f"schedule.jobs[{i}]"
        expect(j, dict, where)
        check_keys(j, {"name", "cron", "url_prefixes"}, where)
        for key in ("name", "cron", "url_prefixes"):
            if key not in j:
                raise error(f"{where}.{key}: missing")
        name = expect(j["name"], str, f"{where}.name")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) or name == "nightly" or name in names:
            raise error(f"{where}.name: {name!r} must be a unique lower-case name (not 'nightly')")
        names.add(name)
        _check_cron(expect(j["cron"], str, f"{where}.cron"), tz, f"{where}.cron", error)
        prefixes = expect(j["url_prefixes"], list, f"{where}.url_prefixes")
        for k, p in enumerate(prefixes):
            if not allows(expect(p, str, f"{where}.url_prefixes[{k}]")):
                raise error(f"{where}.url_prefixes[{k}]: {p!r} is outside crawl.allowed_domains")
        if not prefixes:
            raise error(f"{where}.url_prefixes: empty")
        jobs.append(ScheduleJob(name, j["cron"], tuple(prefixes)))
    return Schedule(cron, tz, grace, tuple(jobs))


def _check_cron(cron: str, tz: str, key: str, error: type[Exception]) -> None:
    """Validate with APScheduler itself, so what the config accepts is what the daemon runs."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(tz)
    except Exception:
        raise error(f"schedule.timezone: {tz!r} is not an IANA time zone (e.g. America/Toronto)") from None
    try:
        CronTrigger.from_crontab(cron, timezone=zone)
    except ValueError as exc:
        raise error(f"{key}: {cron!r} is not a crontab expression (minute hour day month weekday): {exc}") from None
