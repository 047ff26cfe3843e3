"""A look at what each RevenueOS fault breaks, at the source (the database as the superuser, the
app over HTTP): True when healthy. And what a heal may leave behind.
"""

from __future__ import annotations

import httpx
from psycopg import sql

from sandbox.kit import sql_probe
from sandbox.revenueos import raw
from sandbox.revenueos.incidents import SILENT, STASH
from sandbox.revenueos.provision import PREVIOUS_SECRET
from sandbox.revenueos.tenants import BELVO, BELVO_WINDOW_MINUTES
from sandbox.system import Context

HTTP_TIMEOUT = 10.0
CRON = "/api/cron/sync"
TABLES = ["external_events_raw", "external_events_normalized"]
SUCCESS = """
    SELECT coalesce(sum(success)::numeric / nullif(sum(total), 0), 1) >= 0.99
    FROM public.ops_job_success_view
"""
# Dead tuples against the live ones (the reltuples estimate when the counters were reset).
DEAD_RATIO = """
    SELECT coalesce(max(s.n_dead_tup::float / greatest(s.n_live_tup, c.reltuples, 1)), 0)
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = 'public' AND s.relname = ANY(%s)
"""
MAINTAINED = """
    SELECT count(*) = 2 AND bool_and(greatest(last_vacuum, last_autovacuum) > now() - interval '7 days'
                                     AND greatest(last_analyze, last_autoanalyze)
                                         > now() - interval '7 days')
    FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname = ANY(%s)
"""
DOUBLE_SENDS = """
    SELECT count(*) = 0 FROM public.dunning_logs a JOIN public.dunning_logs b
        ON b.payment_id = a.payment_id AND b.channel = a.channel AND b.id <> a.id
       AND b.sent_at BETWEEN a.sent_at AND a.sent_at + interval '1 minute'
    WHERE a.sent_at >= now() - interval '7 days'
"""
MARKED = """
    SELECT (SELECT count(*) FROM public.external_events_raw WHERE {marked})
         + (SELECT count(*) FROM public.jobs_queue WHERE payload ? 'sandbox_fault')
         + (SELECT count(*) FROM public.state_anomalies WHERE details ? 'sandbox_fault')
"""
SHAPE = """
    SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = %(stash)s),
           (SELECT array_agg(relname::text) FROM pg_class WHERE relname = ANY(%(tables)s)
            AND 'autovacuum_enabled=false' = ANY(coalesce(reloptions, '{}'))),
           to_regclass('public.dunning_logs') IS NOT NULL,
           (SELECT count(*) FROM pg_constraint WHERE conname = 'dunning_logs_idempotency_key')
"""
DUNNING_MARKED = """
    SELECT count(*) FROM public.dunning_logs WHERE provider_message_id LIKE 'sandbox-fault:%'
"""
PACE = """
    SELECT (SELECT count(*) FROM public.external_events_raw
            WHERE status IN ('pending', 'processing') AND received_at < now() - interval '1 minute'),
           (SELECT count(*) FROM public.jobs_queue
            WHERE status = 'queued' AND created_at < now() - interval '1 minute'),
           (SELECT array_agg(p.name) FROM unnest(%(providers)s::text[], %(windows)s::int[])
                AS p(name, minutes)
            WHERE NOT EXISTS (SELECT 1 FROM public.external_events_raw r WHERE r.provider = p.name
                              AND r.received_at > now() - make_interval(mins => p.minutes)))
"""
# What a healed sandbox delivers within: the checks' 60 minutes, Belvo its own window.
HEALED_WINDOWS = {"stripe": 10, "hotmart": 10, "asaas": 15, BELVO.name: BELVO_WINDOW_MINUTES}


def _cron(ctx: Context, token: str) -> int:
    with httpx.Client(base_url=ctx.url("app"), timeout=HTTP_TIMEOUT) as client:
        return client.get(CRON, headers={"Authorization": f"Bearer {token}"}).status_code


