"""RevenueOS's named faults, each an incident runbook 003 is written for, and the checklist items
each must turn. Names and targets are in incidents.py (the app and the traffic read them there),
the database parts in ingest_faults.py, job_faults.py, dunning_faults.py and
maintenance_faults.py, the probes in probes.py.
"""

from __future__ import annotations

from sandbox.kit import FAIL, UNKNOWN, WARN, nothing
from sandbox.revenueos import dunning_faults as dunning
from sandbox.revenueos import ingest_faults as ingest
from sandbox.revenueos import job_faults as jobs
from sandbox.revenueos import maintenance_faults as maintenance
from sandbox.revenueos import probes
from sandbox.revenueos.incidents import (
    CRITICAL_ANOMALY,
    DEAD_TUPLE_BLOAT,
    DUNNING_DOUBLE_SEND,
    DUNNING_KEY_MISSING,
    DUNNING_TABLE_MISSING,
    INTERNAL_SECRET_UNSET,
    JOB_FAILURES_CRITICAL,
    JOB_FAILURES_WARN,
    NORMALIZATION_FAILURES,
    PROVIDER_SILENT,
    SECRET_ROTATION_NOT_APPLIED,
    SILENT,
    VACUUM_OVERDUE,
    WEBHOOKS_DOWN,
    WORKER_DOWN,
    WORKER_SLOW,
)
from sandbox.system import Fault

SYSTEM = "revenueos"

FAULTS: tuple[Fault, ...] = (
    Fault(PROVIDER_SILENT, SYSTEM,
          f"{SILENT.name} stops sending webhooks; its last 2 hours of deliveries are gone.",
          {"RO-4": FAIL}, ingest.silence_one, ingest.resume_one, probes.provider_delivers,
          concludes=("RO-D1",)),
    Fault(WEBHOOKS_DOWN, SYSTEM,
          "No webhook reaches the app (the deployment is down); no raw event for 65 minutes.",
          {"RO-4": FAIL}, ingest.stop_all, ingest.resume_all, probes.webhooks_arrive,
          concludes=("RO-D1",)),
    Fault(WORKER_DOWN, SYSTEM,
          "The sync engine and the queue worker stopped 12 minutes ago: raw events pile up "
          "pending, the scheduler's jobs stay queued.",
          {"RO-1": FAIL, "RO-5": FAIL}, ingest.stop_workers, ingest.drain, probes.workers_keep_up,
          concludes=("RO-D2",)),
    Fault(WORKER_SLOW, SYSTEM,
          "The queue worker runs two minutes behind: the oldest queued job is about 120 s old.",
          {"RO-1": WARN}, ingest.slow_worker, ingest.drain, probes.queue_is_prompt,
          concludes=("RO-D3",)),
    Fault(JOB_FAILURES_WARN, SYSTEM,
          "Sync jobs gave up over the day: about 97 % of the last 24 hours' jobs succeeded.",
          {"RO-2": WARN}, jobs.fail_jobs(JOB_FAILURES_WARN), jobs.forget_jobs(JOB_FAILURES_WARN),
          probes.jobs_succeed,
          concludes=("RO-D4",)),
    Fault(JOB_FAILURES_CRITICAL, SYSTEM,
          "Sync jobs gave up over the day: about 90 % of the last 24 hours' jobs succeeded.",
          {"RO-2": FAIL}, jobs.fail_jobs(JOB_FAILURES_CRITICAL),
          jobs.forget_jobs(JOB_FAILURES_CRITICAL), probes.jobs_succeed,
          concludes=("RO-D4",)),
    Fault(NORMALIZATION_FAILURES, SYSTEM,
          "Four raw events of the last hours failed (normalization_failed, failed) and were "
          "never normalized.",
          {"RO-7": FAIL}, ingest.fail_normalization, ingest.forget_marked(NORMALIZATION_FAILURES),
          probes.failures_normalized,
          concludes=("RO-D5",)),
    Fault(CRITICAL_ANOMALY, SYSTEM,
          "The consistency engine opened a critical anomaly (a payment without its order).",
          {"RO-8": FAIL}, jobs.open_critical, jobs.forget_anomaly, probes.no_critical_anomaly,
          concludes=("RO-D6",)),
    Fault(DUNNING_DOUBLE_SEND, SYSTEM,
          "A manual run sends a payment's WhatsApp again 20 seconds after the cron did.",
          {"RO-9": FAIL}, dunning.send_twice, dunning.forget_double_send, probes.sent_once,
          concludes=("RO-D7",)),
    Fault(DUNNING_KEY_MISSING, SYSTEM,
          "dunning_logs loses its idempotency key (payment, rule, channel): the state of the "
          "real repository, whose migration creates none.",
          {"RO-10": FAIL}, dunning.drop_key, dunning.restore_key, probes.dunning_key_exists,
          concludes=("RO-D8",)),
    Fault(DUNNING_TABLE_MISSING, SYSTEM,
          "The dunning tables do not exist, as on a replay of the real migrations (the dunning "
          "migration's policies join a table that does not exist, so it fails whole).",
          # The checks that read them are not evaluated, and the contract item says why.
          {"RO-0": UNKNOWN, "RO-9": UNKNOWN, "RO-10": UNKNOWN},
          dunning.take_tables, dunning.give_tables_back, probes.dunning_logs_exist,
          concludes=("RO-D13",)),
    Fault(VACUUM_OVERDUE, SYSTEM,
          "The event tables were never vacuumed or analyzed since a statistics reset, and "
          "autovacuum is off on them.",
          {"RO-13": FAIL}, maintenance.never_vacuumed, maintenance.vacuum,
          probes.tables_maintained,
          concludes=("RO-D9",)),
    Fault(DEAD_TUPLE_BLOAT, SYSTEM,
          "A backfill rewrote five days of raw events with autovacuum off: about a third of "
          "external_events_raw is dead tuples.",
          {"RO-14": FAIL}, maintenance.bloat, maintenance.vacuum, probes.dead_tuples_low,
          concludes=("RO-D10",)),
    Fault(INTERNAL_SECRET_UNSET, SYSTEM,
          "INTERNAL_API_SECRET is unset on the deployment: every cron route answers 500 "
          "\"Configuration error\" to a bearer token.",
          {"RO-15": FAIL, "RO-16": FAIL}, nothing, nothing, probes.secret_configured,
          concludes=("RO-D11",)),
    Fault(SECRET_ROTATION_NOT_APPLIED, SYSTEM,
          "The rotated INTERNAL_API_SECRET never reached the deployment: the previous secret "
          "still opens the cron routes.",
          {"RO-16": FAIL}, nothing, nothing, probes.old_secret_refused,
          concludes=("RO-D12",)),
)
