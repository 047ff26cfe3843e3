"""The database part of the faults on the dead-letter queue: apply and heal.

Letters a fault adds carry its name in payload_json.sandbox_fault, so that heal finds exactly
those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sandbox import db, kit
from sandbox.launchsin import ingest, seed, tenants
from sandbox.launchsin.incidents import (
    DLQ_TARGETS,
    DLQ_WORKER_STOPPED,
    DRIFTED_COLUMNS,
    STASH,
)
from sandbox.system import Context, Step


@dataclass(frozen=True)
class Letters:
    """Dead letters a fault adds: `count` of them, created between `oldest` and `newest` ago."""

    error_class: str
    message: str
    count: int
    oldest: timedelta
    newest: timedelta = timedelta(0)
    overdue: bool = False  # still pending, their retry 10 minutes late; else resolved


LETTERS = """
    INSERT INTO public.dlq_events (connection_id, payload_json, error_message, status,
                                   retry_count, created_at, updated_at, error_class, attempt_count,
                                   next_retry_at, last_error_message, resolved_reason)
    SELECT (%(ids)s::uuid[])[1 + floor(random() * cardinality(%(ids)s::uuid[]))::int],
           jsonb_build_object('id', gen_random_uuid(), 'sandbox_fault', %(marker)s::text),
           %(message)s, CASE WHEN %(overdue)s THEN 'pending' ELSE 'resolved' END,
           CASE WHEN %(overdue)s THEN 0 ELSE 1 END, t.at, least(t.retry_at, now()), %(class)s,
           CASE WHEN %(overdue)s THEN 0 ELSE 1 END,
           CASE WHEN %(overdue)s THEN now() - interval '10 minutes' ELSE t.retry_at END,
           %(message)s, CASE WHEN %(overdue)s THEN NULL ELSE 'retry_succeeded' END
    FROM generate_series(1, %(count)s) AS n
    CROSS JOIN LATERAL (SELECT now() - %(newest)s - random() * (%(oldest)s - %(newest)s) AS at) a
    CROSS JOIN LATERAL (SELECT a.at, a.at + interval '2 minutes' AS retry_at) t
"""

FORGET_LETTERS = "DELETE FROM public.dlq_events WHERE payload_json ->> 'sandbox_fault' = %s"


def _add_letters(conn: db.Connection, marker: str, letters: Letters) -> None:
    conn.execute(LETTERS, {"ids": [c.id for c in tenants.ACTIVE], "marker": marker,
                           "message": letters.message, "overdue": letters.overdue,
                           "class": letters.error_class, "count": letters.count,
                           "oldest": letters.oldest, "newest": letters.newest})


def add(name: str, letters: Letters) -> Step:
    def apply(ctx: Context) -> None:
        with ctx.superuser() as conn:
            _add_letters(conn, name, letters)
    return apply


def forget(name: str) -> Step:
    return kit.statement(FORGET_LETTERS, (name,))


def raise_dlq_share(name: str) -> Step:
    def apply(ctx: Context) -> None:
        target = DLQ_TARGETS[name]
        with ctx.superuser() as conn:
            row = conn.execute(
                """SELECT (SELECT count(*) FROM public.dlq_events
                           WHERE created_at >= now() - interval '1 hour'),
                          (SELECT count(*) FROM public.canonical_events
                           WHERE ingested_at >= now() - interval '1 hour'
                             AND event_time >= now() - interval '7 days')""").fetchone()
            assert row is not None
            letters, events = int(row[0]), int(row[1])
            # Enough failed deliveries over the hour for letters / (events + letters) = target.
            missing = math.ceil((target * (events + letters) - letters) / (1 - target))
            if missing > 0:
                _add_letters(conn, name, Letters(ingest.UNEXPECTED_ERROR, seed.TRANSIENT_ERROR,
                                                 missing, timedelta(minutes=55)))
    return apply


def resume_dlq_worker(ctx: Context) -> None:
    with ctx.superuser() as conn:
        conn.execute(FORGET_LETTERS, (DLQ_WORKER_STOPPED,))
        # The letters that fell due while it was stopped: the worker's first pass, right away.
        while ingest.resolve_due(conn):
            pass


# Schema drift --------------------------------------------------------------------------------

def drift_dlq(ctx: Context) -> None:
    columns = ", ".join(DRIFTED_COLUMNS)
    with ctx.superuser() as conn, conn.transaction():
        # Keep the values aside, so heal gives back the data, not only the columns.
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {STASH}")
        conn.execute(f"DROP TABLE IF EXISTS {STASH}.dlq_events")
        conn.execute(f"CREATE TABLE {STASH}.dlq_events AS SELECT id, {columns} FROM public.dlq_events")
        conn.execute("ALTER TABLE public.dlq_events "
                     + ", ".join(f"DROP COLUMN IF EXISTS {c}" for c in DRIFTED_COLUMNS))


def undrift_dlq(ctx: Context) -> None:
    with ctx.superuser() as conn:
        with conn.transaction():
            kit.run_script(conn, __package__, "dlq_columns.sql")
            stashed = conn.execute("SELECT to_regclass(%s)", (f"{STASH}.dlq_events",)).fetchone()
            if stashed and stashed[0]:
                conn.execute(
                    f"""UPDATE public.dlq_events d
                        SET error_class = s.error_class, attempt_count = s.attempt_count,
                            next_retry_at = s.next_retry_at, last_error_message = s.last_error_message
                        FROM {STASH}.dlq_events s WHERE s.id = d.id""")
            # Letters written during the drift had only the migrated columns: the traffic's
            # transient failures, due five minutes after they were written.
            conn.execute(
                """UPDATE public.dlq_events
                   SET error_class = %s, attempt_count = retry_count,
                       next_retry_at = created_at + interval '5 minutes',
                       last_error_message = error_message
                   WHERE error_class IS NULL""", (ingest.UNEXPECTED_ERROR,))
            conn.execute(f"DROP SCHEMA IF EXISTS {STASH} CASCADE")
        while ingest.resolve_due(conn):
            pass


