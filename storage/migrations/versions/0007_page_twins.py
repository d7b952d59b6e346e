"""`pages.twins`: a page's versions in the other official languages as the crawl last read them
({"fr": URL}), so `[parity]` pairs a page with its twin even when neither changed since watching began (a
version's metadata names them only when a version is stored).

Revision ID: 0007 Revises: 0006 Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pages", sa.Column("twins", sa.JSON(), nullable=True))  # ALTER TABLE: no table copy


def downgrade() -> None:
    op.drop_column("pages", "twins")
