"""The database part of the faults on webhook ingestion and the workers: apply and heal.

Rows a fault adds carry its name in the raw event's payload (`sandbox_fault`), so that heal
finds exactly those; rows a fault takes away are put back by filling the gap, as the providers'
retries and a backfill would.
"""

from __future__ import annotations

from datetime import timedelta

from psycopg import sql

from sandbox import db, kit
from sandbox.revenueos import incidents, pipeline, raw, seed, tenants
from sandbox.revenueos.incidents import (
    NORMALIZATION_FAILURES,
    RESUME_MARGIN,
    SILENCE,
    SILENT,
    SLOW_LAG,
    STOP_WINDOW,
    WORKER_STOPPED,
)
from sandbox.revenueos.tenants import Provider
from sandbox.system import Context, Step

# Everything a delivery left behind, newest first: its apply_event job, its normalized event,
# its legacy twin, the raw event itself. The raw events are locked first: the sync engine
# normalizing one of them waits, or has committed before the deletes' snapshot is taken (else
# its normalized event would appear between the deletes and keep the raw event referenced). In
# id order, the order the engine's `id = ANY(...)` update takes its rows in, so neither waits
# for the other in a circle.
LOCK_GONE = """
    SELECT id FROM public.external_events_raw
    WHERE provider = ANY(%(providers)s) AND received_at >= now() - %(window)s
    ORDER BY id
    FOR UPDATE
"""
FORGET = """
    WITH gone AS (
        SELECT id, {event_id} AS event_id, provider FROM public.external_events_raw
        WHERE id = ANY(%(ids)s::uuid[])
    ), jobs AS (
        DELETE FROM public.jobs_queue
        WHERE job_type = 'apply_event' AND created_at >= now() - %(window)s
          AND payload ->> 'raw_event_id' IN (SELECT id::text FROM gone)
    ), normalized AS (
        DELETE FROM public.external_events_normalized
        WHERE raw_event_id IN (SELECT id FROM gone)
    ), legacy AS (
        DELETE FROM public.external_events
        WHERE provider = ANY(%(providers)s) AND received_at >= now() - %(window)s
    )
    SELECT id FROM gone
"""
FORGET_RAW = "DELETE FROM public.external_events_raw WHERE id = ANY(%s)"

# The workers stopped WORKER_STOPPED ago: what they processed since is pending again (its
# normalized events and apply_event jobs never made), and the scheduler's jobs are queued.
UNPROCESS = """
    WITH back AS (
        UPDATE public.external_events_raw SET status = 'pending', processed_at = NULL
        WHERE received_at >= now() - %(since)s AND status IN ('processing', 'processed')
        RETURNING id
    ), jobs AS (
        DELETE FROM public.jobs_queue
        WHERE job_type = 'apply_event' AND created_at >= now() - %(since)s
          AND payload ->> 'raw_event_id' IN (SELECT id::text FROM back)
    )
    DELETE FROM public.external_events_normalized WHERE raw_event_id IN (SELECT id FROM back)
"""
REQUEUE = """
    UPDATE public.jobs_queue SET status = 'queued', attempts = 0
    WHERE created_at >= now() - %(since)s AND status IN ('running', 'completed')
      AND job_type <> ALL(%(except)s::text[])
"""

# Deliveries the sync engine could not turn into canonical events, hours ago, never replayed.
FAILED = """
    INSERT INTO public.external_events_raw (org_id, provider, {event_id}, event_type, {payload},
                                            status, {error}, received_at, processed_at)
    SELECT %(org)s, f.provider, f.provider || '_fault_' || md5(random()::text), f.event_type,
           jsonb_build_object('type', f.event_type, 'sandbox_fault', %(name)s::text),
           f.status, f.error, now() - f.ago, now() - f.ago + interval '3 seconds'
    FROM (VALUES
        ('hotmart', 'PURCHASE_APPROVED', 'normalization_failed',
         'Normalization failed: purchase.price.value is missing', interval '5 hours'),
        ('hotmart', 'PURCHASE_APPROVED', 'normalization_failed',
         'Normalization failed: purchase.price.value is missing', interval '4 hours 40 minutes'),
        ('stripe', 'charge.refunded', 'failed',
         'Raw event not found', interval '2 hours'),
        ('stripe', 'invoice.paid', 'failed',
         'Provider not supported', interval '50 minutes')
    ) AS f(provider, event_type, status, error, ago)
"""
FORGET_MARKED = "DELETE FROM public.external_events_raw WHERE {payload} ->> 'sandbox_fault' = %s"


def _forget(conn: db.Connection, providers: list[Provider], window: timedelta) -> None:
    columns = raw.column_set(conn)
    scope = {"providers": [p.name for p in providers], "window": window}
    with conn.transaction():
        ids = [r[0] for r in conn.execute(LOCK_GONE, scope).fetchall()]
        gone = conn.execute(sql.SQL(FORGET).format(event_id=columns.ident("event_id")),
                            {**scope, "ids": ids}).fetchall()
        conn.execute(FORGET_RAW, ([r[0] for r in gone],))


def _resume(ctx: Context, providers: list[Provider]) -> None:
    """Fill the gap each provider's silence left, up to now, so it is healthy at once."""
    keep_quiet = incidents.quiet(ctx.active_faults())
    with ctx.superuser() as conn:
        seed.catch_up(conn, [p for p in providers if p not in keep_quiet], kit.db_now(conn),
                      RESUME_MARGIN)


def silence(providers: list[Provider], window: timedelta) -> Step:
    def apply(ctx: Context) -> None:
        with ctx.superuser() as conn:
            _forget(conn, providers, window)
    return apply


def resume(providers: list[Provider]) -> Step:
    def heal(ctx: Context) -> None:
        _resume(ctx, providers)
    return heal


silence_one = silence([SILENT], SILENCE)
resume_one = resume([SILENT])
stop_all = silence(list(tenants.PROVIDERS), STOP_WINDOW)
resume_all = resume(list(tenants.PROVIDERS))


def stop_workers(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        conn.execute(UNPROCESS, {"since": WORKER_STOPPED})
        conn.execute(REQUEUE, {"since": WORKER_STOPPED, "except": ["apply_event"]})


def slow_worker(ctx: Context) -> None:
    with ctx.superuser() as conn:
        conn.execute(REQUEUE, {"since": SLOW_LAG, "except": []})


def drain(ctx: Context) -> None:
    """The workers' first passes after they come back: nothing pending, nothing queued."""
    writer = pipeline.RawWriter()
    with ctx.superuser() as conn:
        while writer.process_pending(conn):
            pass
        while pipeline.run_jobs(conn):
            pass


def fail_normalization(ctx: Context) -> None:
    with ctx.superuser() as conn:
        columns = raw.column_set(conn)
        conn.execute(sql.SQL(FAILED).format(event_id=columns.ident("event_id"),
                                            payload=columns.ident("payload"),
                                            error=columns.ident("error")),
                     {"org": tenants.LUMEN.id, "name": NORMALIZATION_FAILURES})


def forget_marked(name: str) -> Step:
    def heal(ctx: Context) -> None:
        with ctx.superuser() as conn:
            columns = raw.column_set(conn)
            conn.execute(sql.SQL(FORGET_MARKED).format(payload=columns.ident("payload")), (name,))
    return heal