def secret_configured(ctx: Context) -> bool:
    """A wrong token is refused (401), not a configuration error (500)."""
    return _cron(ctx, "not-the-secret") == 401


def old_secret_refused(ctx: Context) -> bool:
    return _cron(ctx, ctx.settings[PREVIOUS_SECRET]) == 401


def leftovers(ctx: Context) -> list[str]:
    """What a heal may leave behind: fault rows, the stash schema, autovacuum switched off, the
    dunning key or the replay's columns missing; work left waiting, a provider left silent, an
    event table left unmaintained."""
    with ctx.superuser() as conn:
        columns = raw.column_set(conn)
        row = conn.execute(sql.SQL(MARKED).format(marked=raw.marked(columns))).fetchone()
        shape = conn.execute(SHAPE, {"stash": STASH, "tables": TABLES}).fetchone()
        dunning_marked = conn.execute(DUNNING_MARKED).fetchone() if shape and shape[2] else (0,)
        pace = conn.execute(PACE, {"providers": list(HEALED_WINDOWS),
                                   "windows": list(HEALED_WINDOWS.values())}).fetchone()
        maintained = conn.execute(MAINTAINED, (TABLES,)).fetchone()
    assert row and shape and dunning_marked and pace and maintained
    found = []
    if columns != raw.REPLAY:
        found.append(f"external_events_raw has the {columns.name} column set, not the replay's")
    if row[0] or dunning_marked[0]:
        found.append(f"{row[0] + dunning_marked[0]} rows a fault marked")
    if shape[0]:
        found.append(f"the {STASH} schema")
    if shape[1]:
        found.append(f"autovacuum off on {', '.join(shape[1])}")
    if not shape[2] or shape[3] != 1:
        found.append("dunning_logs or its idempotency key missing")
    if pace[0] or pace[1]:
        found.append(f"{pace[0]} raw events pending and {pace[1]} jobs queued for over a minute")
    if pace[2]:
        found.append(f"providers without a recent delivery: {', '.join(pace[2])}")
    if not maintained[0]:
        found.append("an event table not vacuumed and analyzed within 7 days")
    return found


provider_delivers = sql_probe(
    "SELECT max(received_at) > now() - interval '60 minutes' FROM public.external_events_raw"
    " WHERE provider = %s", SILENT.name)
webhooks_arrive = sql_probe(
    "SELECT count(*) > 0 FROM public.external_events_raw"
    " WHERE received_at > now() - interval '60 minutes'")
workers_keep_up = sql_probe(
    "SELECT NOT EXISTS (SELECT 1 FROM public.external_events_raw WHERE status IN"
    " ('pending', 'processing') AND received_at < now() - interval '10 minutes')"
    " AND (SELECT oldest_age_seconds < 300 FROM public.ops_queue_health_view)")
queue_is_prompt = sql_probe("SELECT oldest_age_seconds < 60 FROM public.ops_queue_health_view")
jobs_succeed = sql_probe(SUCCESS)
failures_normalized = sql_probe(
    "SELECT NOT EXISTS (SELECT 1 FROM public.external_events_raw r"
    " WHERE r.status IN ('failed', 'normalization_failed')"
    " AND r.received_at >= now() - interval '24 hours' AND NOT EXISTS"
    " (SELECT 1 FROM public.external_events_normalized n WHERE n.raw_event_id = r.id))")
no_critical_anomaly = sql_probe("SELECT critical_anomalies = 0 FROM public.ops_anomalies_view")
sent_once = sql_probe(DOUBLE_SENDS)
dunning_key_exists = sql_probe(
    "SELECT count(*) = 1 FROM pg_constraint WHERE conname = 'dunning_logs_idempotency_key'")
dunning_logs_exist = sql_probe("SELECT to_regclass('public.dunning_logs') IS NOT NULL")
tables_maintained = sql_probe(MAINTAINED, TABLES)
dead_tuples_low = sql_probe(f"SELECT ({DEAD_RATIO}) < 0.2", TABLES)
