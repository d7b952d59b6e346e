"""A PostgreSQL login role for analysts (`policywatch db analyst-role`): SELECT on the documented views and
tables, and nothing else — no write, no server files, no other sessions, no lock a pass takes.

Why a role of its own: `policywatch sql` refuses to run as a role that could reach past read-only (a
superuser, a member of pg_read_server_files …), so a team that shares the pass's database points
`[storage] read_url` at this one; every other client (psql, Datasette, a BI tool) is held to the same
limits by the server itself.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Engine

#: What analysts read (docs/data-dictionary.md): the views first, then the history's tables. Not the
#: schema's bookkeeping (`alembic_version`) nor the pass's lock table (`pass_lock`).
ANALYST_VIEWS = (
    "change_log",
    "change_facts",
    "change_topics",
    "page_versions",
    "fetch_log",
    "run_log",
    "digest_log",
)
ANALYST_TABLES = (
    "runs",
    "pages",
    "fetches",
    "versions",
    "changes",
    "bodies",
    "body_dicts",
    "subscribers",
    "digests",
    "digest_items",
)
NOT_FOR_ANALYSTS = ("alembic_version", "pass_lock")
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class RoleError(ValueError):
    """The role name or the server refused; the message says which."""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise RoleError(
            f"--name {name!r}: a role name is lowercase letters, digits and _ (at most 63), not starting "
            "with a digit"
        )
    if name.startswith("pg_"):
        raise RoleError(f"--name {name!r}: names starting with pg_ are reserved by PostgreSQL")
    return name


def analyst_role_sql(name: str, database: str, *, with_password: bool = False) -> list[str]:
    """The statements that create the role (or bring an existing one to these grants only)."""
    role, db = _ident(check_name(name)), _ident(database)
    relations = ", ".join(ANALYST_VIEWS + ANALYST_TABLES)
    return [
        f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
        + (" PASSWORD :password" if with_password else ""),
        f"ALTER ROLE {role} SET default_transaction_read_only = on",
        f"ALTER ROLE {role} SET statement_timeout = '60s'",
        f"GRANT CONNECT ON DATABASE {db} TO {role}",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT ON {relations} TO {role}",
    ]


def apply_analyst_role(engine: Engine, name: str, password: str | None = None) -> bool:
    """Create the role (False: it existed, and was only given the grants). Raises RoleError when the role
    exists with powers an analyst must not have, or the server refuses."""
    from sqlalchemy.exc import DBAPIError

    database = engine.url.database or ""
    statements = analyst_role_sql(name, database, with_password=password is not None)
    try:
        with engine.begin() as conn:
            row = conn.execute(
                text(
                    "SELECT r.rolsuper OR r.rolcreaterole OR r.rolreplication OR EXISTS (SELECT 1 "
                    "FROM pg_roles p WHERE p.oid <> r.oid AND (p.rolsuper OR p.rolname IN ("
                    "'pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program', "
                    "'pg_signal_backend')) "
                    "AND pg_has_role(r.oid, p.oid, 'MEMBER')) FROM pg_roles r WHERE r.rolname = :n"
                ),
                {"n": name},
            ).first()
            if row is not None and row[0]:
                raise RoleError(
                    f"role {name} exists and may do more than read (a superuser, create roles, replication, "
                    "server files or other sessions): "
                    "choose another --name"
                )
            created = row is None
            for sql in statements if created else statements[1:]:
                if ":password" in sql:
                    # PASSWORD takes no bind parameter in PostgreSQL's grammar: quote the literal
                    assert password is not None
                    sql = sql.replace(":password", "'" + password.replace("'", "''") + "'")
                conn.exec_driver_sql(sql)
    except DBAPIError as exc:
        msg = str(exc.orig or exc).strip().splitlines()[0]
        raise RoleError(f"the server refused: {msg}") from None
    return created
