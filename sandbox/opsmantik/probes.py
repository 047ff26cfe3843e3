"""A look at what each OpsMantik fault breaks, at the source (the database as the superuser, the
app over HTTP): True when healthy. And what a heal may leave behind.
"""

from __future__ import annotations

import httpx

from sandbox.kit import sql_probe
from sandbox.opsmantik.incidents import DRIFT_PAGE, FAILURE_MARKER, LEAK_PAGE, ORPHAN_URL
from sandbox.system import Context

HTTP_TIMEOUT = 10.0
NEXT_MONTH = "(date_trunc('month', now() AT TIME ZONE 'utc') + interval '1 month')"
SESSIONS_TRIGGER = ("FROM pg_trigger WHERE tgrelid = 'public.sessions'::regclass"
                    " AND tgname = 'sessions_set_created_month'")
LEFTOVERS = """
    SELECT (SELECT count(*) FROM public.sessions WHERE entry_page = ANY(%(pages)s)),
           (SELECT count(*) FROM public.events WHERE url = %(url)s),
           (SELECT count(*) FROM public.sync_dlq WHERE payload ->> 'sandbox_fault' = %(marker)s),
           to_regclass('public.sessions_default') IS NOT NULL
"""


def _app(ctx: Context) -> httpx.Client:
    return httpx.Client(base_url=ctx.url("app"), timeout=HTTP_TIMEOUT)


def health_db_ok(ctx: Context) -> bool:
    with _app(ctx) as client:
        return bool(client.get("/api/health").json()["db_ok"])


def production_origin_accepted(ctx: Context) -> bool:
    origin = ctx.settings["allowed_origins"].split(",")[0]
    with _app(ctx) as client:
        response = client.options("/api/sync", headers={"Origin": origin})
    return (response.status_code == 200
            and response.headers.get("access-control-allow-origin") == origin)


def watchtower_secret_accepted(ctx: Context) -> bool:
    secret = ctx.settings["watchtower_secret"]
    with _app(ctx) as client:
        response = client.post("/api/watchtower/partition-drift",
                               headers={"Authorization": f"Bearer {secret}"})
    return response.status_code == 200


def diag_answers(ctx: Context) -> bool:
    with _app(ctx) as client:
        return client.get("/api/sync", params={"diag": "1"}).status_code == 200


def worker_refuses_unsigned(ctx: Context) -> bool:
    with _app(ctx) as client:
        return client.post("/api/sync/worker", json={}).status_code == 401


sessions_flow = sql_probe(
    "SELECT count(*) > 0 FROM public.sessions WHERE created_at >= now() - interval '60 min'")
no_recent_dead_letters = sql_probe(
    "SELECT count(*) = 0 FROM public.sync_dlq WHERE received_at >= now() - interval '60 min'")
trigger_exists = sql_probe(f"SELECT count(*) = 1 {SESSIONS_TRIGGER}")
trigger_enabled = sql_probe(f"SELECT tgenabled = 'O' {SESSIONS_TRIGGER}")
trigger_fires_on_insert = sql_probe(f"SELECT tgtype & 4 <> 0 {SESSIONS_TRIGGER}")  # 4: INSERT
next_month_partitions_exist = sql_probe(
    f"SELECT to_regclass('public.sessions_' || to_char({NEXT_MONTH}, 'YYYY_MM')) IS NOT NULL"
    f" AND to_regclass('public.events_' || to_char({NEXT_MONTH}, 'YYYY_MM')) IS NOT NULL")
no_month_drift = sql_probe(
    "SELECT count(*) = 0 FROM public.sessions WHERE created_at >= now() - interval '24 hours'"
    " AND created_month <> date_trunc('month', created_at AT TIME ZONE 'utc')::date")
dlq_error_column_exists = sql_probe(
    "SELECT count(*) = 1 FROM information_schema.columns"
    " WHERE table_name = 'sync_dlq' AND column_name = 'error'")
no_default_partition = sql_probe("SELECT to_regclass('public.sessions_default') IS NULL")
events_reference_sessions = sql_probe(
    "SELECT count(*) = 1 FROM pg_constraint WHERE conrelid = 'public.events'::regclass"
    " AND confrelid = 'public.sessions'::regclass AND contype = 'f' AND conparentid = 0")
verify_function_exists = sql_probe(
    "SELECT to_regprocedure('public.verify_current_events_partition_exists()') IS NOT NULL")


def leftovers(ctx: Context) -> list[str]:
    """Rows the faults mark (sessions, events, dead letters) and the DEFAULT partition."""
    params = {"pages": [DRIFT_PAGE, LEAK_PAGE], "url": ORPHAN_URL, "marker": FAILURE_MARKER}
    with ctx.superuser() as conn:
        row = conn.execute(LEFTOVERS, params).fetchone()
    assert row is not None
    sessions, events, letters, default = row
    found = [f"{sessions} fault sessions ({DRIFT_PAGE}, {LEAK_PAGE})" if sessions else "",
             f"{events} orphan events ({ORPHAN_URL})" if events else "",
             f"{letters} dead letters marked {FAILURE_MARKER}" if letters else "",
             "the DEFAULT partition public.sessions_default" if default else ""]
    return [finding for finding in found if finding]
