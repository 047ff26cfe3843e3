"""Runbook 003's own SQL for the items the checks serve, to run on the same data as theirs and
compare the pages each touches (EXPLAIN (ANALYZE, BUFFERS) as the superuser, warm).

LITERAL has one query per automated database item. Where the runbook gives SQL it is the
runbook's, exactly (its `SELECT *` included: an engineer pastes it as written); where it only
says what to look at, it is the query that prose leads to, in our words, and the item is in
FROM_PROSE. Items that are not database reads (RO-15 and RO-16 are HTTP probes) are not here.
"""

from __future__ import annotations

LITERAL: dict[str, str] = {
    # Sev1 diagnosis 1: "Ingestion Latency" on the ops dashboard, which reads these views.
    "RO-1": "select backlog_count, dead_letter_count, oldest_age_seconds "
            "from ops_queue_health_view",
    "RO-2": "select job_type, total, success, failed, success_rate from ops_job_success_view",
    # Sev1 diagnosis 2: the newest raw events ("no rows" means the provider or Vercel).
    "RO-4": "SELECT * FROM external_events_raw ORDER BY received_at DESC LIMIT 10;",
    # Sev1 diagnosis 4: rows exist but status = 'pending' means the worker is down.
    "RO-5": "select count(*) from external_events_raw where status = 'pending'",
    # Sev1 mitigation 2: after the 24-hour backfill, nothing of the day is left failed.
    "RO-7": "select count(*) from external_events_raw "
            "where received_at >= now() - interval '24 hours' "
            "and status in ('failed', 'normalization_failed')",
    # The ops dashboard's third number.
    "RO-8": "select critical_anomalies from ops_anomalies_view",
    # Sev2 diagnosis 1: duplicates per payment.
    "RO-9": "SELECT payment_id, count(*) FROM dunning_logs GROUP BY payment_id HAVING count(*) > 1;",
    # Sev2 diagnosis 2: "Idempotency Key Failure": which unique keys the table has.
    "RO-10": "select indexdef from pg_indexes where tablename = 'dunning_logs'",
    # Maintenance: the weekly VACUUM ANALYZE of both event tables, and what it leaves behind.
    "RO-13": "select relname, last_vacuum, last_autovacuum, last_analyze, last_autoanalyze "
             "from pg_stat_user_tables "
             "where relname in ('external_events_raw', 'external_events_normalized')",
    "RO-14": "select relname, n_live_tup, n_dead_tup from pg_stat_user_tables "
             "where relname in ('external_events_raw', 'external_events_normalized')",
}

# The runbook gives SQL for RO-4 and RO-9 only (and the VACUUM ANALYZE itself, a write).
FROM_PROSE = frozenset(LITERAL) - {"RO-4", "RO-9"}
