"""What every system's package needs and would otherwise write again: its database and service
role, packaged SQL scripts, one-statement fault steps and probes, and the time.

Faults' database parts are mostly one statement as the superuser and its inverse; `statement`
builds such a step from its SQL, `sql_probe` a probe from a one-value query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from psycopg import sql

from sandbox import db
from sandbox.roles import ensure_login_role
from sandbox.system import Context, Probe, Step

# The states a fault may turn an item to (Fault.turns).
FAIL = ("FAIL",)
WARN = ("WARN",)
UNKNOWN = ("UNKNOWN",)

# What a system's app and traffic write with: Supabase's service_role, which bypasses RLS. Its
# password is the system's setting SERVICE_PASSWORD.
SERVICE_ATTRIBUTES = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS"
SERVICE_PASSWORD = "service_password"

Params = Sequence[Any] | Mapping[str, Any]


def ensure_database(ctx: Context, service_role: str | None = None) -> bool:
    """Create the system's database if it is missing (True if it was), and first its service
    role, if it has one, brought back to SERVICE_ATTRIBUTES and its password."""
    with ctx.superuser("postgres") as conn:
        if service_role is not None:
            ensure_login_role(conn, service_role, ctx.settings[SERVICE_PASSWORD],
                              SERVICE_ATTRIBUTES)
        name = ctx.system.database
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def run_script(conn: db.Connection, package: str, name: str) -> None:
    """One of a system package's SQL files (provisioning runs them, and heals run some again)."""
    conn.execute(resources.files(package).joinpath(name).read_text().encode())


def script(package: str, name: str) -> Step:
    """A step that runs one of the package's SQL files as the superuser."""
    def step(ctx: Context) -> None:
        with ctx.superuser() as conn:
            run_script(conn, package, name)
    return step


def statement(query: str, params: Params | None = None) -> Step:
    """A step that runs one statement as the superuser."""
    def step(ctx: Context) -> None:
        with ctx.superuser() as conn:
            conn.execute(query, params)
    return step


def nothing(ctx: Context) -> None:
    """The fault lives in the daemon (app or traffic), which reads the active names itself."""


def sql_probe(query: str, *params: Any) -> Probe:
    """A probe that asks the database, as the superuser, one question: healthy if the first
    value of the first row is true."""
    def probe(ctx: Context) -> bool:
        with ctx.superuser() as conn:
            row = conn.execute(query, params or None).fetchone()
        return row is not None and bool(row[0])
    return probe


def db_now(conn: db.Connection) -> datetime:
    """The database's now(): rows are dated by its clock, not ours."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    return now


def iso_now() -> str:
    """Now as JavaScript's toISOString() writes it, as the Node and Next.js apps stamp replies."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
