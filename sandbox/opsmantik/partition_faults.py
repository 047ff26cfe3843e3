"""The database part of the faults on partitions and their guards (runbook 002): triggers, the
verify function, next month's partitions, drifted months, a DEFAULT partition, orphan events.
Apply and heal.
"""

from __future__ import annotations

from psycopg import sql

from sandbox import kit
from sandbox.opsmantik import partitions, visitors
from sandbox.opsmantik.incidents import (
    DRIFT_PAGE,
    LEAK_PAGE,
    NEXT_PARTITION_MISSING,
    ORPHAN_URL,
)
from sandbox.system import Context

DRIFTED_SESSIONS = 5

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


def _site_ids() -> list[object]:
    return [site.id for site in visitors.SITES]


# The drift guard --------------------------------------------------------------------------------

drop_trigger = kit.statement("DROP TRIGGER IF EXISTS sessions_set_created_month ON public.sessions")
disable_trigger = kit.statement(
    "ALTER TABLE public.sessions DISABLE TRIGGER sessions_set_created_month")
# A hand edit of the migration that kept only the UPDATE case: the guard exists and is enabled,
# but a new session's month key goes unchecked (the app's own is trusted).
update_only_trigger = kit.statement(
    "CREATE OR REPLACE TRIGGER sessions_set_created_month"
    " BEFORE UPDATE OF created_at, created_month ON public.sessions"
    " FOR EACH ROW EXECUTE FUNCTION public.trg_sessions_set_created_month()")
# Runbook 002's mitigation: re-apply the drift-guard migration (it re-enables, too).
reapply_triggers = kit.script(__package__, "triggers.sql")

drop_verify_function = kit.statement(
    "DROP FUNCTION public.verify_current_events_partition_exists()")
reapply_verify_function = kit.script(__package__, "verify_events.sql")


# Partitions -------------------------------------------------------------------------------------

def drop_next_month(ctx: Context) -> None:
    with ctx.superuser() as conn:
        partitions.drop(conn, partitions.add_months(partitions.current_month(conn), 1))


def restore_next_month(ctx: Context) -> None:
    with ctx.superuser() as conn:
        partitions.ensure(conn, partitions.add_months(partitions.current_month(conn), 1))


def leak_into_default(ctx: Context) -> None:
    """A DEFAULT partition, created out of band as in production, and recent sessions whose
    month has no partition of its own landing in it (a client two months ahead)."""
    with ctx.superuser() as conn, conn.transaction():
        month = partitions.add_months(partitions.current_month(conn), 2)
        conn.execute("CREATE TABLE public.sessions_default PARTITION OF public.sessions DEFAULT")
        conn.execute("ALTER TABLE public.sessions DISABLE TRIGGER sessions_set_created_month")
        conn.execute(DRIFTED, {"sites": _site_ids(), "month": month, "page": LEAK_PAGE, "count": 3})
        conn.execute("ALTER TABLE public.sessions ENABLE TRIGGER sessions_set_created_month")


def close_default(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        conn.execute("DELETE FROM public.sessions WHERE entry_page = %s", (LEAK_PAGE,))
        if conn.execute("SELECT to_regclass('public.sessions_default')").fetchone() != (None,):
            # Events' foreign key reaches into every partition: detach before dropping.
            conn.execute("ALTER TABLE public.sessions DETACH PARTITION public.sessions_default")
            conn.execute("DROP TABLE public.sessions_default")


# Rows in the wrong place ------------------------------------------------------------------------

def drift(ctx: Context) -> None:
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


undrift = kit.statement("DELETE FROM public.sessions WHERE entry_page = %s", (DRIFT_PAGE,))


def orphan_events(ctx: Context) -> None:
    """The events -> sessions foreign key gone (a migration swapping it, as upstream's 190000
    tried), and events pointing at sessions that do not exist."""
    with ctx.superuser() as conn, conn.transaction():
        for (name,) in conn.execute(EVENTS_TO_SESSIONS_FK).fetchall():
            conn.execute(sql.SQL("ALTER TABLE public.events DROP CONSTRAINT {}").format(
                sql.Identifier(name)))
        conn.execute(ORPHANS, {"month": partitions.current_month(conn), "url": ORPHAN_URL})


def adopt_orphans(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        conn.execute("DELETE FROM public.events WHERE url = %s", (ORPHAN_URL,))
        if not conn.execute(EVENTS_TO_SESSIONS_FK).fetchall():
            conn.execute("""ALTER TABLE public.events ADD FOREIGN KEY (session_id, session_month)
                            REFERENCES public.sessions (id, created_month) ON DELETE CASCADE""")
