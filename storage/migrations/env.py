"""Alembic environment: policywatch always passes an open connection (see storage.db.upgrade)."""

from __future__ import annotations

from alembic import context

from policywatch.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` on the command line without policywatch
    raise RuntimeError("run migrations through `policywatch db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
