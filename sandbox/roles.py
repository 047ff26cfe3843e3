"""Login roles. `checks_ro` is shared by every system's database; each system adds its grants."""

from __future__ import annotations

from psycopg import sql

from sandbox import db

CHECKS_ROLE = "checks_ro"

# A read-only login as DESIGN.md 6 recommends for production: it bypasses RLS (policies would
# otherwise recurse or hide rows), cannot write, and cannot hold a query or a transaction long.
CHECKS_ROLE_ATTRIBUTES = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS"
CHECKS_ROLE_SETTINGS = (
    ("default_transaction_read_only", "on"),
    ("statement_timeout", "5s"),
    ("idle_in_transaction_session_timeout", "30s"),
)


def ensure_login_role(conn: db.Connection, name: str, password: str, attributes: str) -> None:
    """Create the role, or bring an existing one back to these attributes and password."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    conn.execute(
        sql.SQL("{verb} ROLE {name} WITH LOGIN {attributes} PASSWORD {password}").format(
            verb=sql.SQL("ALTER" if exists else "CREATE"),
            name=sql.Identifier(name),
            attributes=sql.SQL(attributes),
            password=sql.Literal(password),
        )
    )


def ensure_checks_role(conn: db.Connection, password: str) -> None:
    ensure_login_role(conn, CHECKS_ROLE, password, CHECKS_ROLE_ATTRIBUTES)
    for setting, value in CHECKS_ROLE_SETTINGS:
        conn.execute(
            sql.SQL("ALTER ROLE {} SET {} = {}").format(
                sql.Identifier(CHECKS_ROLE), sql.Identifier(setting), sql.Literal(value)
            )
        )
