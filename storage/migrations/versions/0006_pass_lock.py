"""The `pass_lock` table: PostgreSQL's pass lock is a table lock only the pass's role can take (an analyst's
role, which may only read, cannot hold a pass off), instead of an advisory lock any role can take.

Revision ID: 0006 Revises: 0005 Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("pass_lock", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("pass_lock")
