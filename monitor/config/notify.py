"""The rules of a subscriber's channels (`notify`, `notify_env`): which apprise URLs may sit in the config
file, how a channel is named where secrets must not appear, which channels a subscriber has tonight."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: Services whose apprise URL is itself a secret (a token in the host or path): `notify_env`, never `notify`.
TOKEN_SCHEMES = frozenset(
    {
        "slack",
        "msteams",
        "workflow",
        "workflows",
        "discord",
        "tgram",
        "matrix",
        "matrixs",
        "mmost",
        "mmosts",
        "rocket",
        "rockets",
        "pover",
        "pbul",
        "gchat",
        "zulip",
        "twist",
        "signal",
        "signals",
    }
)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def label(url: str) -> str:
    """A URL without secrets: scheme, host, port and path; no user, password, query or fragment."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def url_problem(url: str) -> str | None:
    """Why a `notify` URL cannot be used (None: it can): apprise must know it, and it must hold no secret."""
    import apprise

    parts = urlsplit(url.strip())
    if not parts.scheme or "://" not in url:
        return f"{url!r} is not an apprise URL (e.g. json://host/path, ntfy://topic)"
    if parts.scheme.lower() in TOKEN_SCHEMES or parts.password or parts.username:
        return (
            f"a {parts.scheme}:// URL carries a secret: put it in an environment variable and name that "
            "variable in notify_env"
        )
    if apprise.Apprise.instantiate(url) is None:
        return f"apprise cannot use {label(url)!r} (see https://github.com/caronc/apprise/wiki)"
    return None


def env_urls(var: str, environ: dict[str, str]) -> list[str]:
    """The apprise URLs an environment variable holds: separated by spaces, commas or new lines."""
    return [u for u in re.split(r"[\s,]+", environ.get(var, "")) if u]
