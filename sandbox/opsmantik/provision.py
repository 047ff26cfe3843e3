"""Create (or bring up to date) the `opsmantik` database: role, schema, partitions, history."""

from __future__ import annotations

from datetime import timedelta
from importlib import resources

from psycopg import sql

from sandbox import db
from sandbox.opsmantik import partitions, seed, visitors
from sandbox.opsmantik.faults import INGEST_STALLED, NEXT_PARTITION_MISSING, STALL_WINDOW
from sandbox.postgres import SUPERUSER
from sandbox.procs import LOOPBACK
from sandbox.roles import CHECKS_ROLE, ensure_login_role
from sandbox.state import new_secret
from sandbox.system import Context

SERVICE_ROLE = "opsmantik_service"
# What the app and the worker write with: Supabase's service_role, which bypasses RLS.
SERVICE_ATTRIBUTES = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS"
SCRIPTS = ("schema.sql", "verify_events.sql", "triggers.sql", "grants.sql")


def new_settings() -> dict[str, str]:
    return {
        "service_password": new_secret(),
        "watchtower_secret": new_secret(),
        "cron_secret": new_secret(),
        "signing_key": new_secret(),
        "allowed_origins": ",".join(visitors.ALLOWED_ORIGINS),
    }


def env(ctx: Context) -> dict[str, str]:
    """The variables the checks read for this system (DESIGN.md 2)."""
    url = db.url(CHECKS_ROLE, ctx.state.checks_ro_password, ctx.state.pg_port, ctx.system.database)
    return {
        "OPSMANTIK_DATABASE_URL": url,
        "OPSMANTIK_BASE_URL": f"http://{LOOPBACK}:{ctx.app_port}",
        "OPSMANTIK_WATCHTOWER_SECRET": ctx.settings["watchtower_secret"],
        "OPSMANTIK_CRON_SECRET": ctx.settings["cron_secret"],
        "OPSMANTIK_ALLOWED_ORIGINS": ctx.settings["allowed_origins"],
    }


def provision(ctx: Context) -> str:
    created = _ensure_database(ctx)
    faults = ctx.active_faults()
    with ctx.superuser() as conn:
        fresh = created or not partitions.exists(conn, "sessions")
        if fresh:
            _apply_schema(conn)
        seed.ensure_sites(conn)
        if fresh:
            seed.dead_letter_history(conn)
        _ensure_partitions(conn, skip_next=NEXT_PARTITION_MISSING in faults)
        # Catch up on the time the sandbox was down, so that it is healthy again at once.
        hold_back = STALL_WINDOW if INGEST_STALLED in faults else timedelta(0)
        added = seed.catch_up(conn, hold_back=hold_back)
    verb = "created" if created else "ready"
    return f"database {ctx.system.database} {verb} ({added} sessions added)"


def _ensure_database(ctx: Context) -> bool:
    state = ctx.state
    with db.connect(state.pg_port, SUPERUSER, state.superuser_password, "postgres") as conn:
        ensure_login_role(conn, SERVICE_ROLE, ctx.settings["service_password"], SERVICE_ATTRIBUTES)
        name = ctx.system.database
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def _apply_schema(conn: db.Connection) -> None:
    folder = resources.files(__package__)
    with conn.transaction():
        db.apply_supabase_auth(conn)
        for script in SCRIPTS:
            conn.execute(folder.joinpath(script).read_text().encode())


def _ensure_partitions(conn: db.Connection, *, skip_next: bool) -> None:
    current = partitions.current_month(conn)
    # The previous month too: the 48 hours of history may start in it.
    for offset in (-1, 0) if skip_next else (-1, 0, 1):
        partitions.ensure(conn, partitions.add_months(current, offset))
