"""Raw bodies compressed against a per-host dictionary (the site's page template): `body_dicts`, and
`bodies.dict_id` naming the dictionary a body was compressed with (NULL: plain zlib, as every body written
before this revision). From this revision on, `versions.blocks` may also hold blocks without their text
(storage.blockpack; read as before, no conversion needed on upgrade; the downgrade puts the text back).
`dict_id` has no foreign key on purpose: SQLite cannot drop a column that is part of one, and the downgrade
must be able to (after turning every body back into plain zlib).

Revision ID: 0003 Revises: 0002 Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from policywatch.storage.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "body_dicts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_body_dicts_host", "body_dicts", ["host"])
    op.add_column("bodies", sa.Column("dict_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    import zlib

    bind = op.get_bind()
    dicts: dict[int, bytes] = {
        row[0]: row[1] for row in bind.execute(sa.text("SELECT id, data FROM body_dicts"))
    }
    last = ""
    while True:  # every dictionary-compressed body back to plain zlib, 200 at a time
        rows = bind.execute(
            sa.text(
                "SELECT sha256, data, dict_id FROM bodies WHERE dict_id IS NOT NULL AND sha256 > :last "
                "ORDER BY sha256 LIMIT 200"
            ),
            {"last": last},
        ).all()
        if not rows:
            break
        for sha, data, dict_id in rows:
            plain = None
            if data is not None:
                d = zlib.decompressobj(zdict=dicts[dict_id])
                plain = zlib.compress(d.decompress(data) + d.flush(), 6)
            bind.execute(
                sa.text("UPDATE bodies SET data = :d, dict_id = NULL WHERE sha256 = :s"),
                {"d": plain, "s": sha},
            )
        last = rows[-1][0]
    _restore_block_text(bind)
    if bind.dialect.name == "sqlite":
        op.execute("ALTER TABLE bodies DROP COLUMN dict_id")  # native since SQLite 3.35: no table rebuild
    else:
        op.drop_column("bodies", "dict_id")
    op.drop_index("ix_body_dicts_host", table_name="body_dicts")
    op.drop_table("body_dicts")


def _restore_block_text(bind) -> None:
    """Blocks stored without their text (storage.blockpack) → whole blocks, as revision 0002's code reads
    them."""
    import json
    import zlib

    from policywatch.storage import blockpack

    last = 0
    while True:
        rows = bind.execute(
            sa.text("SELECT id, blocks, text FROM versions WHERE id > :last ORDER BY id LIMIT 200"),
            {"last": last},
        ).all()
        if not rows:
            break
        for vid, blob, text in rows:
            if blob is None:
                continue
            stored = json.loads(zlib.decompress(blob))
            if blockpack.is_textless(stored):
                whole = blockpack.restore(stored, text)
                packed = zlib.compress(
                    json.dumps(whole, ensure_ascii=False, separators=(",", ":")).encode(), 6
                )
                bind.execute(
                    sa.text("UPDATE versions SET blocks = :b WHERE id = :id"), {"b": packed, "id": vid}
                )
        last = rows[-1][0]
