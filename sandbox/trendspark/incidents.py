"""TrendSpark's incidents: the faults' names, and what the daemon (apps, worker, traffic) reads of
them. The database and Prometheus parts of each fault are in ingest_faults.py and
platform_faults.py, the table in faults.py.
"""

from __future__ import annotations

from datetime import timedelta

from sandbox.trendspark.jobs import SOURCES, Conditions

WORKER_DOWN = "trendspark_worker_down"  # worker_down is RevenueOS's
INGEST_FLATLINE = "ingest_flatline"
REDDIT_SOURCE_DEAD = "reddit_source_dead"
TELEGRAM_UNCONFIGURED = "telegram_unconfigured"
JOB_FAILING = "job_failing"
SCHEDULER_PAUSED = "scheduler_paused"
API_5XX_SPIKE = "api_5xx_spike"
STREAM_RULES_EMPTY = "stream_rules_empty"
ALERT_DELIVERY_ERRORS = "alert_delivery_errors"
RETENTION_OVERDUE = "retention_overdue"
METRICS_UNSCRAPED = "metrics_unscraped"
PROMETHEUS_DOWN = "prometheus_down"
VACUUM_OVERDUE = "trendspark_vacuum_overdue"  # vacuum_overdue is RevenueOS's
GRAFANA_UNPROVISIONED = "grafana_unprovisioned"
AUDIT_SCHEMA_DRIFT = "audit_schema_drift"

DEAD_SOURCE = "reddit"
FAILING_JOB = "ingest_rank"
PAUSED_JOB = "ingest_rank"
# Longer than the checks' 60-minute ingest window: an outage they cannot miss.
OUTAGE = timedelta(minutes=65)
# A day without a delivered Telegram message: past the checks' 24-hour window.
SILENT_DAY = timedelta(hours=25)
TELEGRAM_MISSING = "TELEGRAM_BOT_TOKEN or TELEGRAM_CHAT_ID missing"
KICKED = "Forbidden: bot was kicked from the group chat"
STASH = "sandbox_stash"  # a schema the checks cannot read, for rows a fault takes away


def conditions(active: frozenset[str]) -> Conditions:
    """How the outside world treats the worker's runs under these faults."""
    sources = tuple(s for s in SOURCES if not (REDDIT_SOURCE_DEAD in active and s == DEAD_SOURCE))
    if TELEGRAM_UNCONFIGURED in active:
        delivery = "skipped"
    elif ALERT_DELIVERY_ERRORS in active:
        delivery = "error"
    else:
        delivery = "sent"
    return Conditions(
        sources=sources,
        items=INGEST_FLATLINE not in active,
        slow_source=REDDIT_SOURCE_DEAD in active,
        failing=frozenset({FAILING_JOB}) if JOB_FAILING in active else frozenset(),
        delivery=delivery,
    )
