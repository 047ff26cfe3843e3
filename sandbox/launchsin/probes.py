"""A look at what each LaunchSin fault breaks, at the source (the database as the superuser, a
user's view through checks_ro, the API over HTTP): True when healthy. And what a heal may leave
behind.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from sandbox import db
from sandbox.kit import sql_probe
from sandbox.launchsin import tenants
from sandbox.launchsin.incidents import DEACTIVATED, DEAD, DRIFTED_COLUMNS, LAGGING, SILENT, STASH
from sandbox.system import Context

HTTP_TIMEOUT = 10.0
INDEX = "idx_canonical_events_project_time"
PROJECT_EVENTS_24H = ("SELECT count(*) FROM public.canonical_events"
                      " WHERE project_id = %s AND event_time >= now() - interval '24 hours'")
DLQ_SHARE_UNDER_5 = """
    SELECT d::float / nullif(d + e, 0) < 0.05 FROM
        (SELECT count(*) AS d FROM public.dlq_events
         WHERE created_at >= now() - interval '1 hour') dd,
        (SELECT count(*) AS e FROM public.canonical_events
         WHERE ingested_at >= now() - interval '1 hour') ee
"""
LAG_UNDER_10 = ("SELECT now() - max(event_time) < interval '10 minutes' FROM public.canonical_events"
                " WHERE source_connection_id = %s")
# Each active connection's silence (since its newest delivery) and lag (since its newest event).
FRESHNESS = """
    SELECT max(extract(epoch FROM now() - newest.ingested_at)),
           max(extract(epoch FROM now() - newest.event_time))
    FROM public.source_connections c
    CROSS JOIN LATERAL (SELECT max(ingested_at) AS ingested_at, max(event_time) AS event_time
                        FROM public.canonical_events e
                        WHERE e.source_connection_id = c.id
                          AND e.event_time >= now() - interval '1 day') newest
    WHERE c.is_active
"""
LEFTOVERS = f"""
    SELECT (SELECT count(*) FROM public.canonical_events WHERE raw_ref_json ? 'sandbox_fault')
         + (SELECT count(*) FROM public.dlq_events WHERE payload_json ? 'sandbox_fault')
         + (SELECT count(*) FROM public.dlq_events WHERE error_class IS NULL)
         + (SELECT count(*) FROM pg_namespace WHERE nspname = '{STASH}')
"""
# What a healed sandbox delivers: inside the checks' 15-minute silence alarm and 10-minute lag.
HEALED_SILENCE = 15 * 60
HEALED_LAG = 10 * 60


def count_as_user(conn: db.Connection, user: uuid.UUID | str, query: str,
                  params: tuple[Any, ...]) -> int:
    """What the checks' rows_as does: SET LOCAL ROLE plus the JWT claims, then back."""
    claims = json.dumps({"sub": str(user), "role": "authenticated"})
    conn.execute("SELECT set_config('role', 'authenticated', true),"
                 " set_config('request.jwt.claims', %s, true)", (claims,))
    row = conn.execute(query, params).fetchone()
    conn.execute("SELECT set_config('role', 'none', true)")
    assert row is not None
    return int(row[0])


def member_sees_the_project(ctx: Context) -> bool:
    with ctx.checks_ro() as conn, conn.transaction():
        return count_as_user(conn, tenants.CHECK_USER.id, PROJECT_EVENTS_24H,
                             (tenants.CHECK_PROJECT.id,)) > 0


def health_answers(ctx: Context) -> bool:
    with httpx.Client(base_url=ctx.url("app"), timeout=HTTP_TIMEOUT) as client:
        return client.get("/api/health", headers={"Authorization": "Bearer x"}).status_code == 200


lagging_is_current = sql_probe(LAG_UNDER_10, LAGGING.id)
silent_delivers = sql_probe(
    "SELECT max(ingested_at) > now() - interval '15 minutes' FROM public.canonical_events"
    " WHERE source_connection_id = %s", SILENT.id)
dead_delivered_today = sql_probe(
    "SELECT count(*) > 0 FROM public.canonical_events WHERE source_connection_id = %s"
    " AND ingested_at >= now() - interval '24 hours'", DEAD.id)
events_flow = sql_probe(
    "SELECT count(*) > 0 FROM public.canonical_events"
    " WHERE ingested_at >= now() - interval '1 hour'")
dlq_share_low = sql_probe(DLQ_SHARE_UNDER_5)
no_overdue_letters = sql_probe(
    "SELECT count(*) = 0 FROM public.dlq_events WHERE status = 'pending'"
    " AND next_retry_at < now() - interval '2 minutes'")
unique_guard_holds = sql_probe(
    "SELECT count(*) = 1 AND NOT EXISTS (SELECT 1 FROM public.canonical_events"
    "  GROUP BY source_connection_id, idempotency_key HAVING count(*) > 1)"
    " FROM pg_constraint WHERE conname = 'unique_event_per_source' AND convalidated")
no_future_events = sql_probe(
    "SELECT count(*) = 0 FROM public.canonical_events"
    " WHERE event_time > now() + interval '5 minutes'")
deactivated_is_active = sql_probe(
    "SELECT is_active FROM public.source_connections WHERE id = %s", DEACTIVATED.id)
check_user_is_member = sql_probe(
    "SELECT count(*) = 1 FROM public.org_members WHERE org_id = %s AND user_id = %s",
    tenants.CHECK_ORG.id, tenants.CHECK_USER.id)
dlq_columns_exist = sql_probe(
    "SELECT count(*) = 4 FROM information_schema.columns WHERE table_schema = 'public'"
    " AND table_name = 'dlq_events' AND column_name = ANY(%s)", list(DRIFTED_COLUMNS))
dlq_classes_known = sql_probe(
    "SELECT count(*) = 0 FROM public.dlq_events WHERE created_at >= now() - interval '24 hours'"
    " AND error_class <> ALL(ARRAY['MISSING_SECRET', 'INSERT_FAILED', 'UNEXPECTED_ERROR'])")
no_insert_failures = sql_probe(
    "SELECT count(*) = 0 FROM public.dlq_events WHERE error_class = 'INSERT_FAILED'"
    " AND created_at >= now() - interval '1 hour'")
hotmart_secrets_set = sql_probe(
    "SELECT bool_and(config_json ? 'hotmart_secret') FROM public.source_connections"
    " WHERE is_active AND type = 'hotmart'")
project_index_exists = sql_probe(f"SELECT to_regclass('public.{INDEX}') IS NOT NULL")


def leftovers(ctx: Context) -> list[str]:
    """Rows the faults mark, letters without the out-of-band columns, the stash schema; and a
    connection left silent or lagging."""
    with ctx.superuser() as conn:
        marked = conn.execute(LEFTOVERS).fetchone()
        fresh = conn.execute(FRESHNESS).fetchone()
    assert marked is not None and fresh is not None
    found = []
    if marked[0]:
        found.append(f"{marked[0]} fault rows or the {STASH} schema left behind")
    silence, lag = float(fresh[0]), float(fresh[1])
    if silence >= HEALED_SILENCE or lag >= HEALED_LAG:
        found.append(f"an active connection is {silence:.0f} s silent or {lag:.0f} s behind "
                     f"(a healed sandbox: under {HEALED_SILENCE} s and {HEALED_LAG} s)")
    return found
