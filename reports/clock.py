"""One time policy for every human output (site, charts, run reports, digests, CLI tables, `status`): times
are shown in the configured zone (`[schedule] timezone`) with the zone named, to the minute ("2026-12-05 12:15
EST"). Machine outputs (JSON, CSV, the Atom feed, `datetime` attributes) keep ISO 8601 with its offset."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=32)
def zone(name: str | None) -> tzinfo:
    """The zone a config names; UTC for none (the config schema has already refused an unknown name)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def aware(when: datetime) -> datetime:
    """Stored times are UTC; a naive one (SQLite hands some back so) is read as UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def local(when: datetime, zone_name: str | None) -> datetime:
    return aware(when).astimezone(zone(zone_name))


def human(when: datetime | None, zone_name: str | None, *, seconds: bool = False) -> str:
    """ "2026-12-05 12:15 EST" ('' for no time): what a person reads, in the zone they configured, named."""
    if when is None:
        return ""
    return local(when, zone_name).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def day(when: datetime | None, zone_name: str | None) -> str:
    """The date in the configured zone ("2026-12-05"): 02:00 UTC is the evening before in Toronto."""
    return local(when, zone_name).strftime("%Y-%m-%d") if when is not None else ""


def zone_label(zone_name: str | None, at: datetime | None = None) -> str:
    """The zone as a reader knows it ("EST", "UTC") at `at` (now by default): for axis titles and headers."""
    return (at or datetime.now(UTC)).astimezone(zone(zone_name)).strftime("%Z")


def iso(when: datetime | None) -> str:
    """ISO 8601 in UTC with its offset, to the second: for machines (feeds, `datetime` attributes)."""
    return aware(when).astimezone(UTC).isoformat(timespec="seconds") if when is not None else ""
