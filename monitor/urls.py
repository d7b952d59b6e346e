"""URL normalization and the allowed-domains rule.

Why here: the crawler enforces the rule on every request and redirect, the config validates discovery sources
against it, and storage keys pages by the normalized form. One implementation keeps them in agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(url: str) -> str:
    """Return the key a URL is stored under: lower-case scheme and host, no default port, no fragment.

    Path and query are kept byte for byte: canada.ca paths are case-sensitive and IRCC's JSON uses queries.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


@dataclass(frozen=True)
class DomainRule:
    """One `allowed_domains` entry: a host (and its subdomains) or an exact `host:port`."""

    host: str
    port: int | None

    @classmethod
    def parse(cls, entry: str) -> DomainRule:
        entry = entry.strip().lower()
        if not entry or "/" in entry or entry.startswith("."):
            raise ValueError(f"{entry!r} is not a host or host:port")
        host, sep, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if not sep:
            return cls(entry, None)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r} has an invalid port")
        return cls(host, int(port))

    def allows(self, scheme: str, host: str, port: int | None) -> bool:
        host_ok = host == self.host or host.endswith("." + self.host)
        if self.port is None:  # no port named: only the scheme's default port
            return host_ok and (port is None or port == DEFAULT_PORTS.get(scheme))
        effective = port if port is not None else DEFAULT_PORTS.get(scheme)
        return host_ok and effective == self.port


class AllowedDomains:
    """The set of places policywatch may request: http(s) only, host and port checked."""

    def __init__(self, entries: list[str]):
        self.rules = [DomainRule.parse(e) for e in entries]

    def allows(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        return any(r.allows(parts.scheme, parts.hostname.lower(), port) for r in self.rules)


#: Scrapy's URLLENGTH_LIMIT: a request whose URL is longer is dropped without a response, so a watch that long
#: would never be fetched (and never fail either). The config refuses it instead.
MAX_URL_LENGTH = 2083


def url_problem(url: str) -> str | None:
    """Why a configured URL could never be fetched or must not be stored, or None. Why at load: Scrapy drops
    such a request silently, and a URL's user name or password would be copied into every report and log."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return (
            "carries a user name or password: credentials never go in a URL (they would appear in "
            "reports and logs)"
        )
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "contains white space or control characters (percent-encode them)"
    length = len(url) if url.isascii() else len(_request_form(url))
    if length > MAX_URL_LENGTH:
        return (
            f"is {length:,} characters long; requests longer than {MAX_URL_LENGTH:,} are dropped by the "
            "crawler"
        )
    return None


def _request_form(url: str) -> str:
    """The URL as it is requested (non-ASCII characters percent-encoded, as Scrapy does)."""
    from w3lib.url import safe_url_string

    return safe_url_string(url)


def redact_url(url: str) -> str:
    """`url` with any user name and password replaced, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(
        (parts.scheme, "***@" + parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment)
    )
