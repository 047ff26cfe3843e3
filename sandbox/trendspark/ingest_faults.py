"""The database parts of TrendSpark's faults on ingest, the scheduler and retention.

A fault that must look as if it had lasted a while rewrites the recent past (the last 65
minutes, past the checks' 60-minute window) and rebuilds Prometheus from it. Every heal puts the
rows back the way a healthy worker would have written them (the catch-up of a restart), restarts
the apps and rebuilds Prometheus: the system is as a fresh `up` leaves it.

What a fault takes away or marks goes into the schema sandbox_stash, which the checks cannot read.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from psycopg import sql

from sandbox import db
from sandbox.system import Context, Step
from sandbox.trendspark import history, incidents, prometheus, stash
from sandbox.trendspark.incidents import DEAD_SOURCE, FAILING_JOB, OUTAGE, PAUSED_JOB, STASH
from sandbox.trendspark.jobs import JOB_ERROR
from sandbox.trendspark.stash import exists

MARK = "sandbox_fault"  # in summaries and payloads of the rows a fault adds


def healed(undo: Callable[[db.Connection], None], *, metrics: bool = True) -> Step:
    """A heal: the database part; then, for a fault that moved the apps' counters or
    Prometheus's data (`metrics`), the apps restarted and Prometheus rebuilt from the database."""
    def step(ctx: Context) -> None:
        with ctx.superuser() as conn:
            undo(conn)
            stash.drop_if_empty(conn)
        if metrics:
            prometheus.restart(ctx)
    return step


def catch_up(conn: db.Connection, active: frozenset[str] = frozenset()) -> None:
    """What the worker would have written meanwhile (the catch-up of a restart)."""
    history.catch_up(conn, incidents.conditions(active), random.Random())


# worker_down, ingest_flatline, reddit_source_dead ------------------------------------------------

def worker_down(ctx: Context) -> None:
    """The worker has been gone for 65 minutes: what it would have written meanwhile is not there."""
    with ctx.superuser() as conn:
        since = history.utc_now(conn) - OUTAGE
        stash.remember(conn, incidents.WORKER_DOWN, since)
        history.forget_since(conn, since, runs=True)
    prometheus.wait_target(ctx, "worker", "down")


def worker_back(conn: db.Connection) -> None:
    stash.recall(conn, incidents.WORKER_DOWN)
    catch_up(conn)


def flatline(ctx: Context) -> None:
    """Both sources have answered nothing for 65 minutes: ingest_rank still succeeds, with no item."""
    with ctx.superuser() as conn:
        since = history.utc_now(conn) - OUTAGE
        stash.remember(conn, incidents.INGEST_FLATLINE, since)
        history.forget_since(conn, since)
        conn.execute("UPDATE public.job_runs SET detail = 'no_alerts: 0 items (x 0, reddit 0), 0 alerts'"
                     " WHERE job_id = 'ingest_rank' AND run_at >= %s", (since,))
    prometheus.restart(ctx)


def source_dead(ctx: Context) -> None:
    """Reddit has not answered for 65 minutes: its items are missing and every ingest_rank run
    waited for its timeouts."""
    rng = random.Random()
    with ctx.superuser() as conn:
        since = history.utc_now(conn) - OUTAGE
        stash.remember(conn, incidents.REDDIT_SOURCE_DEAD, since)
        history.forget_since(conn, since, sources=[DEAD_SOURCE])
        for (run_id,) in conn.execute("SELECT id FROM public.job_runs WHERE job_id = 'ingest_rank'"
                                      " AND run_at >= %s", (since,)).fetchall():
            conn.execute("UPDATE public.job_runs SET duration_ms = %s WHERE id = %s",
                         (round(rng.uniform(150, 165) * 1000, 1), run_id))
    prometheus.restart(ctx)


def rewrite_ingest(fault: str) -> Callable[[db.Connection], None]:
    """Heal of a source outage: the ingest_rank runs of the outage written again, healthy."""
    def undo(conn: db.Connection) -> None:
        since = stash.recall(conn, fault)
        if since is not None:
            history.forget_since(conn, since)
            conn.execute("DELETE FROM public.job_runs WHERE job_id = 'ingest_rank' AND run_at >= %s",
                         (since,))
        catch_up(conn)
    return undo


# job_failing, scheduler_paused ---------------------------------------------------------------------

FAILED = f"{STASH}.failed_runs"


def fail_last_runs(ctx: Context) -> None:
    """ingest_rank's last three runs ended in an error (its later runs do too, while active)."""
    with ctx.superuser() as conn:
        stash.remember(conn, incidents.JOB_FAILING, history.utc_now(conn))
        conn.execute(f"CREATE TABLE {FAILED} AS SELECT id, status, detail FROM public.job_runs"
                     " WHERE job_id = %s ORDER BY run_at DESC LIMIT 3", (FAILING_JOB,))
        conn.execute(f"UPDATE public.job_runs r SET status = 'error', detail = %s FROM {FAILED} f"
                     " WHERE r.id = f.id", (f"{JOB_ERROR} ({MARK})",))


