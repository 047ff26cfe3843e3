"""OpsMantik's named faults, each a precise incident from runbook 000 or 002.

The app and the traffic read the active names (the constants below); the functions here do the
database part. Rows a fault adds carry a marker so that heal removes exactly those.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources

from psycopg import sql

from sandbox import db
from sandbox.opsmantik import partitions, seed, visitors
from sandbox.system import Context, Fault

SYSTEM = "opsmantik"

INGEST_STALLED = "ingest_stalled"
HEALTH_DB_DOWN = "health_db_down"
CORS_REJECT = "cors_reject"
WORKER_FAILING = "worker_failing"
TRIGGER_DROPPED = "trigger_dropped"
TRIGGER_DISABLED = "trigger_disabled"
NEXT_PARTITION_MISSING = "next_partition_missing"
MONTH_DRIFT = "month_drift"
WATCHTOWER_SECRET_ROTATED = "watchtower_secret_rotated"
DLQ_COLUMN_RENAMED = "dlq_column_renamed"
DIAG_DISABLED = "diag_disabled"
WORKER_SIGNING_OFF = "worker_signing_off"
DEFAULT_PARTITION_LEAK = "default_partition_leak"
ORPHAN_EVENTS = "orphan_events"
VERIFY_FUNCTION_MISSING = "verify_function_missing"

# Longer than the checks' 60-minute windows, so none of them sees a session.
STALL_WINDOW = timedelta(minutes=65)
FAILURE_MARKER = WORKER_FAILING
FAILURE_ERROR = "worker could not write the session (simulated by the sandbox fault worker_failing)"
MIN_FAILURES = 40
DRIFT_PAGE = "/sandbox-fault/month-drift"
LEAK_PAGE = "/sandbox-fault/default-leak"
ORPHAN_URL = "/sandbox-fault/orphan"
DRIFTED_SESSIONS = 5

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

TRIGGER_STATE = """
    SELECT t.tgenabled FROM pg_trigger t
    WHERE t.tgrelid = 'public.sessions'::regclass AND t.tgname = 'sessions_set_created_month'
"""

# Sessions stamped with next month while created, by their clock, now: what a client on the
# wrong side of a month boundary would send if the guard were not there.
DRIFTED = """
    INSERT INTO public.sessions (site_id, created_month, created_at, entry_page, exit_page,
                                 device_type, traffic_source, traffic_medium)
    SELECT (%(sites)s::uuid[])[1 + n %% cardinality(%(sites)s::uuid[])], %(month)s,
           now() - (n - 1) * interval '4 minutes', %(page)s, %(page)s, 'mobile', 'google', 'organic'
    FROM generate_series(1, %(count)s) AS n
"""


def _nothing(ctx: Context) -> None:
    """The fault lives in the daemon (app or traffic), which reads the active names itself."""


def _site_ids() -> list[object]:
    return [site.id for site in visitors.SITES]


def record_failures(conn: db.Connection, count: int, spread: timedelta) -> None:
    conn.execute(FAILURES, {"count": count, "spread": spread, "sites": _site_ids(),
                            "error": FAILURE_ERROR, "marker": FAILURE_MARKER})


def _stall(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        params = {"window": STALL_WINDOW,
                  "first_month": partitions.first_month(conn, STALL_WINDOW)}
        for statement in FORGET_LAST_HOUR:
            conn.execute(statement, params)


def _resume(ctx: Context) -> None:
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


def _fail_worker(ctx: Context) -> None:
    with ctx.superuser() as conn:
        row = conn.execute(
            """SELECT count(*) FROM public.processed_signals
               WHERE received_at >= now() - interval '1 hour' AND status = 'processed'"""
        ).fetchone()
        processed = int(row[0]) if row else 0
        # About 40, or a quarter of the hour's volume if that is more: clearly above any
        # sensible failure-ratio baseline however long the sandbox has been running.
        record_failures(conn, max(MIN_FAILURES, processed // 4), timedelta(minutes=55))


def _mend_worker(ctx: Context) -> None:
    with ctx.superuser() as conn:
        conn.execute(FORGET_FAILURES, (FAILURE_MARKER,))


def _drop_trigger(ctx: Context) -> None:
    with ctx.superuser() as conn:
        conn.execute("DROP TRIGGER IF EXISTS sessions_set_created_month ON public.sessions")


def _disable_trigger(ctx: Context) -> None:
    with ctx.superuser() as conn:
        conn.execute("ALTER TABLE public.sessions DISABLE TRIGGER sessions_set_created_month")


def reapply_triggers(ctx: Context) -> None:
    """Runbook 002's mitigation: re-apply the drift-guard migration (it re-enables, too)."""
    _run_script(ctx, "triggers.sql")


