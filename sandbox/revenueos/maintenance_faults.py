"""The database part of the faults on table maintenance: apply and heal. Both switch
autovacuum off on a table (a setting someone changed and forgot), so it cannot repair what they
break; heal switches it back on and runs the VACUUM ANALYZE the runbook prescribes.
"""

from __future__ import annotations

from sandbox.revenueos import maintenance
from sandbox.system import Context

AUTOVACUUM_OFF = "ALTER TABLE public.{} SET (autovacuum_enabled = false)"
# pg_stat_reset_single_table_counters clears the table's counters, its vacuum and analyze times
# included, as a statistics reset (or a crash) does.
RESET = "SELECT pg_stat_reset_single_table_counters(%s::regclass)"
# A backfill that rewrote three to seven days of raw events (delete, insert again) with
# autovacuum off: the deleted versions stay behind as dead tuples. Foreign keys are skipped, as
# the rows come back under the same ids in the same transaction.
REWRITE = (
    "SET LOCAL session_replication_role = replica",
    "CREATE TEMP TABLE rewritten ON COMMIT DROP AS SELECT * FROM public.external_events_raw"
    " WHERE received_at < now() - interval '2 days'",
    "DELETE FROM public.external_events_raw WHERE id IN (SELECT id FROM rewritten)",
    "INSERT INTO public.external_events_raw SELECT * FROM rewritten",
)


def never_vacuumed(ctx: Context) -> None:
    with ctx.superuser() as conn:
        for table in maintenance.TABLES:
            conn.execute(AUTOVACUUM_OFF.format(table))
            conn.execute(RESET, (f"public.{table}",))


def bloat(ctx: Context) -> None:
    with ctx.superuser() as conn:
        conn.execute(AUTOVACUUM_OFF.format("external_events_raw"))
        with conn.transaction():
            for statement in REWRITE:
                conn.execute(statement)
        # The dead tuples reach pg_stat_user_tables at the session's next report; force it now.
        conn.execute("SELECT pg_stat_force_next_flush()")


def vacuum(ctx: Context) -> None:
    with ctx.superuser() as conn:
        maintenance.retune(conn)
        maintenance.vacuum_analyze(conn)
