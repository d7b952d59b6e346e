"""The `change_facts` view: one row per fact a change added, removed or changed (fees, dates, codes, caps…),
for analysts — "every fee change since June", without reading the details JSON.

Revision ID: 0005 Revises: 0004 Create Date: 2026-12-05
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SQLITE = """
    SELECT c.id AS change_id, c.page_id, c.url, c.detected_at, '{op}' AS fact_op,
           json_extract(f.value, '$.type') AS fact_type, {before} AS before, {after} AS after,
           json_extract(f.value, '$.section') AS section
    FROM changes c, json_each(c.details, '$.facts.{op}') f"""
POSTGRESQL = """
    SELECT c.id AS change_id, c.page_id, c.url, c.detected_at, '{op}' AS fact_op,
           f ->> 'type' AS fact_type, {before} AS before, {after} AS after,
           (f -> 'section')::text AS section
    FROM changes c
    CROSS JOIN LATERAL json_array_elements(
        CASE WHEN json_typeof(c.details -> 'facts' -> '{op}') = 'array'
             THEN c.details -> 'facts' -> '{op}' ELSE '[]'::json END) AS f"""
VALUES = {
    "sqlite": {
        "changed": ("json_extract(f.value, '$.before')", "json_extract(f.value, '$.after')"),
        "added": ("NULL", "json_extract(f.value, '$.value')"),
        "removed": ("json_extract(f.value, '$.value')", "NULL"),
    },
    "postgresql": {
        "changed": ("f ->> 'before'", "f ->> 'after'"),
        "added": ("NULL", "f ->> 'value'"),
        "removed": ("f ->> 'value'", "NULL"),
    },
}


def view_sql(dialect: str) -> str:
    template = SQLITE if dialect == "sqlite" else POSTGRESQL
    parts = [
        template.format(op=op, before=before, after=after) for op, (before, after) in VALUES[dialect].items()
    ]
    return "\n    UNION ALL".join(parts)


def upgrade() -> None:
    op.execute(f"CREATE VIEW change_facts AS {view_sql(op.get_bind().dialect.name)}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS change_facts")