def _reapply_verify_function(ctx: Context) -> None:
    _run_script(ctx, "verify_events.sql")


def _run_script(ctx: Context, name: str) -> None:
    script = resources.files(__package__).joinpath(name).read_text()
    with ctx.superuser() as conn:
        conn.execute(script.encode())


def _rename_dlq_error(ctx: Context) -> None:
    # Schema drift of the kind a hand-run migration leaves: the column the checks read is gone.
    with ctx.superuser() as conn:
        conn.execute("ALTER TABLE public.sync_dlq RENAME COLUMN error TO error_message")


def _restore_dlq_error(ctx: Context) -> None:
    with ctx.superuser() as conn:
        conn.execute("ALTER TABLE public.sync_dlq RENAME COLUMN error_message TO error")


def _drop_verify_function(ctx: Context) -> None:
    with ctx.superuser() as conn:
        conn.execute("DROP FUNCTION public.verify_current_events_partition_exists()")


def _leak_into_default(ctx: Context) -> None:
    """A DEFAULT partition, created out of band as in production, and recent sessions whose
    month has no partition of its own landing in it (a client two months ahead)."""
    with ctx.superuser() as conn, conn.transaction():
        month = partitions.add_months(partitions.current_month(conn), 2)
        conn.execute("CREATE TABLE public.sessions_default PARTITION OF public.sessions DEFAULT")
        conn.execute("ALTER TABLE public.sessions DISABLE TRIGGER sessions_set_created_month")
        conn.execute(DRIFTED, {"sites": _site_ids(), "month": month, "page": LEAK_PAGE, "count": 3})
        conn.execute("ALTER TABLE public.sessions ENABLE TRIGGER sessions_set_created_month")


