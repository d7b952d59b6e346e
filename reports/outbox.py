"""Deliver digests so that no change is lost and none reaches a subscriber twice.

The protocol (each step is one committed transaction):

1. A subscriber's watermark is the last change id its delivered digests cover. Only changes of finished runs
   count (the caller holds the pass lock, so no run is half-written while digests are built).
2. A message is composed for the changes after the watermark, and committed to the outbox *with its exact
   bytes* and a deterministic Message-ID (status pending) before the SMTP conversation starts. Its items
   (subscriber, change) are unique, so a change can never sit in two live digests of one subscriber.
3. Sent: status sent and the watermark moves to the digest's upper bound, in one transaction.
   Refused for sure (server down, auth refused, message rejected): status failed; the next delivery folds its
   changes into one larger digest (new Message-ID, the failed one is marked superseded — it never reached
   anyone). Unknown (crash, or timeout while DATA was in flight): it stays pending and the next delivery
   re-sends the *same bytes*, Message-ID included, which mail systems de-duplicate.

A team channel (reports.channels: Slack, Teams, a webhook …) is a recipient of its own, with its own
watermark, under the same protocol: its message is committed before apprise sends it; refused or unreachable
is failed (folded into the next message); a crash mid-send leaves it pending, and the same bytes go again
(webhooks get the same X-Policywatch-Message-Id header to de-duplicate on; chat services may show it twice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, cast

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from policywatch.reports import channels as team
from policywatch.reports.channels import ChannelSubscriber
from policywatch.reports.data import failure_summary, news
from policywatch.reports.digest import (
    Digest,
    SubscriberLike,
    build_message,
    compose,
    message_id,
    render_html,
    render_text,
)
from policywatch.reports.mail import SendError, SmtpSettings, send_message
from policywatch.reports.parity import notes as parity_notes
from policywatch.storage.models import Change, DigestItem, Run, Subscriber
from policywatch.storage.models import Digest as DigestRow
from policywatch.storage.types import utcnow

WEEK = timedelta(days=7) - timedelta(
    hours=4
)  # a weekly digest is due after ~7 days (tolerates schedule jitter)


class MailLike(SmtpSettings, Protocol):
    """`[mail]` as the outbox reads it: the SMTP settings, the sender and the operator (read-only)."""

    @property
    def sender(self) -> str: ...

    @property
    def operator(self) -> str | None: ...

    @property
    def sender_domain(self) -> str: ...


Transport = Callable[[MailLike, bytes, str, Sequence[str]], None]


@dataclass
class DeliveryReport:
    sent: list[tuple[str, str]] = field(default_factory=list)  # (recipient, subject)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (recipient, error)
    pending: list[tuple[str, str]] = field(default_factory=list)  # outcome unknown: re-sent next time
    not_due: list[str] = field(default_factory=list)
    nothing: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"sent to {r}: {s}" for r, s in self.sent]
        out += [f"FAILED for {r}: {e} (kept; retried on the next delivery)" for r, e in self.failed]
        out += [f"UNCERTAIN for {r}: {e} (the same message is re-sent next time)" for r, e in self.pending]
        out += [f"{r}: weekly digest not due yet" for r in self.not_due]
        out += [f"{r}: nothing new" for r in self.nothing]
        return out


def _sender_addr(sender: str) -> str:
    from email.headerregistry import AddressHeader, HeaderRegistry

    header = cast(AddressHeader, HeaderRegistry()("From", sender))  # a From header is an address header
    return header.addresses[0].addr_spec


def finished_top(s: Session) -> int:
    """The highest change id of any finished run (changes of a running pass are not final yet)."""
    q = (
        select(func.max(Change.id))
        .outerjoin(Run, Run.id == Change.run_id)
        .where(or_(Change.run_id.is_(None), Run.status != "running"))
    )
    return s.scalar(q) or 0


def last_finished_run(s: Session) -> int | None:
    return s.scalar(select(func.max(Run.id)).where(Run.status != "running"))


def subscriber_row(s: Session, email: str, *, run_id: int | None = None) -> Subscriber:
    """The subscriber's row. A new subscriber starts at the current top (they get what happens from now on);
    when created at the end of pass `run_id`, they also get that pass's changes (they subscribed before
    it)."""
    key = email.lower()
    row = s.scalar(select(Subscriber).where(Subscriber.email == key))
    if row is None:
        start = finished_top(s)
        if run_id is not None:
            start = s.scalar(select(func.max(Change.id)).where(Change.run_id < run_id)) or 0
        row = Subscriber(email=key, created_at=utcnow(), watermark=start)
        s.add(row)
        s.flush()
    return row


def news_between(s: Session, floor: int, top: int) -> list[Change]:
    """The changes a digest may show, `floor` < id ≤ `top`, without the "now watching" notes (`digest.wanted`
    drops them anyway; a first night of a large watchlist has one per page) and without backfilled ones."""
    # Backfilled changes (history read from a web archive) are history, not news: never e-mailed.
    return [
        c for c in news(s, Change.id > floor, Change.id <= top) if not (c.details or {}).get("backfilled")
    ]


def _kind_and_key(
    digest: Digest, sub: SubscriberLike, run_id: int | None, floor: int, top: int
) -> tuple[str, str] | None:
    """What is sent and what makes its Message-ID: a digest (or a channel's message) of the changes between
    two watermarks, a heartbeat for a pass with nothing to say (e-mail subscribers who asked), or nothing."""
    if digest.entries or digest.notices:
        return ("channel" if isinstance(sub, ChannelSubscriber) else "digest"), f"{floor}-{top}"
    if not sub.heartbeat or run_id is None or isinstance(sub, ChannelSubscriber):
        return None
    return "heartbeat", f"run-{run_id}"


class Outbox:
    """Builds, records and sends digests for the configured subscribers."""

    def __init__(
        self,
        db,
        mail: MailLike | None,
        *,
        base_url: str | None,
        topic_names: dict[str, str],
        transport: Transport | None = None,
        now: Callable[[], datetime] = utcnow,
        timezone: str = "UTC",
        parity: tuple[tuple[str, ...], float] = ((), 3.0),
    ):
        self.db = db
        self.mail = mail
        self.base_url = base_url
        self.topic_names = topic_names
        self.transport: Transport = transport or send_message
        self.now = now
        self.timezone = timezone  # digests show their times in it (reports.clock)
        self.parity = parity  # ([parity] languages, grace_days): digests carry the language-parity notes
        self._channels: dict[str, team.Channel] = {}  # outbox key → channel (its URL lives only here)

    # --- public -------------------------------------------------------------------------------------------
    def deliver(
        self,
        subscribers: Sequence[SubscriberLike],
        *,
        run_id: int | None = None,
        channels: Sequence[ChannelSubscriber] = (),
    ) -> DeliveryReport:
        """Deliver to every subscriber by e-mail and to every channel; `run_id`: the pass that just finished
        (new subscribers get its changes)."""
        report = DeliveryReport()
        self._channels = {c.email: c.channel for c in channels}
        for sub in subscribers:
            if sub.email and self.mail is not None:
                self._deliver_one(sub, report, run_id)
        for ch in channels:
            self._deliver_one(ch, report, run_id)
        self._resend_pending_alerts(report)
        return report

    def preview(self, sub: SubscriberLike, since: datetime | None = None) -> Digest:
        """What `sub` would receive now (nothing is recorded or sent); `since`: the digest of every change
        detected from then on, whatever was delivered (what a new subscriber missed)."""
        with self.db.session() as s:
            row = s.scalar(select(Subscriber).where(Subscriber.email == sub.email.lower()))
            floor = row.watermark if row else finished_top(s)
            top = finished_top(s)
            if since is not None:
                found = news(s, Change.detected_at >= since, Change.id <= top)
                changes = [c for c in found if not (c.details or {}).get("backfilled")]
            else:
                changes = news_between(s, floor, top)
            digest = compose(
                changes,
                sub,
                base_url=self.base_url,
                topic_names=self.topic_names,
                timezone=self.timezone,
                parity_notes=parity_notes(s, *self.parity),
                run_id=last_finished_run(s),
            )
            s.expunge_all()
        return digest

    # --- one subscriber -----------------------------------------------------------------------------------
    def _deliver_one(self, sub: SubscriberLike, report: DeliveryReport, run_id: int | None) -> None:
        with self.db.session() as s:
            sid = subscriber_row(s, sub.email, run_id=run_id).id
            pending = list(
                s.scalars(
                    select(DigestRow.id)
                    .where(DigestRow.subscriber_id == sid, DigestRow.status == "pending")
                    .order_by(DigestRow.id)
                )
            )
        for did in pending:  # fate unknown: the same bytes again
            if not self._attempt(did, report):
                with self.db.session() as s:
                    if s.get(DigestRow, did).status == "pending":
                        return  # still unknown: do not stack a second message behind it
        did = self._prepare(sid, sub, report)
        if did is not None:
            self._attempt(did, report)

    def _prepare(self, sid: int, sub: SubscriberLike, report: DeliveryReport) -> int | None:
        """Commit the next digest to the outbox (or advance the watermark when there is nothing to say)."""
        with self.db.session() as s:
            row = s.get_one(Subscriber, sid)
            waiting = (DigestRow.subscriber_id == sid) & (DigestRow.status == "failed")
            failed = list(s.scalars(select(DigestRow).where(waiting).order_by(DigestRow.id)))
            if sub.frequency == "weekly" and not self._weekly_due(s, row):
                report.not_due.append(sub.email)
                return None
            top, floor, run_id = finished_top(s), row.watermark, last_finished_run(s)
            digest = compose(
                news_between(s, floor, top),
                sub,
                base_url=self.base_url,
                topic_names=self.topic_names,
                timezone=self.timezone,
                parity_notes=parity_notes(s, *self.parity),
                run_id=run_id,
            )
            what = _kind_and_key(digest, sub, run_id, floor, top)
            if what is None:
                for f in failed:  # a failed heartbeat is not worth a late delivery
                    f.status = "superseded"
                row.watermark = max(row.watermark, top)
                report.nothing.append(sub.email)
                return None
            domain = self.mail.sender_domain if self.mail is not None else "policywatch.invalid"
            mid = message_id(what[0], sub.email, what[1], domain)
            existing = s.scalar(select(DigestRow).where(DigestRow.message_id == mid))
            if existing is not None:
                if existing.status in ("sent", "pending"):
                    report.nothing.append(sub.email)
                    return None  # already delivered (a heartbeat for this pass) or handled above
                existing.status = "pending"  # refused before with exactly this content: the same again
                return existing.id
            kind = what[0]
            for f in failed:
                f.status = "superseded"
                s.execute(delete(DigestItem).where(DigestItem.digest_id == f.id))
            now = self.now()
            d = DigestRow(
                kind=kind,
                subscriber_id=sid,
                recipient=sub.email,
                message_id=mid,
                subject=digest.subject,
                range_from=floor,
                range_to=top,
                change_count=len(digest.covered),
                run_id=run_id,
                status="pending",
                attempts=0,
                created_at=now,
                message=self._body(digest, sub, mid, now),
            )
            s.add(d)
            s.flush()
            for c in digest.covered:
                s.add(DigestItem(digest_id=d.id, change_id=c.id, subscriber_id=sid))
            return d.id

    def _body(self, digest: Digest, sub: SubscriberLike, mid: str, now: datetime) -> bytes:
        """The exact bytes this recipient is sent (and sent again, unchanged, after a crash): a channel's
        message, or the e-mail."""
        if isinstance(sub, ChannelSubscriber):
            return team.render(digest, sub.channel.url)
        assert self.mail is not None  # an e-mail subscriber exists only with [mail]
        return build_message(
            subject=digest.subject,
            sender=self.mail.sender,
            recipient=sub.email,
            recipient_name=sub.name,
            msg_id=mid,
            text=render_text(digest),
            html=render_html(digest),
            when=now,
        )

    def _weekly_due(self, s: Session, row: Subscriber) -> bool:
        last = s.scalar(
            select(func.max(DigestRow.created_at)).where(
                DigestRow.subscriber_id == row.id, DigestRow.status == "sent"
            )
        )
        return self.now() - (last or row.created_at) >= WEEK

    # --- sending ------------------------------------------------------------------------------------------
    def _attempt(self, did: int, report: DeliveryReport) -> bool:
        """Send one outbox row; record the outcome. True if the server accepted it."""
        with self.db.session() as s:
            d = s.get(DigestRow, did)
            assert d is not None
            d.attempts += 1
            d.last_attempt_at = self.now()
            body, recipient, subject, kind, mid = d.message, d.recipient, d.subject, d.kind, d.message_id
        try:
            if kind == "channel":
                channel = self._channels.get(recipient)
                if channel is None:  # no longer configured (or its variable is unset tonight): kept
                    raise SendError(f"{recipient}: the channel is not configured now", definite=False)
                team.send(channel, body, mid)
            else:
                assert self.mail is not None
                self.transport(self.mail, body, _sender_addr(self.mail.sender), [recipient])
        except SendError as exc:
            with self.db.session() as s:
                d = s.get(DigestRow, did)
                assert d is not None
                d.last_error = str(exc)[:1000]
                if exc.definite:
                    d.status = "failed"
                    report.failed.append((recipient, str(exc)))
                else:
                    report.pending.append((recipient, str(exc)))
            return False
        with self.db.session() as s:
            d = s.get(DigestRow, did)
            assert d is not None
            d.status, d.sent_at, d.last_error = "sent", self.now(), None
            if d.subscriber_id is not None:
                sub = s.get(Subscriber, d.subscriber_id)
                assert sub is not None
                sub.watermark = max(sub.watermark, d.range_to)
        report.sent.append((recipient, subject))
        return True

    # --- operator alerts ----------------------------------------------------------------------------------
    def alert_operator(self, run_id: int, reasons: list[str], report: DeliveryReport) -> None:
        """One alert per pass to `[mail] operator` only (never to subscribers)."""
        if self.mail is None or not self.mail.operator or not reasons:
            return
        mid = message_id("operator", self.mail.operator, f"run-{run_id}", self.mail.sender_domain)
        with self.db.session() as s:
            if s.scalar(select(DigestRow.id).where(DigestRow.message_id == mid)) is not None:
                return
            now = self.now()
            subject = f"policywatch operator alert: pass {run_id} needs attention"
            text = (
                f"Pass {run_id} needs attention:\n\n"
                + "\n".join(f"- {r}" for r in reasons)
                + "\n\nThe run report's crawl-health section has the details (policywatch status, run_log "
                "view).\n"
            )
            body = build_message(
                subject=subject,
                sender=self.mail.sender,
                recipient=self.mail.operator,
                recipient_name="",
                msg_id=mid,
                text=text,
                html=None,
                when=now,
            )
            d = DigestRow(
                kind="operator",
                subscriber_id=None,
                recipient=self.mail.operator,
                message_id=mid,
                subject=subject,
                range_from=0,
                range_to=0,
                change_count=0,
                run_id=run_id,
                status="pending",
                attempts=0,
                created_at=now,
                message=body,
            )
            s.add(d)
            s.flush()
            did = d.id
        self._attempt(did, report)

    def _resend_pending_alerts(self, report: DeliveryReport) -> None:
        if self.mail is None:
            return
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(DigestRow.id).where(
                        DigestRow.kind == "operator", DigestRow.status.in_(("pending", "failed"))
                    )
                )
            )
        for did in ids:
            self._attempt(did, report)


def send_test_mail(mail: MailLike, recipient: str, transport: Transport | None = None) -> None:
    """A short test e-mail (`policywatch digest test`); SendError when it did not go. Not recorded."""
    import uuid

    body = build_message(
        subject="policywatch: test message",
        sender=mail.sender,
        recipient=recipient,
        recipient_name="",
        msg_id=f"<policywatch.test.{uuid.uuid4().hex}@{mail.sender_domain}>",
        text="This address will receive policywatch's digests.\n",
        html=None,
        when=utcnow(),
    )
    (transport or send_message)(mail, body, _sender_addr(mail.sender), [recipient])


def operator_reasons(run: Run, health: dict, previous_stale: Sequence[str]) -> list[str]:
    """Why the operator should look: a failed pass, a pass that fetched nothing or mostly failed, a new stale
    source."""
    reasons = []
    if run.status == "failed":
        reasons.append(f"the pass failed: {run.message or 'no message'}")
    failure = failure_summary(health)
    if health.get("zero_fetches"):
        reasons.append("the pass fetched nothing")
    elif health.get("failure_rate", 0) >= 0.5 and health.get("fetched", 0):
        reasons.append(f"{health.get('failed')} of {health.get('fetched')} fetches failed — {failure}")
    elif health.get("discovery_failures"):
        reasons.append(failure or "a discovery source failed")
    if health.get("selector_drift"):
        reasons.append(
            "the content selector stopped matching on: " + ", ".join(health["selector_drift"][:10])
        )
    new_stale = [u for u in health.get("stale_sources") or [] if u not in set(previous_stale)]
    if new_stale:
        reasons.append(
            f"no good fetch in {health.get('stale_after', 3)} passes (stale): " + ", ".join(new_stale[:20])
        )
    return reasons
