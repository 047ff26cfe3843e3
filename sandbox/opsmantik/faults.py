"""OpsMantik's named faults, each a precise incident from runbook 000 or 002, and the checklist
items each must turn. Names and marks are in incidents.py (the app and the traffic read them
there), the database parts in ingest_faults.py and partition_faults.py, the probes in probes.py.
"""

from __future__ import annotations

from sandbox.kit import FAIL, UNKNOWN, WARN, nothing
from sandbox.opsmantik import ingest_faults as ingest
from sandbox.opsmantik import partition_faults as partitions
from sandbox.opsmantik import probes
from sandbox.opsmantik.incidents import (
    CORS_REJECT,
    DEFAULT_PARTITION_LEAK,
    DIAG_DISABLED,
    DLQ_COLUMN_RENAMED,
    HEALTH_DB_DOWN,
    INGEST_STALLED,
    MONTH_DRIFT,
    NEXT_PARTITION_MISSING,
    ORPHAN_EVENTS,
    TRIGGER_DISABLED,
    TRIGGER_DROPPED,
    TRIGGER_UPDATE_ONLY,
    VERIFY_FUNCTION_MISSING,
    WATCHTOWER_SECRET_ROTATED,
    WORKER_FAILING,
    WORKER_SIGNING_OFF,
)
from sandbox.system import Fault

SYSTEM = "opsmantik"

FAULTS: tuple[Fault, ...] = (
    Fault(INGEST_STALLED, SYSTEM,
          "Traffic stops and the last 65 minutes of sessions, events and signals are gone.",
          # IS-11 is a failure *ratio*: with no delivery at all it cannot be measured, which
          # does not pass but is no worker failure either, so the check warns.
          {"IS-2": FAIL, "IS-10": FAIL, "IS-12": FAIL, "IS-12b": FAIL, "IS-13": FAIL,
           "IS-11": WARN},
          ingest.stall, ingest.resume, probes.sessions_flow,
          concludes=("IS-D3",)),
    Fault(HEALTH_DB_DOWN, SYSTEM,
          "The app runs as if its Supabase env were missing: /api/health says db_ok false.",
          # Runbook 000 asks for `ok` and "ideally" `db_ok`: IS-1 grades it a warning;
          # IS-9 (the database answers the app) is the failure.
          {"IS-1": WARN, "IS-9": FAIL}, nothing, nothing, probes.health_db_ok,
          concludes=("IS-D6",)),
    Fault(CORS_REJECT, SYSTEM,
          "A bad deploy drops the production origins from the app's allowed list.",
          {"IS-3": FAIL, "IS-8": FAIL}, nothing, nothing, probes.production_origin_accepted,
          concludes=("IS-D5",)),
    Fault(WORKER_FAILING, SYSTEM,
          "The worker dead-letters: failed signals and sync_dlq rows pile up; sessions still flow.",
          {"IS-4": FAIL, "IS-11": FAIL}, ingest.fail_worker, ingest.mend_worker,
          probes.no_recent_dead_letters,
          concludes=("IS-D7",)),
    Fault(TRIGGER_DROPPED, SYSTEM,
          "The sessions drift guard (sessions_set_created_month) is dropped.",
          {"IS-7": FAIL, "PD-1": FAIL, "PD-1b": FAIL, "PD-2": FAIL, "PD-3": FAIL, "PD-4": FAIL},
          partitions.drop_trigger, partitions.reapply_triggers, probes.trigger_exists,
          concludes=("IS-D9", "PD-D1")),
    Fault(TRIGGER_DISABLED, SYSTEM,
          "The sessions drift guard is disabled; the verify RPC (blind to that) still says true.",
          {"IS-7": FAIL, "PD-3": FAIL}, partitions.disable_trigger, partitions.reapply_triggers,
          probes.trigger_enabled,
          concludes=("IS-D9", "PD-D1")),
    Fault(TRIGGER_UPDATE_ONLY, SYSTEM,
          "The sessions drift guard is recreated to fire on UPDATE only; it exists and is "
          "enabled, so IS-7 and the verify RPC see nothing wrong.",
          {"PD-3": FAIL}, partitions.update_only_trigger, partitions.reapply_triggers,
          probes.trigger_fires_on_insert,
          concludes=("PD-D1",)),
    Fault(NEXT_PARTITION_MISSING, SYSTEM,
          "Next month's sessions/events partitions are dropped and nothing recreates them.",
          {"PD-6": ("WARN", "FAIL")}, partitions.drop_next_month, partitions.restore_next_month,
          probes.next_month_partitions_exist,
          concludes=("PD-D3",)),
    Fault(MONTH_DRIFT, SYSTEM,
          "A few sessions of the last 30 minutes carry next month as created_month.",
          {"PD-7": FAIL}, partitions.drift, partitions.undrift, probes.no_month_drift,
          concludes=("PD-D2",)),
    Fault(WATCHTOWER_SECRET_ROTATED, SYSTEM,
          "The app's watchtower secret changes, so the configured one gets 401.",
          {"PD-1": FAIL}, nothing, nothing, probes.watchtower_secret_accepted,
          concludes=("PD-D7",)),
    Fault(DIAG_DISABLED, SYSTEM,
          "The build refuses /api/sync?diag=1 with 405 'Use POST', as newer builds do in production.",
          {"IS-5": WARN}, nothing, nothing, probes.diag_answers,
          concludes=("IS-D11",)),
    Fault(WORKER_SIGNING_OFF, SYSTEM,
          "The worker lost its QStash signing keys and accepts unsigned deliveries.",
          {"IS-6": FAIL}, nothing, nothing, probes.worker_refuses_unsigned,
          concludes=("IS-D8",)),
    Fault(DEFAULT_PARTITION_LEAK, SYSTEM,
          "A DEFAULT partition exists and recent sessions two months ahead land in it.",
          {"PD-6b": FAIL, "PD-7": FAIL}, partitions.leak_into_default, partitions.close_default,
          probes.no_default_partition,
          concludes=("PD-D4", "PD-D2")),
    Fault(ORPHAN_EVENTS, SYSTEM,
          "The events -> sessions foreign key is gone and recent events point at no session.",
          {"PD-8": FAIL}, partitions.orphan_events, partitions.adopt_orphans,
          probes.events_reference_sessions,
          concludes=("PD-D5",)),
    Fault(DLQ_COLUMN_RENAMED, SYSTEM,
          "sync_dlq.error was renamed error_message by a hand-run migration.",
          {"IS-0": UNKNOWN, "IS-4": UNKNOWN}, ingest.rename_dlq_error, ingest.restore_dlq_error,
          probes.dlq_error_column_exists,
          concludes=("IS-D10",)),
    Fault(VERIFY_FUNCTION_MISSING, SYSTEM,
          "verify_current_events_partition_exists() was dropped; the watchtower RPC now errors.",
          {"PD-0": UNKNOWN, "PD-1b": UNKNOWN, "PD-9": FAIL, "PD-1": FAIL},
          partitions.drop_verify_function, partitions.reapply_verify_function,
          probes.verify_function_exists,
          concludes=("PD-D6", "PD-D8")),
)
