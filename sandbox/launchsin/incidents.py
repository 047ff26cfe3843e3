"""LaunchSin's incidents: the faults' names, what each picks on, and what the daemon reads of
them (which connections stop, which lag, how many extra dead letters). The database part of each
fault is in event_faults.py and dlq_faults.py, the table of faults in faults.py.
"""

from __future__ import annotations

from datetime import timedelta

from sandbox.launchsin import seed, tenants
from sandbox.launchsin.tenants import Connection

CONNECTION_LAG_WARN = "connection_lag_warn"
CONNECTION_LAG_CRITICAL = "connection_lag_critical"
CONNECTION_SILENT = "connection_silent"
CONNECTION_DEAD = "connection_dead"
INGEST_STOPPED = "ingest_stopped"
DLQ_RATE_WARN = "dlq_rate_warn"
DLQ_RATE_CRITICAL = "dlq_rate_critical"
DLQ_WORKER_STOPPED = "dlq_worker_stopped"
DUPLICATE_GUARD_DROPPED = "duplicate_guard_dropped"
FUTURE_EVENTS = "future_events"
CONNECTION_INACTIVE = "connection_inactive"
RLS_MEMBER_DENIED = "rls_member_denied"
MEMBER_REMOVED = "member_removed"
DLQ_SCHEMA_DRIFT = "dlq_schema_drift"
DLQ_UNKNOWN_ERROR_CLASS = "dlq_unknown_error_class"
INSERT_FAILURES = "insert_failures"
HOTMART_SECRET_MISSING = "hotmart_secret_missing"
PROJECT_INDEX_DROPPED = "project_index_dropped"
API_HEALTH_FAILING = "api_health_failing"

# The connections the faults pick on; none is in the check project, so its counts stay put.
LAGGING = tenants.connection("delta-bootcamp-hotmart")  # the busiest
SILENT = tenants.connection("delta-bootcamp-meta")
DEAD = tenants.connection("delta-mentoring-hotmart")
DEACTIVATED = tenants.connection("vertice-immersion-google")
WITHOUT_HOTTOK = tenants.connection("aurora-evergreen-hotmart")
DUPLICATED = tenants.connection("vertice-immersion-meta")
FUTURE = tenants.connection("nomade-photo-hotmart")

LAGS = {CONNECTION_LAG_WARN: timedelta(minutes=12), CONNECTION_LAG_CRITICAL: timedelta(minutes=35)}
SILENCE = timedelta(minutes=20)
DEATH = timedelta(hours=24)
# Longer than the checks' 60-minute windows, so none of them sees a delivery.
STOP_WINDOW = timedelta(minutes=65)
DLQ_TARGETS = {DLQ_RATE_WARN: 0.07, DLQ_RATE_CRITICAL: 0.15}  # DLQ share of the last hour
DRIFTED_COLUMNS = ("error_class", "attempt_count", "next_retry_at", "last_error_message")
STASH = "sandbox_stash"  # a schema the checks cannot see, for the dropped columns' values
# When traffic resumes at heal, a delivery may land before the heal fills the gap: the gap ends
# at the newest delivery older than this.
RESUME_MARGIN = timedelta(minutes=1)


def stopped(active: frozenset[str]) -> frozenset[Connection]:
    """The active connections that deliver nothing under these faults."""
    if INGEST_STOPPED in active:
        return frozenset(tenants.ACTIVE)
    quiet = {CONNECTION_SILENT: SILENT, CONNECTION_DEAD: DEAD, CONNECTION_INACTIVE: DEACTIVATED}
    return frozenset(c for name, c in quiet.items() if name in active)


def lag(active: frozenset[str]) -> tuple[timedelta, str] | None:
    """How far LAGGING's event times are held back, and the marker of its events."""
    return next(((LAGS[name], name) for name in LAGS if name in active), None)


def extra_dead_letters(active: frozenset[str]) -> tuple[float, str] | None:
    """The chance that a delivery adds a fault dead letter, keeping the hour's share at target."""
    for name, target in DLQ_TARGETS.items():
        if name in active:
            # A share s of deliveries fails anyway; adding q per delivery gives (s + q) / (1 + q).
            return (target - seed.DLQ_SHARE) / (1 - target), name
    return None
