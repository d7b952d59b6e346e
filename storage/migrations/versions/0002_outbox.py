"""Digest delivery (subscribers with their watermark, the outbox of digests, digest items, digest_log view)
and the scope of a run (`nightly`, or the name of a `[[schedule.jobs]]` entry), shown in run_log;
pages.main_fp; versions.blocks stored zlib-compressed and fetches' hashes as 32-byte binaries (existing rows
are converted in batches; the fetch_log view shows the hashes as hex).

Revision ID: 0002 Revises: 0001 Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from policywatch.storage.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DIGEST_LOG = """
    SELECT d.id AS digest_id, d.kind, d.recipient, d.message_id, d.subject, d.status, d.attempts, d.last_error,
           d.created_at, d.last_attempt_at, d.sent_at, d.change_count, d.range_from, d.range_to, d.run_id
    FROM digests d"""  # noqa: E501  (the view's text as created; unchanged since)


RUN_LOG = """
    SELECT r.id AS run_id, r.started_at, r.finished_at, r.status, r.message, r.pages_fetched,
           r.pages_new, r.pages_changed, r.pages_unchanged, r.pages_failed, r.config_digest, r.scope
    FROM runs r"""
RUN_LOG_0001 = """
    SELECT r.id AS run_id, r.started_at, r.finished_at, r.status, r.message, r.pages_fetched,
           r.pages_new, r.pages_changed, r.pages_unchanged, r.pages_failed, r.config_digest
    FROM runs r"""


def _convert_blocks(to_compressed: bool) -> None:
    """Move versions.blocks between JSON and compressed JSON, 500 rows at a time."""
    import json
    import zlib

    bind = op.get_bind()
    src, dst = ("blocks", "blocks_new")
    last = 0
    while True:
        rows = bind.execute(
            sa.text(f"SELECT id, {src} FROM versions WHERE id > :last ORDER BY id LIMIT 500"), {"last": last}
        ).all()
        if not rows:
            break
        for vid, value in rows:
            new: bytes | str
            if to_compressed:
                obj = json.loads(value) if isinstance(value, (str, bytes)) else value
                new = zlib.compress(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode(), 6)
            else:
                new = json.dumps(
                    json.loads(zlib.decompress(value)) if value is not None else None, ensure_ascii=False
                )
            bind.execute(sa.text(f"UPDATE versions SET {dst} = :v WHERE id = :id"), {"v": new, "id": vid})
        last = rows[-1][0]


def _initial():
    """The 0001 module (its view definitions), loaded from the file beside this one."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("pw_mig_0001", Path(__file__).with_name("0001_initial.py"))
    assert spec is not None and spec.loader is not None  # the file ships beside this one
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _drop_views() -> None:
    """SQLite rebuilds altered tables (copy, drop, rename): no view may point at them meanwhile."""
    for name in ("digest_log", "change_topics", "change_log", "page_versions", "fetch_log", "run_log"):
        op.execute(f"DROP VIEW IF EXISTS {name}")


FETCH_LOG = """
        SELECT f.id AS fetch_id, p.url, f.run_id, f.fetched_at, f.outcome, f.http_status, f.message,
               f.attempts, f.bytes, f.duration_ms, f.etag, f.last_modified, {hex_raw} AS raw_hash,
               {hex_content} AS content_hash, f.content_changed
        FROM fetches f JOIN pages p ON p.id = f.page_id"""
HEX = {"sqlite": "lower(hex({col}))", "postgresql": "encode({col}, 'hex')"}


def _fetch_log() -> str:
    h = HEX[op.get_bind().dialect.name]
    return FETCH_LOG.format(hex_raw=h.format(col="f.raw_hash"), hex_content=h.format(col="f.content_hash"))


def _create_views(run_log: str, fetch_log: str | None = None) -> None:
    initial = _initial()
    overrides = {"run_log": run_log, **({"fetch_log": fetch_log} if fetch_log else {})}
    for name, sql in initial.VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {overrides.get(name, sql)}")
    op.execute(f"CREATE VIEW change_topics AS {initial.TOPICS_VIEW[op.get_bind().dialect.name]}")


def _convert_hashes(to_binary: bool) -> None:
    """fetches.raw_hash / content_hash between hex text and 32-byte binary, 2,000 rows at a time."""
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text("SELECT id, raw_hash, content_hash FROM fetches WHERE id > :last ORDER BY id LIMIT 2000"),
            {"last": last},
        ).all()
        if not rows:
            break
        conv = (
            (lambda v: bytes.fromhex(v) if v else None)
            if to_binary
            else (lambda v: bytes(v).hex() if v is not None else None)
        )
        bind.execute(
            sa.text("UPDATE fetches SET raw_hash_new = :r, content_hash_new = :c WHERE id = :id"),
            [{"r": conv(r), "c": conv(c), "id": i} for i, r, c in rows],
        )
        last = rows[-1][0]


def _swap_hashes(new_type: sa.types.TypeEngine, to_binary: bool) -> None:
    with op.batch_alter_table("fetches") as batch:
        batch.add_column(sa.Column("raw_hash_new", new_type))
        batch.add_column(sa.Column("content_hash_new", new_type))
    _convert_hashes(to_binary)
    with op.batch_alter_table("fetches") as batch:
        batch.drop_column("raw_hash")
        batch.drop_column("content_hash")
    with op.batch_alter_table("fetches") as batch:
        batch.alter_column("raw_hash_new", new_column_name="raw_hash", existing_type=new_type)
        batch.alter_column("content_hash_new", new_column_name="content_hash", existing_type=new_type)


def _swap_blocks(new_type: sa.types.TypeEngine, to_compressed: bool) -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("blocks_new", new_type))
    _convert_blocks(to_compressed)
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("blocks")
        batch.alter_column("blocks_new", new_column_name="blocks", existing_type=new_type, nullable=False)


def upgrade() -> None:
    _drop_views()
    _swap_blocks(sa.LargeBinary(), True)
    _swap_hashes(sa.LargeBinary(), True)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("scope", sa.String(40), nullable=False, server_default="nightly"))
    with op.batch_alter_table("pages") as batch:
        batch.add_column(sa.Column("main_fp", sa.String(64)))
    # Every lookup is "the last fetch of a page" by id; (page_id) indexes (page_id, rowid) and is 26 bytes a
    # row smaller than (page_id, fetched_at) on SQLite.
    op.drop_index("ix_fetches_page_time", table_name="fetches")
    op.create_index("ix_fetches_page", "fetches", ["page_id"])
    _create_views(RUN_LOG, _fetch_log())
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
    _drop_views()
    _swap_blocks(sa.JSON(), False)
    _swap_hashes(sa.String(64), False)
    for table in ("digest_items", "digests", "subscribers"):
        op.drop_table(table)
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35 and PostgreSQL): a batch rebuild of these tables would
    # trip the foreign keys that point at them.
    op.drop_column("runs", "scope")
    op.drop_column("pages", "main_fp")
    op.drop_index("ix_fetches_page", table_name="fetches")
    op.create_index("ix_fetches_page_time", "fetches", ["page_id", "fetched_at"])
    _create_views(RUN_LOG_0001)
