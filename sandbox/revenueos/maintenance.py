"""The weekly VACUUM ANALYZE the runbook expects to be automated (Supabase runs such jobs as the
database owner), on the two event tables; autovacuum does the rest between weeks."""

from __future__ import annotations

from datetime import timedelta

from psycopg import sql

from sandbox import db, kit

TABLES = ("external_events_raw", "external_events_normalized")
# The job runs when a table's last vacuum or analyze is older than this: inside the runbook's
# weekly rhythm, so a sandbox that runs for weeks stays healthy.
DUE_AFTER = timedelta(days=6)
DUE = """
    SELECT count(*) > 0 FROM pg_stat_user_tables
    WHERE schemaname = 'public' AND relname = ANY(%s)
      AND (coalesce(greatest(last_vacuum, last_autovacuum), '-infinity') < now() - %s
           OR coalesce(greatest(last_analyze, last_autoanalyze), '-infinity') < now() - %s)
"""


def vacuum_analyze(conn: db.Connection) -> None:
    """VACUUM ANALYZE both tables (outside a transaction, as VACUUM must run)."""
    for table in TABLES:
        conn.execute(sql.SQL("VACUUM ANALYZE public.{}").format(sql.Identifier(table)))
    # The statistics reach pg_stat_user_tables at the session's next report; force it now.
    conn.execute("SELECT pg_stat_force_next_flush()")


def weekly(conn: db.Connection) -> bool:
    """Run the job if it is due; True if it ran."""
    row = conn.execute(DUE, (list(TABLES), DUE_AFTER, DUE_AFTER)).fetchone()
    if not (row and row[0]):
        return False
    vacuum_analyze(conn)
    return True


def retune(conn: db.Connection) -> None:
    """Autovacuum back on the event tables, with their settings (tuning.sql)."""
    kit.run_script(conn, __package__, "tuning.sql")
