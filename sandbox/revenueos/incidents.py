"""RevenueOS's incidents: the faults' names, what each picks on, and what the daemon reads of
them (which providers stop delivering, whether the workers run, how far the queue lags). The
database part of each fault is in ingest_faults.py, job_faults.py, dunning_faults.py and
maintenance_faults.py, the table of faults in faults.py.
"""

from __future__ import annotations

from datetime import timedelta

from sandbox.revenueos import tenants
from sandbox.revenueos.tenants import Provider

PROVIDER_SILENT = "provider_silent"
WEBHOOKS_DOWN = "webhooks_down"
WORKER_DOWN = "sync_worker_down"  # TrendSpark has a worker_down: fault names are unique
WORKER_SLOW = "worker_slow"
JOB_FAILURES_WARN = "job_failures_warn"
JOB_FAILURES_CRITICAL = "job_failures_critical"
NORMALIZATION_FAILURES = "normalization_failures"
CRITICAL_ANOMALY = "critical_anomaly"
DUNNING_DOUBLE_SEND = "dunning_double_send"
DUNNING_KEY_MISSING = "dunning_key_missing"
DUNNING_TABLE_MISSING = "dunning_table_missing"
VACUUM_OVERDUE = "events_vacuum_overdue"  # TrendSpark has a vacuum_overdue
DEAD_TUPLE_BLOAT = "dead_tuple_bloat"
INTERNAL_SECRET_UNSET = "internal_secret_unset"
SECRET_ROTATION_NOT_APPLIED = "secret_rotation_not_applied"
# raw_columns_data_truth, the other column set of external_events_raw, turns no item: it is a
# variant (variants.py), not a fault.

SILENT = tenants.STRIPE  # the busiest provider
SILENCE = timedelta(hours=2)
# Longer than the checks' 60-minute default window, so no provider has a recent row.
STOP_WINDOW = timedelta(minutes=65)
# The workers stopped this long ago: past the 10-minute stuck rule and the 300-second lag.
WORKER_STOPPED = timedelta(minutes=12)
# How far behind a slow queue worker runs: between the 60-second warning and the 300-second
# critical lag.
SLOW_LAG = timedelta(seconds=120)
JOB_SUCCESS = {JOB_FAILURES_WARN: 0.97, JOB_FAILURES_CRITICAL: 0.90}  # weighted, over 24 hours
STASH = "sandbox_stash"  # a schema the checks cannot see, for tables a fault takes away
DUNNING_TABLES = ("dunning_logs", "dunning_rules", "dunning_templates")
# When traffic resumes at heal, a delivery may land before the heal fills the gap: the gap ends
# at the newest delivery older than this.
RESUME_MARGIN = timedelta(minutes=1)


def quiet(active: frozenset[str]) -> frozenset[Provider]:
    """The providers whose webhooks do not arrive under these faults."""
    if WEBHOOKS_DOWN in active:
        return frozenset(tenants.PROVIDERS)
    return frozenset({SILENT}) if PROVIDER_SILENT in active else frozenset()


def workers_stopped(active: frozenset[str]) -> bool:
    return WORKER_DOWN in active


def job_lag(active: frozenset[str]) -> timedelta:
    """How old a job must be before the queue worker takes it."""
    return SLOW_LAG if WORKER_SLOW in active else timedelta(0)


def maintenance_paused(active: frozenset[str]) -> bool:
    """The weekly VACUUM ANALYZE stays off while a maintenance fault holds."""
    return bool(active & {VACUUM_OVERDUE, DEAD_TUPLE_BLOAT})