def restore_runs(conn: db.Connection) -> None:
    since = stash.recall(conn, incidents.JOB_FAILING)
    if since is not None:  # runs that failed live while the fault was on
        conn.execute("DELETE FROM public.job_runs WHERE job_id = %s AND status = 'error'"
                     " AND run_at >= %s", (FAILING_JOB, since))
    if exists(conn, FAILED):
        conn.execute(f"UPDATE public.job_runs r SET status = f.status, detail = f.detail"
                     f" FROM {FAILED} f WHERE r.id = f.id")
        conn.execute(f"DROP TABLE {FAILED}")
    catch_up(conn)


def pause(ctx: Context) -> None:
    with ctx.superuser() as conn:
        conn.execute("UPDATE public.scheduler_configs SET enabled = false,"
                     " updated_at = timezone('utc', now()) WHERE job_id = %s", (PAUSED_JOB,))


def resume(conn: db.Connection) -> None:
    conn.execute("UPDATE public.scheduler_configs SET enabled = true,"
                 " updated_at = timezone('utc', now()) WHERE job_id = %s", (PAUSED_JOB,))
    catch_up(conn)


# stream_rules_empty -------------------------------------------------------------------------------

RULES = f"{STASH}.stream_rules"


def empty_rules(ctx: Context) -> None:
    with ctx.superuser() as conn:
        stash.schema(conn)
        conn.execute(f"CREATE TABLE {RULES} AS SELECT * FROM public.stream_rules")
        conn.execute("DELETE FROM public.stream_rules")


def restore_rules(conn: db.Connection) -> None:
    if exists(conn, RULES):
        conn.execute(f"INSERT INTO public.stream_rules SELECT * FROM {RULES}"
                     " ON CONFLICT (value) DO NOTHING")
        conn.execute(f"DROP TABLE {RULES}")


# retention_overdue, vacuum_overdue ----------------------------------------------------------------

OLD_ROWS = (
    ("INSERT INTO public.ingest_audit (cycle_id, source, platform, post_id, author, fetched_at,"
     " item_created_at, summary) SELECT 'archived-never', 'x', 'x', 'old-' || n, 'x_user_1',"
     " timezone('utc', now()) - interval '52 days' - n * interval '1 hour', NULL, %s"
     " FROM generate_series(1, 40) n"),
    ("INSERT INTO public.posts (platform, post_id, author, text, collected_at, likes, reposts,"
     " replies, trending, alerted) SELECT 'x', 'old-' || n, 'x_user_1', %s,"
     " timezone('utc', now()) - interval '52 days' - n * interval '1 hour', 0, 0, 0, false, false"
     " FROM generate_series(1, 40) n"),
    ("INSERT INTO public.notifications (created_at, channel, category, message)"
     " SELECT timezone('utc', now()) - interval '120 days' - n * interval '1 day', 'telegram',"
     " 'daily_ideas', %s FROM generate_series(1, 10) n"),
)


def keep_old_rows(ctx: Context) -> None:
    """The archive workflow has not run for weeks: rows well past both windows."""
    with ctx.superuser() as conn:
        for query in OLD_ROWS:
            conn.execute(query, (MARK,))


def archive_old_rows(conn: db.Connection) -> None:
    conn.execute("DELETE FROM public.ingest_audit WHERE summary = %s", (MARK,))
    conn.execute("DELETE FROM public.posts WHERE text = %s", (MARK,))
    conn.execute("DELETE FROM public.notifications WHERE message = %s", (MARK,))
    history.archive(conn)


VACUUMED = "ingest_audit"


def stop_vacuum(ctx: Context) -> None:
    """Autovacuum is off for ingest_audit and it has no vacuum on record: the weekly VACUUM
    ANALYZE has not happened."""
    with ctx.superuser() as conn:
        table = sql.Identifier("public", VACUUMED)
        conn.execute(sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(table))
        conn.execute("SELECT pg_stat_reset_single_table_counters(%s::regclass)",
                     (f"public.{VACUUMED}",))


def vacuum(conn: db.Connection) -> None:
    table = sql.Identifier("public", VACUUMED)
    conn.execute(sql.SQL("ALTER TABLE {} RESET (autovacuum_enabled)").format(table))
    conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))


# audit_schema_drift ----------------------------------------------------------------------------------

DRIFTED = ("ingest_audit", "fetched_at", "created_at")


def drift_audit(ctx: Context) -> None:
    """ingest_audit's fetched_at is still called created_at: create_all never alters a table that
    exists, so a model's renamed column stays as it was in an older database."""
    table, column, old = DRIFTED
    with ctx.superuser() as conn:
        conn.execute(sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
            sql.Identifier("public", table), sql.Identifier(column), sql.Identifier(old)))


def undrift_audit(conn: db.Connection) -> None:
    table, column, old = DRIFTED
    if conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'"
                    " AND table_name = %s AND column_name = %s", (table, old)).fetchone() == (1,):
        conn.execute(sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
            sql.Identifier("public", table), sql.Identifier(old), sql.Identifier(column)))
