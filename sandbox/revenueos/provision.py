"""Create (or bring up to date) the `revenueos` database: its role, schema, tenants, a week of
deliveries, two weeks of dunning; after a restart, what the time the sandbox was down would have
brought."""

from __future__ import annotations

from psycopg import sql

from sandbox import db, kit
from sandbox.revenueos import dunning, incidents, maintenance, pipeline, seed, tenants
from sandbox.revenueos.tenants import BELVO, BELVO_WINDOW_MINUTES
from sandbox.state import new_secret
from sandbox.system import Context

SERVICE_ROLE = "revenueos_service"  # what the app, the traffic and the workers write with
USER_ROLE = "authenticated"
SCHEMA = ("schema.sql", "policies.sql", "dunning.sql", "dunning_key.sql", "grants.sql",
          "tuning.sql")
# The secret the cron routes require now, and the one it replaced at the last rotation (the
# checks probe with the old one; they never hold the current one).
CURRENT_SECRET = "internal_api_secret"
PREVIOUS_SECRET = "previous_internal_api_secret"


def new_settings() -> dict[str, str]:
    return {kit.SERVICE_PASSWORD: new_secret(), CURRENT_SECRET: new_secret(),
            PREVIOUS_SECRET: new_secret(), "webhook_key": new_secret()}


def env(ctx: Context) -> dict[str, str]:
    """The variables the checks read for this system besides the database's and the app's URLs
    (checks/test_003_revenueos.py)."""
    return {
        "REVENUEOS_PREVIOUS_INTERNAL_API_SECRET": ctx.settings[PREVIOUS_SECRET],
        "REVENUEOS_PROVIDER_MAX_AGE_MINUTES": f"{BELVO.name}={BELVO_WINDOW_MINUTES}",
    }


def provision(ctx: Context) -> str:
    created = kit.ensure_database(ctx, SERVICE_ROLE)
    _ensure_user_role(ctx)
    active = ctx.active_faults()
    with ctx.superuser() as conn:
        exists = conn.execute("SELECT to_regclass('public.external_events_raw')").fetchone()
        fresh = created or not (exists and exists[0])
        added = _build(conn, ctx.settings["webhook_key"]) if fresh else _catch_up(conn, active)
        if not incidents.workers_stopped(active):
            _drain(conn, active)
        if not incidents.maintenance_paused(active):
            maintenance.weekly(conn)
    verb = "created" if fresh else "ready"
    return f"database {ctx.system.database} {verb} ({added} deliveries added)"


def _ensure_user_role(ctx: Context) -> None:
    """Supabase's role for signed-in users, which the policies name (cluster-wide: another
    system may have made it)."""
    with ctx.superuser("postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (USER_ROLE,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT").format(sql.Identifier(USER_ROLE)))


def _build(conn: db.Connection, webhook_key: str) -> int:
    """Schema, tenants and history in one transaction: a failed `up` leaves no half database."""
    with conn.transaction():
        db.apply_supabase_auth(conn)
        for script in SCHEMA:
            kit.run_script(conn, __package__, script)
        seed.ensure_tenants(conn, webhook_key)
        added = seed.history(conn)
        dunning.history(conn)
    maintenance.vacuum_analyze(conn)
    return added


def _catch_up(conn: db.Connection, active: frozenset[str]) -> int:
    now = kit.db_now(conn)
    quiet = incidents.quiet(active)
    added = seed.catch_up(conn, [p for p in tenants.PROVIDERS if p not in quiet], now)
    seed.catch_up_periodic(conn, now)
    dunning.fill(conn, now - dunning.HISTORY)
    return added


def _drain(conn: db.Connection, active: frozenset[str]) -> None:
    """What fell due while the sandbox was down: the workers' first passes, now."""
    writer = pipeline.RawWriter()
    while writer.process_pending(conn):
        pass
    while pipeline.run_jobs(conn, lag=incidents.job_lag(active)):
        pass
