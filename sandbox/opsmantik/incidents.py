"""OpsMantik's incidents: the faults' names, the marks their rows carry, and what the daemon
(app and traffic) and `up` read of them. The database part of each fault is in ingest_faults.py
and partition_faults.py, the probes in probes.py, the table of faults in faults.py.
"""

from __future__ import annotations

from datetime import timedelta

INGEST_STALLED = "ingest_stalled"
HEALTH_DB_DOWN = "health_db_down"
CORS_REJECT = "cors_reject"
WORKER_FAILING = "worker_failing"
TRIGGER_DROPPED = "trigger_dropped"
TRIGGER_DISABLED = "trigger_disabled"
TRIGGER_UPDATE_ONLY = "trigger_update_only"
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

# Rows a fault adds carry a mark, so that heal removes exactly those: the dead letters' payload
# names the fault, the sessions and events a page or URL no visitor has.
FAILURE_MARKER = WORKER_FAILING
DRIFT_PAGE = "/sandbox-fault/month-drift"
LEAK_PAGE = "/sandbox-fault/default-leak"
ORPHAN_URL = "/sandbox-fault/orphan"
