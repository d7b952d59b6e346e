"""Team channels — Slack, Microsoft Teams, Discord, ntfy, a JSON webhook … — through the apprise library: a
digest becomes one short message per channel (a title, then one line per change, the fact first), cut to the
service's length limit with "+N more" and a link to the site.

A channel's apprise URL may carry a token (Slack, Teams): it lives only in memory (the config's `notify`, for
URLs without secrets, or the environment variable `notify_env` names, read by the pass). The outbox, logs,
reports and `digest_log` know a channel by its label (monitor.config.notify): never the URL itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from policywatch.reports.digest import Digest
from policywatch.reports.mail import SendError
from policywatch.reports.render import one_line


@dataclass(frozen=True)
class Channel:
    """One place a subscriber's messages go. `url` may hold a secret: never stored, logged or shown."""

    owner: str  # the subscriber: its e-mail address, else its name
    label: str  # how logs, reports and digest_log name the channel
    url: str = field(repr=False)

    @property
    def key(self) -> str:
        """The channel's identity in the outbox (the subscriber row's key): no secret in it."""
        return f"{self.owner} → {self.label}"[:320]


@dataclass(frozen=True)
class ChannelSubscriber:
    """A subscriber's channel as the outbox sees a recipient: its own watermark, the subscriber's choices."""

    channel: Channel
    name: str
    topics: tuple[str, ...]
    min_significance: str
    frequency: str
    heartbeat: bool = False

    @property
    def email(self) -> str:  # the outbox keys its rows by this
        return self.channel.key


def _limits(url: str) -> tuple[int, int]:
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return 250, 32768
    return int(getattr(plugin, "title_maxlen", 250) or 250), int(
        getattr(plugin, "body_maxlen", 32768) or 32768
    )


#: Scraped text is hostile in a chat message too: it must not make a link, a mention or markup of its own.
#: A zero-width space breaks Markdown's `](` (a link) and "@everyone" / "@here"; angle brackets (Slack's
#: <!channel>, <url|text>) become look-alikes. What a reader sees is unchanged.
_INERT = str.maketrans({"<": "‹", ">": "›", "@": "@\u200b"})


def inert(text: str) -> str:
    return text.translate(_INERT).replace("](", "]\u200b(")


def _line(entry: Any, base_url: str | None) -> str:
    c = entry.latest
    fact = one_line(c, 160)
    where = inert(entry.title) if entry.title not in fact else ""
    fact = inert(fact)
    star = "★ " if entry.details_released else ""
    link = f" — [diff]({base_url}changes/{c.id}.html)" if base_url else ""
    return f"- {star}**{fact}** · {entry.significance}{f' · {where}' if where else ''}{link}"


def render(digest: Digest, url: str) -> bytes:
    """The message for one channel, as the outbox keeps it (the exact bytes are re-sent after a crash): a
    title and a Markdown body, within the service's limits."""
    title_max, body_max = _limits(url)
    base = digest.base_url
    lines = [_line(e, base) for e in digest.entries] + [f"- {inert(n.summary)}" for n in digest.notices]
    if not lines:
        lines = ["No changes to the pages you follow." if digest.heartbeat else "No changes."]
    body: list[str] = []
    size = 0
    room = max(200, body_max - len(digest.subject) - 120)  # a title may count against the body
    for i, line in enumerate(lines):
        if size + len(line) + 1 > room:
            rest = len(lines) - i
            more = f"+{rest} more"
            body.append(f"{more} — [all changes]({base}index.html)" if base else more)
            break
        body.append(line)
        size += len(line) + 1
    return json.dumps(
        {"title": inert(digest.subject)[:title_max], "body": "\n".join(body)}, ensure_ascii=False
    ).encode("utf-8")


def send(channel: Channel, message: bytes, message_id: str) -> None:
    """Send a kept message. SendError(definite=True) when the service refused it or could not be reached (the
    outbox folds its changes into the next message); any other exception leaves the outcome unknown (the same
    bytes are re-sent, and webhooks get the same `X-Policywatch-Message-Id` to de-duplicate on)."""
    import apprise

    data = json.loads(message)
    url = channel.url
    if urlsplit(url).scheme.lower() in ("json", "jsons", "form", "forms", "xml", "xmls"):
        key = hashlib.sha256(message_id.encode()).hexdigest()[:32]
        url += ("&" if "?" in url else "?") + f"+X-Policywatch-Message-Id={key}"
    box = apprise.Apprise()
    if not box.add(url):
        raise SendError("apprise cannot use this channel's URL", definite=True)
    ok = box.notify(title=data["title"], body=data["body"], body_format=apprise.NotifyFormat.MARKDOWN)
    if not ok:
        raise SendError("the service did not accept the message, or could not be reached", definite=True)


def send_test(channel: Channel) -> None:
    """A short test message (`policywatch digest test`); SendError when it did not go."""
    message = json.dumps(
        {
            "title": "policywatch: test message",
            "body": "This channel will receive policywatch's changes: one line per change, the fact first.",
        }
    ).encode()
    send(channel, message, f"test-{hashlib.sha256(channel.key.encode()).hexdigest()[:12]}")