def _close_default(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        conn.execute("DELETE FROM public.sessions WHERE entry_page = %s", (LEAK_PAGE,))
        if conn.execute("SELECT to_regclass('public.sessions_default')").fetchone() != (None,):
            # Events' foreign key reaches into every partition: detach before dropping.
            conn.execute("ALTER TABLE public.sessions DETACH PARTITION public.sessions_default")
            conn.execute("DROP TABLE public.sessions_default")


EVENTS_TO_SESSIONS_FK = """
    SELECT conname FROM pg_constraint
    WHERE conrelid = 'public.events'::regclass AND confrelid = 'public.sessions'::regclass
      AND contype = 'f' AND conparentid = 0
"""
ORPHANS = """
    INSERT INTO public.events (session_id, session_month, url, event_action, created_at)
    SELECT gen_random_uuid(), %(month)s, %(url)s, 'page_view', now() - n * interval '3 minutes'
    FROM generate_series(1, 3) AS n
"""


def _orphan_events(ctx: Context) -> None:
    """The events -> sessions foreign key gone (a migration swapping it, as upstream's 190000
    tried), and events pointing at sessions that do not exist."""
    with ctx.superuser() as conn, conn.transaction():
        for (name,) in conn.execute(EVENTS_TO_SESSIONS_FK).fetchall():
            conn.execute(sql.SQL("ALTER TABLE public.events DROP CONSTRAINT {}").format(
                sql.Identifier(name)))
        conn.execute(ORPHANS, {"month": partitions.current_month(conn), "url": ORPHAN_URL})


def _adopt_orphans(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        conn.execute("DELETE FROM public.events WHERE url = %s", (ORPHAN_URL,))
        if not conn.execute(EVENTS_TO_SESSIONS_FK).fetchall():
            conn.execute("""ALTER TABLE public.events ADD FOREIGN KEY (session_id, session_month)
                            REFERENCES public.sessions (id, created_month) ON DELETE CASCADE""")


def _drop_next_month(ctx: Context) -> None:
    with ctx.superuser() as conn:
        partitions.drop(conn, partitions.add_months(partitions.current_month(conn), 1))


def _restore_next_month(ctx: Context) -> None:
    with ctx.superuser() as conn:
        partitions.ensure(conn, partitions.add_months(partitions.current_month(conn), 1))


def _drift(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        month = partitions.add_months(partitions.current_month(conn), 1)
        if not partitions.exists(conn, partitions.name("sessions", month)):
            raise RuntimeError(
                f"next month's partition is missing; heal {NEXT_PARTITION_MISSING} first")
        row = conn.execute(TRIGGER_STATE).fetchone()
        # With the guard on, the insert would fail (the row cannot move partition); switch it
        # off only inside this transaction, and only if it was on.
        guarded = row is not None and row[0] != "D"
        if guarded:
            conn.execute("ALTER TABLE public.sessions DISABLE TRIGGER sessions_set_created_month")
        conn.execute(DRIFTED, {"sites": _site_ids(), "month": month, "page": DRIFT_PAGE,
                               "count": DRIFTED_SESSIONS})
        if guarded:
            conn.execute("ALTER TABLE public.sessions ENABLE TRIGGER sessions_set_created_month")


def _undrift(ctx: Context) -> None:
    with ctx.superuser() as conn:
        conn.execute("DELETE FROM public.sessions WHERE entry_page = %s", (DRIFT_PAGE,))


FAIL = ("FAIL",)
UNKNOWN = ("UNKNOWN",)

FAULTS: tuple[Fault, ...] = (
    Fault(INGEST_STALLED, SYSTEM,
          "Traffic stops and the last 65 minutes of sessions, events and signals are gone.",
          # IS-11 is a failure *ratio*: with no delivery at all it cannot be measured, which
          # does not pass but is no worker failure either, so the check warns.
          {"IS-2": FAIL, "IS-10": FAIL, "IS-12": FAIL, "IS-12b": FAIL, "IS-13": FAIL,
           "IS-11": ("WARN",)},
          _stall, _resume),
    Fault(HEALTH_DB_DOWN, SYSTEM,
          "The app runs as if its Supabase env were missing: /api/health says db_ok false.",
          # Runbook 000 asks for `ok` and "ideally" `db_ok`: IS-1 grades it a warning;
          # IS-9 (the database answers the app) is the failure.
          {"IS-1": ("WARN",), "IS-9": FAIL}, _nothing, _nothing),
    Fault(CORS_REJECT, SYSTEM,
          "A bad deploy drops the production origins from the app's allowed list.",
          {"IS-3": FAIL, "IS-8": FAIL}, _nothing, _nothing),
    Fault(WORKER_FAILING, SYSTEM,
          "The worker dead-letters: failed signals and sync_dlq rows pile up; sessions still flow.",
          {"IS-4": FAIL, "IS-11": FAIL}, _fail_worker, _mend_worker),
    Fault(TRIGGER_DROPPED, SYSTEM,
          "The sessions drift guard (sessions_set_created_month) is dropped.",
          {"IS-7": FAIL, "PD-1": FAIL, "PD-1b": FAIL, "PD-2": FAIL, "PD-3": FAIL, "PD-4": FAIL},
          _drop_trigger, reapply_triggers),
    Fault(TRIGGER_DISABLED, SYSTEM,
          "The sessions drift guard is disabled; the verify RPC (blind to that) still says true.",
          {"IS-7": FAIL, "PD-3": FAIL}, _disable_trigger, reapply_triggers),
    Fault(NEXT_PARTITION_MISSING, SYSTEM,
          "Next month's sessions/events partitions are dropped and nothing recreates them.",
          {"PD-6": ("WARN", "FAIL")}, _drop_next_month, _restore_next_month),
    Fault(MONTH_DRIFT, SYSTEM,
          "A few sessions of the last 30 minutes carry next month as created_month.",
          {"PD-7": FAIL}, _drift, _undrift),
    Fault(WATCHTOWER_SECRET_ROTATED, SYSTEM,
          "The app's watchtower secret changes, so the configured one gets 401.",
          {"PD-1": FAIL}, _nothing, _nothing),
    Fault(DIAG_DISABLED, SYSTEM,
          "The build refuses /api/sync?diag=1 with 405 'Use POST', as newer builds do in production.",
          {"IS-5": ("WARN",)}, _nothing, _nothing),
    Fault(WORKER_SIGNING_OFF, SYSTEM,
          "The worker lost its QStash signing keys and accepts unsigned deliveries.",
          {"IS-6": FAIL}, _nothing, _nothing),
    Fault(DEFAULT_PARTITION_LEAK, SYSTEM,
          "A DEFAULT partition exists and recent sessions two months ahead land in it.",
          {"PD-6b": FAIL, "PD-7": FAIL}, _leak_into_default, _close_default),
    Fault(ORPHAN_EVENTS, SYSTEM,
          "The events -> sessions foreign key is gone and recent events point at no session.",
          {"PD-8": FAIL}, _orphan_events, _adopt_orphans),
    Fault(DLQ_COLUMN_RENAMED, SYSTEM,
          "sync_dlq.error was renamed error_message by a hand-run migration.",
          {"IS-0": UNKNOWN, "IS-4": UNKNOWN}, _rename_dlq_error, _restore_dlq_error),
    Fault(VERIFY_FUNCTION_MISSING, SYSTEM,
          "verify_current_events_partition_exists() was dropped; the watchtower RPC now errors.",
          {"PD-0": UNKNOWN, "PD-1b": UNKNOWN, "PD-9": FAIL, "PD-1": FAIL},
          _drop_verify_function, _reapply_verify_function),
)
