"""Create (or bring up to date) the `opsmantik` database: role, schema, partitions, history."""

from __future__ import annotations

from datetime import timedelta

from sandbox import db, kit
from sandbox.opsmantik import partitions, seed, visitors
from sandbox.opsmantik.incidents import INGEST_STALLED, NEXT_PARTITION_MISSING, STALL_WINDOW
from sandbox.state import new_secret
from sandbox.system import Context

SERVICE_ROLE = "opsmantik_service"  # what the app and the worker write with (kit.py)
SCRIPTS = ("schema.sql", "verify_events.sql", "triggers.sql", "grants.sql")


def new_settings() -> dict[str, str]:
    return {
        kit.SERVICE_PASSWORD: new_secret(),
        "watchtower_secret": new_secret(),
        "cron_secret": new_secret(),
        "signing_key": new_secret(),
        "allowed_origins": ",".join(visitors.ALLOWED_ORIGINS),
    }


def env(ctx: Context) -> dict[str, str]:
    """The variables the checks read for this system besides the database's and the app's URLs
    (DESIGN.md 2)."""
    return {
        "OPSMANTIK_WATCHTOWER_SECRET": ctx.settings["watchtower_secret"],
        "OPSMANTIK_CRON_SECRET": ctx.settings["cron_secret"],
        "OPSMANTIK_ALLOWED_ORIGINS": ctx.settings["allowed_origins"],
    }


def provision(ctx: Context) -> str:
    created = kit.ensure_database(ctx, SERVICE_ROLE)
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


def _apply_schema(conn: db.Connection) -> None:
    with conn.transaction():
        db.apply_supabase_auth(conn)
        for script in SCRIPTS:
            kit.run_script(conn, __package__, script)


def _ensure_partitions(conn: db.Connection, *, skip_next: bool) -> None:
    current = partitions.current_month(conn)
    # The previous month too: the 48 hours of history may start in it.
    for offset in (-1, 0) if skip_next else (-1, 0, 1):
        partitions.ensure(conn, partitions.add_months(current, offset))
