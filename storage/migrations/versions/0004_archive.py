"""History from the web archive (`policywatch backfill`): `fetches.archive_capture` names the archived
capture a fetch read ("<14-digit timestamp> <digest>", NULL for a live fetch), and the `fetch_log` view shows
it. A capture already stored is found by it, so re-running a backfill (or resuming one that was killed) never
reads or records a capture twice. Versions from the archive say so in their meta (`archive`); backfilled
changes in their details (`backfilled`).

Revision ID: 0004 Revises: 0003 Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

HEX = {"sqlite": "lower(hex({col}))", "postgresql": "encode({col}, 'hex')"}
FETCH_LOG = """
        SELECT f.id AS fetch_id, p.url, f.run_id, f.fetched_at, f.outcome, f.http_status, f.message,
               f.attempts, f.bytes, f.duration_ms, f.etag, f.last_modified, {hex_raw} AS raw_hash,
               {hex_content} AS content_hash, f.content_changed{archive}
        FROM fetches f JOIN pages p ON p.id = f.page_id"""


def _fetch_log(with_archive: bool) -> str:
    h = HEX[op.get_bind().dialect.name]
    return FETCH_LOG.format(
        hex_raw=h.format(col="f.raw_hash"),
        hex_content=h.format(col="f.content_hash"),
        archive=", f.archive_capture" if with_archive else "",
    )


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS fetch_log")
    op.add_column("fetches", sa.Column("archive_capture", sa.String(80), nullable=True))
    op.execute(f"CREATE VIEW fetch_log AS {_fetch_log(True)}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS fetch_log")
    op.drop_column(
        "fetches", "archive_capture"
    )  # plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35, PostgreSQL)
    op.execute(f"CREATE VIEW fetch_log AS {_fetch_log(False)}")
