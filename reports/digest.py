"""Compose a subscriber's digest: pick the changes they asked for, collapse repeats per page, render, build
MIME.

Why collapse: over a weekly digest (or after a mail outage) a page may change several times; a consultant
wants its latest state once, with "changed 3 times since …" and each change's diff page linked (as GOV.UK's
e-mail alerts do), not three entries that contradict each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from typing import Protocol

from policywatch.reports.data import SIGNIFICANCE_ORDER, clip_words, is_baseline, rank_key
from policywatch.reports.render import environment
from policywatch.reports.safetext import neutralize_bidi
from policywatch.reports.sitewide import Notice, split_notices
from policywatch.storage.models import Change

SIG_RANK = {"low": 0, "medium": 1, "high": 2}


class SubscriberLike(Protocol):
    """A recipient as the digest reads it (read-only: a config's frozen subscriber, a channel)."""

    @property
    def email(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> tuple[str, ...]: ...

    @property
    def min_significance(self) -> str: ...

    @property
    def frequency(self) -> str: ...

    @property
    def heartbeat(self) -> bool: ...


def wanted(c: Change, sub: SubscriberLike) -> bool:
    """What a subscriber gets: their topics (none listed: all), at or above their significance, no
    baselines."""
    if is_baseline(c):
        return False
    if SIG_RANK.get(c.significance, 0) < SIG_RANK.get(sub.min_significance, 0) and not c.details_released:
        return False  # "details released" always reaches a subscriber of the topic
    return not sub.topics or bool(set(c.topics or []) & set(sub.topics))


@dataclass
class Entry:
    """One page in a digest: its latest change shown, the earlier ones counted and linked."""

    changes: list[Change]

    @property
    def latest(self) -> Change:
        return self.changes[-1]

    @property
    def first(self) -> Change:
        return self.changes[0]

    @property
    def times(self) -> int:
        return len(self.changes)

    @property
    def details_released(self) -> bool:
        return any(c.details_released for c in self.changes)

    @property
    def significance(self) -> str:
        return max((c.significance for c in self.changes), key=lambda s: SIG_RANK.get(s, 0))

    @property
    def title(self) -> str:
        return self.latest.title or self.latest.url

    def sort_key(self) -> tuple[int, int, int, float, int]:
        """The run report's order (`rank_key`), by the page's strongest change and then its latest."""
        return (
            0 if self.details_released else 1,
            SIGNIFICANCE_ORDER.get(self.significance, 3),
            *rank_key(self.latest)[2:],
        )


def collapse(changes: Iterable[Change]) -> list[Entry]:
    by_page: dict[int, list[Change]] = {}
    for c in sorted(changes, key=lambda c: c.id):
        by_page.setdefault(c.page_id, []).append(c)
    return sorted((Entry(cs) for cs in by_page.values()), key=Entry.sort_key)


@dataclass
class Digest:
    recipient: str
    name: str
    entries: list[Entry]
    groups: list[tuple[str, list[Entry]]]
    base_url: str | None
    heartbeat: bool = False
    run_id: int | None = None
    health_note: str | None = None
    topic_names: dict[str, str] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    timezone: str = "UTC"  # `[schedule] timezone`: the digest's times are shown in it (reports.clock)
    parity_notes: list[str] = field(default_factory=list)  # shown with a digest's changes, never sent alone

    @property
    def covered(self) -> list[Change]:
        """Every change this digest delivers (entries and site-wide notices)."""
        return [c for e in self.entries for c in e.changes] + [c for n in self.notices for c in n.changes]

    @property
    def change_count(self) -> int:
        return sum(e.times for e in self.entries)

    @property
    def subject(self) -> str:
        return neutralize_bidi(self._subject())

    def _subject(self) -> str:
        n = self.change_count
        if not self.entries and self.notices:
            return f"policywatch: site-wide notice on {self.notices[0].pages} pages"
        if not self.entries:
            return "policywatch: no changes" + (f" (pass {self.run_id})" if self.run_id else "")
        count = f"{n} change{'s' if n != 1 else ''}"
        released = [e for e in self.entries if e.details_released]
        if released:
            return f"Innovation Stream: details released · {count}"
        top = self.entries[0].title
        return f"policywatch: {count} · {clip_words(top, 80)}"

    def diff_url(self, c: Change) -> str | None:
        return f"{self.base_url}changes/{c.id}.html" if self.base_url else None


def compose(
    changes: Sequence[Change],
    sub: SubscriberLike,
    *,
    base_url: str | None,
    topic_names: dict[str, str],
    run_id: int | None = None,
    timezone: str = "UTC",
    parity_notes: Sequence[str] = (),
) -> Digest:
    notices, rest = split_notices(c for c in changes if wanted(c, sub))
    entries = collapse(rest)
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        topics = [t for t in (e.latest.topics or []) if not sub.topics or t in sub.topics]
        key = topics[0] if topics else ""
        groups.setdefault(key, []).append(e)
    ordered = sorted(groups.items(), key=lambda kv: kv[1][0].sort_key())
    named = [(topic_names.get(k, k.replace("-", " ").title()) if k else "Other pages", v) for k, v in ordered]
    return Digest(
        sub.email,
        sub.name,
        entries,
        named,
        base_url,
        heartbeat=bool(getattr(sub, "heartbeat", False)) and not entries and not notices,
        run_id=run_id,
        topic_names=topic_names,
        notices=notices,
        timezone=timezone,
        parity_notes=list(parity_notes),
    )


def render_text(d: Digest) -> str:
    return environment().get_template("digest.txt.j2").render(d=d, timezone=d.timezone)


def render_html(d: Digest) -> str:
    return environment().get_template("digest.html.j2").render(d=d, timezone=d.timezone)


def message_id(kind: str, recipient: str, key: str, domain: str) -> str:
    """Deterministic: the same digest (same recipient, same coverage) always gets the same Message-ID."""
    who = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    return f"<policywatch.{kind}.{who}.{key}@{domain}>"


def build_message(
    *,
    subject: str,
    sender: str,
    recipient: str,
    recipient_name: str,
    msg_id: str,
    text: str,
    html: str | None,
    when: datetime,
) -> bytes:
    """RFC 5322 bytes, built with the stdlib `email` package: text/plain, plus text/html as the
    alternative."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = formataddr((recipient_name, recipient)) if recipient_name else recipient
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    msg["X-Policywatch"] = "digest"
    msg.set_content(text, cte="quoted-printable")
    if html is not None:
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg.as_bytes(policy=SMTP)  # CRLF line ends, as the wire wants them (smtplib sends bytes verbatim)
