"""SQLAlchemy 2 typed models of the history database.

The data dictionary in docs/data-dictionary.md documents every column; the analyst views are created by the
migrations (storage/migrations) and are the stable interface, the tables may grow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from policywatch.storage import blockpack
from policywatch.storage.types import CompressedJSON, HexDigest, UTCDateTime, utcnow


class Base(DeclarativeBase):
    pass


class Run(Base):
    """One monitoring pass."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="running")  # running | completed | failed
    message: Mapped[str | None] = mapped_column(Text)
    config_digest: Mapped[str | None] = mapped_column(String(64))
    pages_fetched: Mapped[int] = mapped_column(Integer, default=0)
    pages_new: Mapped[int] = mapped_column(Integer, default=0)
    pages_changed: Mapped[int] = mapped_column(Integer, default=0)
    pages_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    pages_failed: Mapped[int] = mapped_column(Integer, default=0)
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    scope: Mapped[str] = mapped_column(String(40), default="nightly")  # nightly | a [[schedule.jobs]] name


class Page(Base):
    """A URL policywatch watches or discovered."""

    __tablename__ = "pages"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)  # as configured or discovered (never rel=canonical)
    url_key: Mapped[str] = mapped_column(String(2048), unique=True)  # normalized form, see monitor.urls
    canonical_url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(20), default="watch")  # watch | discovered
    extractor: Mapped[str | None] = mapped_column(String(20))  # gcweb | generic | json
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | gone | removed
    gone_count: Mapped[int] = mapped_column(Integer, default=0)  # consecutive 404/410 fetches
    main_fp: Mapped[str | None] = mapped_column(
        String(64)
    )  # fingerprint of the content bytes at the last good read
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: its versions in the other official languages as the crawl last read them ({"fr": URL}; [parity])
    twins: Mapped[dict[str, str] | None] = mapped_column(JSON)

    versions: Mapped[list[Version]] = relationship(back_populates="page", order_by="Version.id")


class Body(Base):
    """A raw response body, stored once per distinct byte string (zlib-compressed); prunable by age."""

    __tablename__ = "bodies"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)  # NULL once pruned
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the body_dicts row `data` was compressed against (storage.bodypack); NULL = plain zlib
    dict_id: Mapped[int | None] = mapped_column(Integer)


class BodyDict(Base):
    """A host's page template, the preset dictionary its bodies are compressed with (storage.bodypack).
    Written once, never changed: a body names the dictionary it needs to be read."""

    __tablename__ = "body_dicts"
    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Fetch(Base):
    """One request for one page in one run, whatever its outcome."""

    __tablename__ = "fetches"
    __table_args__ = (
        Index("ix_fetches_page", "page_id"),
    )  # (page_id, rowid): "the last fetch of a page" by id
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    http_status: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(30))  # see monitor.detection.quality.OUTCOMES
    message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    bytes: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    raw_hash: Mapped[str | None] = mapped_column(HexDigest)  # 32 bytes stored, hex in Python and in fetch_log
    content_hash: Mapped[str | None] = mapped_column(HexDigest)
    content_changed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: "<timestamp> <digest>" of the web-archive capture this fetch read (`policywatch backfill`); NULL: live
    archive_capture: Mapped[str | None] = mapped_column(String(80))


class Version(Base):
    """One distinct extracted content of a page (a noise-only fetch makes none)."""

    __tablename__ = "versions"
    __table_args__ = (Index("ix_versions_page_time", "page_id", "captured_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"))
    fetch_id: Mapped[int | None] = mapped_column(ForeignKey("fetches.id"))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    raw_hash: Mapped[str | None] = mapped_column(ForeignKey("bodies.sha256"))
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    #: the `blocks` column as stored: JSON records, or HTML blocks without their text (storage.blockpack)
    stored_blocks: Mapped[Any] = mapped_column("blocks", CompressedJSON)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # date_modified, extractor, content_type

    page: Mapped[Page] = relationship(back_populates="versions")

    @property
    def blocks(self) -> list[dict[str, Any]] | dict[str, Any]:
        """The blocks as extracted (their text put back from `text`), or the JSON records."""
        return blockpack.restore(self.stored_blocks, self.text)


class Change(Base):
    """A detected change; written once, never updated."""

    __tablename__ = "changes"
    __table_args__ = (
        UniqueConstraint("page_id", "run_id", "kind", name="uq_changes_page_run_kind"),
        Index("ix_changes_detected", "detected_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))  # new_page | changed | removed
    significance: Mapped[str] = mapped_column(String(10))  # low | medium | high
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    details_released: Mapped[bool] = mapped_column(Boolean, default=False)
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    from_version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"))
    to_version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Subscriber(Base):
    """A digest recipient as first seen in the config; `watermark` is the last change id its digests cover.

    Why a change id and not a time: ids are assigned once and never reordered in our history, so "every change
    after N" can neither skip a change detected in the same second nor repeat one.
    """

    __tablename__ = "subscribers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased addr-spec
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    watermark: Mapped[int] = mapped_column(Integer, default=0)


class Digest(Base):
    """The outbox: one row per e-mail, committed (with its exact bytes) before the SMTP conversation starts.

    status: pending (committed; a send may or may not have reached the server: re-send the same bytes),
    sent, failed (the server provably did not accept it: superseded by the next, larger digest) or superseded.
    """

    __tablename__ = "digests"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # digest | heartbeat | operator
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    range_from: Mapped[int] = mapped_column(Integer, default=0)  # covers change ids in (range_from, range_to]
    range_to: Mapped[int] = mapped_column(Integer, default=0)
    change_count: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message: Mapped[bytes] = mapped_column(LargeBinary)


class DigestItem(Base):
    """Which changes a digest carries. UNIQUE(subscriber, change): no change reaches a subscriber in two
    digests."""

    __tablename__ = "digest_items"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "change_id", name="uq_digest_items_subscriber_change"),
    )
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id"), primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("changes.id"), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"))


class PassLock(Base):
    """PostgreSQL's pass lock: the pass holds `LOCK TABLE pass_lock IN EXCLUSIVE MODE` for as long as it runs.
    Why a table and not an advisory lock: any role may take any advisory lock, so an analyst's session could
    hold the pass off; this lock needs UPDATE on the table, which only the pass's role has (a role that may
    only SELECT can take nothing here that conflicts with it). No rows."""

    __tablename__ = "pass_lock"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
