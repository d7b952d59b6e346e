"""Initial schema: runs, pages, bodies, fetches, versions, changes, and the analyst views.

Revision ID: 0001 Revises: Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from policywatch.storage.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

VIEWS = {
    "change_log": """
        SELECT c.id AS change_id, c.url, c.title, c.detected_at, c.kind, c.significance, c.topics,
               c.details_released, c.summary, c.from_version_id, c.to_version_id, c.run_id, c.page_id
        FROM changes c""",
    "page_versions": """
        SELECT p.url, v.id AS version_id, v.page_id, v.captured_at, v.content_hash, v.title, v.text,
               v.raw_hash, v.fetch_id
        FROM versions v JOIN pages p ON p.id = v.page_id""",
    "fetch_log": """
        SELECT f.id AS fetch_id, p.url, f.run_id, f.fetched_at, f.outcome, f.http_status, f.message,
               f.attempts, f.bytes, f.duration_ms, f.etag, f.last_modified, f.raw_hash, f.content_hash,
               f.content_changed
        FROM fetches f JOIN pages p ON p.id = f.page_id""",
    "run_log": """
        SELECT r.id AS run_id, r.started_at, r.finished_at, r.status, r.message, r.pages_fetched,
               r.pages_new, r.pages_changed, r.pages_unchanged, r.pages_failed, r.config_digest
        FROM runs r""",
}

TOPICS_VIEW = {
    "sqlite": "SELECT c.id AS change_id, j.value AS topic FROM changes c, json_each(c.topics) j",
    "postgresql": "SELECT c.id AS change_id, t.topic FROM changes c, json_array_elements_text(c.topics) AS "
    "t(topic)",
}


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("config_digest", sa.String(64)),
        sa.Column("pages_fetched", sa.Integer, nullable=False),
        sa.Column("pages_new", sa.Integer, nullable=False),
        sa.Column("pages_changed", sa.Integer, nullable=False),
        sa.Column("pages_unchanged", sa.Integer, nullable=False),
        sa.Column("pages_failed", sa.Integer, nullable=False),
        sa.Column("health", sa.JSON),
    )
    op.create_table(
        "pages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("url_key", sa.String(2048), nullable=False, unique=True),
        sa.Column("canonical_url", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("extractor", sa.String(20)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("gone_count", sa.Integer, nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("last_seen", UTCDateTime),
    )
    op.create_table(
        "bodies",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("content_type", sa.String(200)),
        sa.Column("data", sa.LargeBinary),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "fetches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), index=True),
        sa.Column("page_id", sa.Integer, sa.ForeignKey("pages.id"), nullable=False),
        sa.Column("fetched_at", UTCDateTime, nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("outcome", sa.String(30), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("bytes", sa.Integer),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("raw_hash", sa.String(64)),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("content_changed", sa.Boolean, nullable=False),
    )
    op.create_index("ix_fetches_page_time", "fetches", ["page_id", "fetched_at"])
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("page_id", sa.Integer, sa.ForeignKey("pages.id"), nullable=False),
        sa.Column("fetch_id", sa.Integer, sa.ForeignKey("fetches.id")),
        sa.Column("captured_at", UTCDateTime, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("raw_hash", sa.String(64), sa.ForeignKey("bodies.sha256")),
        sa.Column("title", sa.Text),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("blocks", sa.JSON, nullable=False),
        sa.Column("meta", sa.JSON, nullable=False),
    )
    op.create_index("ix_versions_page_time", "versions", ["page_id", "captured_at"])
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("page_id", sa.Integer, sa.ForeignKey("pages.id"), nullable=False, index=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id")),
        sa.Column("detected_at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("significance", sa.String(10), nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("details_released", sa.Boolean, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("from_version_id", sa.Integer, sa.ForeignKey("versions.id")),
        sa.Column("to_version_id", sa.Integer, sa.ForeignKey("versions.id")),
        sa.Column("details", sa.JSON, nullable=False),
        sa.UniqueConstraint("page_id", "run_id", "kind", name="uq_changes_page_run_kind"),
    )
    op.create_index("ix_changes_detected", "changes", ["detected_at"])
    for name, sql in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {sql}")
    op.execute(f"CREATE VIEW change_topics AS {TOPICS_VIEW[op.get_bind().dialect.name]}")


def downgrade() -> None:
    for name in ["change_topics", *VIEWS]:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for table in ["changes", "versions", "fetches", "bodies", "pages", "runs"]:
        op.drop_table(table)
