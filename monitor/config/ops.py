"""The operational parts of the config: `[mail]`, `[[subscriber]]` and `[schedule]`.

Why a module of its own: the crawl (per-page work) never needs these, and they carry the rules about secrets:
SMTP credentials are named by environment variable (`username_env`, `password_env`), never written in the
file, so the config can be committed and the database never sees a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import cast

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
    #: `[mail] mbox`: messages are appended to this file instead of going to an SMTP server (the demo)
    mbox: Path | None = None

    @property
    def sender_domain(self) -> str:
        """The right-hand side of our Message-IDs."""
        try:
            return address(self.sender).domain or "policywatch.invalid"
        except ValueError:
            return "policywatch.invalid"


@dataclass(frozen=True)
class Subscriber:
    email: str  # "" when the subscriber has only channels
    name: str = ""
    topics: tuple[str, ...] = ()  # empty: every topic
    min_significance: str = "low"
    frequency: str = "nightly"  # immediate (every pass, jobs' too) | nightly | weekly
    heartbeat: bool = False  # also send "no changes" on empty nights (e-mail)
    notify: tuple[str, ...] = ()  # apprise URLs without secrets
    notify_env: str | None = None  # an environment variable holding apprise URLs (tokens stay out of files)

    @property
    def owner(self) -> str:
        """How the subscriber is known in the outbox and in logs: its address, else its name."""
        return self.email or self.name


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


def address(value: str) -> Address:
    """Parse "Name <a@b.c>" or "a@b.c"; ValueError if it is not one address."""
    from email.headerregistry import AddressHeader, HeaderRegistry

    try:
        header = HeaderRegistry()("To", value)
    except (HeaderParseError, IndexError) as exc:
        raise ValueError(str(exc)) from exc
    addrs = cast(AddressHeader, header).addresses  # a To header is an address header
    if len(addrs) != 1 or not addrs[0].domain or not addrs[0].username or header.defects:
        raise ValueError("not a single e-mail address")
    return addrs[0]


def is_loopback(host: str) -> bool:
    """A host name or address on this machine (no network between us and it)."""
    import ipaddress

    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_time_zone(name: str) -> None:
    """ValueError unless `name` is an IANA time zone."""
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except Exception:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. America/Toronto)") from None


def check_cron_expression(cron: str) -> None:
    """ValueError unless APScheduler reads `cron` as a crontab expression: what the config accepts is what the
    daemon runs."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(cron)
    except ValueError as exc:
        raise ValueError(
            f"{cron!r} is not a crontab expression (minute hour day month weekday): {exc}"
        ) from None
