"""The database part of the faults on ingestion (runbook 000): a stall, a failing worker, a
renamed dead-letter column. Apply and heal.
"""

from __future__ import annotations

from datetime import timedelta

from sandbox import db, kit
from sandbox.opsmantik import partitions, seed, visitors
from sandbox.opsmantik.incidents import FAILURE_MARKER, STALL_WINDOW
from sandbox.system import Context

FAILURE_ERROR = "worker could not write the session (simulated by the sandbox fault worker_failing)"
MIN_FAILURES = 40

FORGET_LAST_HOUR = (
    """DELETE FROM public.events e USING public.sessions s
       WHERE e.session_id = s.id AND e.session_month = s.created_month
         AND s.created_month >= %(first_month)s
         AND s.created_at >= now() - %(window)s::interval""",
    """DELETE FROM public.sessions
       WHERE created_month >= %(first_month)s
         AND created_at >= now() - %(window)s::interval""",
    "DELETE FROM public.processed_signals WHERE received_at >= now() - %(window)s::interval",
)

# Failed signals with their dead letters, spread over `spread` back from now; the dead letter
# points at its signal (dedup_event_id) and carries the marker, so heal finds both.
FAILURES = """
    WITH failed AS (
        INSERT INTO public.processed_signals (event_id, received_at, site_id, status)
        SELECT gen_random_uuid(), now() - random() * %(spread)s::interval,
               (%(sites)s::uuid[])[1 + n %% cardinality(%(sites)s::uuid[])], 'failed'
        FROM generate_series(1, %(count)s) AS n
        RETURNING event_id, received_at, site_id)
    INSERT INTO public.sync_dlq (received_at, site_id, qstash_message_id, dedup_event_id, stage,
                                 error, payload)
    SELECT received_at, site_id, 'msg_' || left(replace(event_id::text, '-', ''), 20), event_id,
           'sync_worker', %(error)s,
           jsonb_build_object('ingest_id', event_id, 'sandbox_fault', %(marker)s::text)
    FROM failed
"""

FORGET_FAILURES = """
    WITH gone AS (DELETE FROM public.sync_dlq WHERE payload ->> 'sandbox_fault' = %s
                  RETURNING dedup_event_id)
    DELETE FROM public.processed_signals p USING gone WHERE p.event_id = gone.dedup_event_id
"""


def record_failures(conn: db.Connection, count: int, spread: timedelta) -> None:
    """Also what the traffic adds, one per visit, while the worker is failing."""
    conn.execute(FAILURES, {"count": count, "spread": spread,
                            "sites": [site.id for site in visitors.SITES],
                            "error": FAILURE_ERROR, "marker": FAILURE_MARKER})


def stall(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        params = {"window": STALL_WINDOW,
                  "first_month": partitions.first_month(conn, STALL_WINDOW)}
        for statement in FORGET_LAST_HOUR:
            conn.execute(statement, params)


def resume(ctx: Context) -> None:
    # Put the missing stretch back at once. The newest session older than a minute predates the
    # stall: traffic that restarted since this heal began is younger than that.
    with ctx.superuser() as conn:
        row = conn.execute(
            """SELECT now(), max(created_at) FILTER (WHERE created_at < now() - interval '1 minute')
               FROM public.sessions WHERE created_at >= now() - %s::interval""",
            (seed.HISTORY,),
        ).fetchone()
        assert row is not None
        now, newest = row
        seed.fill(conn, newest or now - seed.HISTORY, now)


def fail_worker(ctx: Context) -> None:
    with ctx.superuser() as conn:
        row = conn.execute(
            """SELECT count(*) FROM public.processed_signals
               WHERE received_at >= now() - interval '1 hour' AND status = 'processed'"""
        ).fetchone()
        processed = int(row[0]) if row else 0
        # About 40, or a quarter of the hour's volume if that is more: clearly above any
        # sensible failure-ratio baseline however long the sandbox has been running.
        record_failures(conn, max(MIN_FAILURES, processed // 4), timedelta(minutes=55))


mend_worker = kit.statement(FORGET_FAILURES, (FAILURE_MARKER,))

# Schema drift of the kind a hand-run migration leaves: the column the checks read is gone.
rename_dlq_error = kit.statement("ALTER TABLE public.sync_dlq RENAME COLUMN error TO error_message")
restore_dlq_error = kit.statement("ALTER TABLE public.sync_dlq RENAME COLUMN error_message TO error")
