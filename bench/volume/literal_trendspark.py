"""Runbook 004's database items as an engineer would query them from its text, to run on the
same data as the checks and compare the pages each touches (EXPLAIN (ANALYZE, BUFFERS) as the
superuser, warm).

The runbook gives no SQL at all: every query here is the one its prose leads to, in our words,
so every item is in FROM_PROSE. Timestamps are naive UTC, as the application writes them.
"""

from __future__ import annotations

LITERAL: dict[str, str] = {
    # Ingestion failures, "verify credentials ... rate limits": what each source fetched lately,
    # and the day's job errors that name a refusal or a rate limit.
    "TS-4": "select (select array_agg(source) from (select source from ingest_audit "
            "where fetched_at >= timezone('utc', now()) - interval '60 minutes' "
            "group by source) sources), "
            "(select count(*) from job_runs where status = 'error' "
            "and run_at >= timezone('utc', now()) - interval '24 hours' "
            "and detail ~ '(401|403|429)')",
    # Telegram alert problems, "inspect logs for telegram.sent": the newest stored send.
    "TS-10": "select max(created_at) from notifications where channel = 'telegram'",
    # Scheduler / job failures, "check job_runs table for failure details".
    "TS-13": "select job_id, run_at, detail from job_runs where status = 'error' "
             "order by run_at desc limit 20",
    # Database retention: the rows older than the windows, to export and delete.
    "TS-18": "select (select count(*) from posts "
             "where collected_at < timezone('utc', now()) - interval '45 days'), "
             "(select count(*) from ingest_audit "
             "where fetched_at < timezone('utc', now()) - interval '45 days'), "
             "(select count(*) from notifications "
             "where created_at < timezone('utc', now()) - interval '90 days')",
    # "Postgres VACUUM ANALYZE weekly": when it last ran on the busy tables.
    "TS-20": "select relname, last_vacuum, last_autovacuum, last_analyze, last_autoanalyze, "
             "n_dead_tup from pg_stat_user_tables "
             "where relname in ('posts', 'ingest_audit', 'notifications', 'job_runs')",
}

FROM_PROSE = frozenset(LITERAL)
