"""Create (or bring up to date) the `launchsin` database: roles, schema, tenants, a month of
history; after a restart, the deliveries of the time the sandbox was down."""

from __future__ import annotations

from psycopg import sql

from sandbox import db, kit
from sandbox.launchsin import incidents, ingest, seed, tenants
from sandbox.roles import CHECKS_ROLE
from sandbox.state import new_secret
from sandbox.system import Context

SERVICE_ROLE = "launchsin_service"  # what the app, the traffic and the DLQ worker write with
# Supabase's role for signed-in users; the checks switch to it to see what a user sees.
USER_ROLE = "authenticated"
GRANT_OPTIONS_SINCE = 160000  # server_version_num of PostgreSQL 16 (GRANT ... WITH INHERIT/SET)
# Schema before the bulk load, unique key and indexes after it (as pg_restore orders them).
BEFORE_DATA = ("schema.sql", "dlq_columns.sql", "policies.sql")
AFTER_DATA = ("indexes.sql", "grants.sql")
# A catch-up this large moves the planner's picture of canonical_events: refresh its statistics.
ANALYZE_AFTER = 1000
# The planner needs canonical_events' key and time columns; its JSON columns are four fifths of
# the sampling work and no query filters on them by value.
ANALYZE = """
    ANALYZE public.canonical_events (project_id, event_time, org_id, source_connection_id,
                                     event_type, ingested_at, idempotency_key),
            public.dlq_events, public.source_connections, public.orgs, public.org_members,
            public.projects
"""


def new_settings() -> dict[str, str]:
    return {kit.SERVICE_PASSWORD: new_secret(), "hotmart_key": new_secret()}


def env(ctx: Context) -> dict[str, str]:
    """The variables the checks read for this system besides the database's and the app's URLs
    (checks/test_001_event_ingest.py)."""
    return {
        "LAUNCHSIN_EXPECTED_ACTIVE_CONNECTIONS": ",".join(str(c.id) for c in tenants.ACTIVE),
        "LAUNCHSIN_CHECK_USER_ID": str(tenants.CHECK_USER.id),
        "LAUNCHSIN_CHECK_ORG_ID": str(tenants.CHECK_ORG.id),
        "LAUNCHSIN_CHECK_PROJECT_ID": str(tenants.CHECK_PROJECT.id),
        "LAUNCHSIN_NONMEMBER_USER_ID": str(tenants.OUTSIDER.id),
    }


def provision(ctx: Context) -> str:
    created = kit.ensure_database(ctx, SERVICE_ROLE)
    _ensure_user_role(ctx)
    active = ctx.active_faults()
    with ctx.superuser() as conn:
        exists = conn.execute("SELECT to_regclass('public.canonical_events')").fetchone()
        fresh = created or not (exists and exists[0])
        if fresh:
            added = _build(conn, ctx.settings["hotmart_key"])
        else:
            added = _catch_up(conn, active)
        if incidents.DLQ_WORKER_STOPPED not in active:
            # Retries that fell due while the sandbox was down: the worker's first pass, now.
            while ingest.resolve_due(conn, as_migrated=incidents.DLQ_SCHEMA_DRIFT in active):
                pass
    verb = "created" if fresh else "ready"
    return f"database {ctx.system.database} {verb} ({added} deliveries added)"


def _ensure_user_role(ctx: Context) -> None:
    with ctx.superuser("postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (USER_ROLE,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT").format(
                sql.Identifier(USER_ROLE)))
        _grant_set_only(conn)


def _grant_set_only(conn: db.Connection) -> None:
    """SET only: checks_ro may switch to the role inside its read-only transaction, but does not
    inherit its privileges. Grant options came with PostgreSQL 16; before, inheritance is the
    member's attribute, so 15 gets the README's older form (checks_ro has no other membership)."""
    role, member = sql.Identifier(USER_ROLE), sql.Identifier(CHECKS_ROLE)
    if conn.info.server_version >= GRANT_OPTIONS_SINCE:
        conn.execute(sql.SQL("GRANT {} TO {} WITH INHERIT FALSE, SET TRUE").format(role, member))
        return
    conn.execute(sql.SQL("GRANT {} TO {}").format(role, member))
    conn.execute(sql.SQL("ALTER ROLE {} NOINHERIT").format(member))


def _build(conn: db.Connection, hotmart_key: str) -> int:
    """Schema, tenants and history in one transaction: a failed `up` leaves no half database."""
    with conn.transaction():
        db.apply_supabase_auth(conn)
        for script in BEFORE_DATA:
            kit.run_script(conn, __package__, script)
        seed.ensure_tenants(conn, hotmart_key)
        added = seed.history(conn)
        for script in AFTER_DATA:
            kit.run_script(conn, __package__, script)
    conn.execute(ANALYZE)
    return added


def _catch_up(conn: db.Connection, active: frozenset[str]) -> int:
    quiet = incidents.stopped(active)
    lag = incidents.lag(active)
    added = seed.catch_up(conn, [c for c in tenants.ACTIVE if c not in quiet], kit.db_now(conn),
                          lags={incidents.LAGGING: lag} if lag else None,
                          dead_letters=incidents.DLQ_SCHEMA_DRIFT not in active)
    if added >= ANALYZE_AFTER:
        conn.execute(ANALYZE)
    return added
