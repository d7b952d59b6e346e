"""Digest delivery (subscribers with their watermark, the outbox of digests, digest items, digest_log view) and
the scope of a run (`nightly`, or the name of a `[[schedule.jobs]]` entry), shown in run_log; pages.main_fp.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DIGEST_LOG = """
    SELECT d.id AS digest_id, d.kind, d.recipient, d.message_id, d.subject, d.status, d.attempts, d.last_error,
           d.created_at, d.last_attempt_at, d.sent_at, d.change_count, d.range_from, d.range_to, d.run_id
    FROM digests d"""


RUN_LOG = """
    SELECT r.id AS run_id, r.started_at, r.finished_at, r.status, r.message, r.pages_fetched,
           r.pages_new, r.pages_changed, r.pages_unchanged, r.pages_failed, r.config_digest, r.scope
    FROM runs r"""
RUN_LOG_0001 = """
    SELECT r.id AS run_id, r.started_at, r.finished_at, r.status, r.message, r.pages_fetched,
           r.pages_new, r.pages_changed, r.pages_unchanged, r.pages_failed, r.config_digest
    FROM runs r"""


def upgrade() -> None:
    op.execute("DROP VIEW run_log")
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("scope", sa.String(40), nullable=False, server_default="nightly"))
    with op.batch_alter_table("pages") as batch:
        batch.add_column(sa.Column("main_fp", sa.String(64)))
    op.execute(f"CREATE VIEW run_log AS {RUN_LOG}")
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("watermark", sa.Integer, nullable=False),
    )
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), index=True),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False, unique=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("range_from", sa.Integer, nullable=False),
        sa.Column("range_to", sa.Integer, nullable=False),
        sa.Column("change_count", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id")),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_attempt_at", UTCDateTime),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("message", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "digest_items",
        sa.Column("digest_id", sa.Integer, sa.ForeignKey("digests.id"), primary_key=True),
        sa.Column("change_id", sa.Integer, sa.ForeignKey("changes.id"), primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
        sa.UniqueConstraint("subscriber_id", "change_id", name="uq_digest_items_subscriber_change"),
    )
    op.execute(f"CREATE VIEW digest_log AS {DIGEST_LOG}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS digest_log")
    for table in ("digest_items", "digests", "subscribers"):
        op.drop_table(table)
    op.execute("DROP VIEW run_log")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("pages") as batch:
        batch.drop_column("main_fp")
    op.execute(f"CREATE VIEW run_log AS {RUN_LOG_0001}")
