"""TrendSpark's named faults, each an incident of runbook 004, and the checklist items each must
turn. Names are in incidents.py (the apps, stubs and worker read them there), the steps in
ingest_faults.py and platform_faults.py, the probes in probes.py.

The heal of every fault that moved the apps' counters or Prometheus's data restarts the apps and
rebuilds Prometheus from the database (ingest_faults.healed): counters and the 5-minute and
60-minute windows start clean, as after a fresh `up`.
"""

from __future__ import annotations

from sandbox.kit import FAIL, UNKNOWN, nothing
from sandbox.system import Fault
from sandbox.trendspark import ingest_faults as ingest
from sandbox.trendspark import platform_faults as platform
from sandbox.trendspark import probes
from sandbox.trendspark.incidents import (
    ALERT_DELIVERY_ERRORS,
    API_5XX_SPIKE,
    AUDIT_SCHEMA_DRIFT,
    GRAFANA_UNPROVISIONED,
    INGEST_FLATLINE,
    JOB_FAILING,
    KICKED,
    METRICS_UNSCRAPED,
    PROMETHEUS_DOWN,
    REDDIT_SOURCE_DEAD,
    RETENTION_OVERDUE,
    SCHEDULER_PAUSED,
    STREAM_RULES_EMPTY,
    TELEGRAM_MISSING,
    TELEGRAM_UNCONFIGURED,
    VACUUM_OVERDUE,
    WORKER_DOWN,
)

SYSTEM = "trendspark"
FAIL_OR_UNKNOWN = ("FAIL", "UNKNOWN")
# What Prometheus answers for: not evaluated while it cannot (down, or the apps unscraped).
PROMQL_ITEMS = ("TS-2", "TS-10b", "TS-14", "TS-14b", "TS-16")


def daemon_only(conn: object) -> None:
    """Nothing in the database: the heal of a fault the daemon alone acts on is the restart of
    the apps and the rebuild of Prometheus (ingest_faults.healed)."""


FAULTS: tuple[Fault, ...] = (
    Fault(WORKER_DOWN, SYSTEM,
          "The worker has been down for 65 minutes (its port answers 503, nothing of the last "
          "65 minutes was written).",
          {"TS-1": FAIL, "TS-2": UNKNOWN, "TS-4": FAIL, "TS-5": FAIL, "TS-5b": FAIL, "TS-6": FAIL,
           "TS-10b": UNKNOWN, "TS-12": FAIL, "TS-13b": FAIL, "TS-14": UNKNOWN, "TS-14b": UNKNOWN,
           "TS-15": FAIL, "TS-16": FAIL_OR_UNKNOWN, "TS-21b": FAIL, "TS-21c": FAIL},
          ingest.worker_down, ingest.healed(ingest.worker_back), probes.worker_answers,
          concludes=("TS-D1",)),
    Fault(INGEST_FLATLINE, SYSTEM,
          "For 65 minutes every source has answered with nothing: ingest_rank succeeds with 0 "
          "items, no ingest_audit row, trendspark_ingest_items_total flat.",
          {"TS-2": FAIL, "TS-4": FAIL, "TS-6": FAIL},
          ingest.flatline, ingest.healed(ingest.rewrite_ingest(INGEST_FLATLINE)),
          probes.every_source_ingests, concludes=("TS-D2",)),
    Fault(REDDIT_SOURCE_DEAD, SYSTEM,
          "For 65 minutes Reddit has not answered: no reddit items, and every ingest_rank run "
          "waits about 156 s for its timeouts.",
          {"TS-2": FAIL, "TS-4": FAIL, "TS-6": FAIL, "TS-14b": FAIL},
          ingest.source_dead, ingest.healed(ingest.rewrite_ingest(REDDIT_SOURCE_DEAD)),
          probes.dead_source_ingests, concludes=("TS-D2", "TS-D3")),
    Fault(TELEGRAM_UNCONFIGURED, SYSTEM,
          f"The apps run without TELEGRAM_BOT_TOKEN: /health says \"{TELEGRAM_MISSING}\" and "
          "alerts are skipped.",
          {"TS-9": FAIL}, nothing, ingest.healed(daemon_only, metrics=False),
          probes.telegram_configured,
          concludes=("TS-D5",)),
    Fault(JOB_FAILING, SYSTEM,
          "ingest_rank's last three runs ended in an error (and it keeps failing); its metrics "
          "still count them under their usual outcome.",
          {"TS-13": FAIL}, ingest.fail_last_runs, ingest.healed(ingest.restore_runs, metrics=False),
          probes.job_not_failing, concludes=("TS-D7",)),
    Fault(SCHEDULER_PAUSED, SYSTEM,
          "ingest_rank is paused: /scheduler/jobs shows it paused, with no next run.",
          {"TS-5": FAIL, "TS-12": FAIL}, ingest.pause, ingest.healed(ingest.resume, metrics=False),
          probes.job_enabled, concludes=("TS-D8",)),
    Fault(API_5XX_SPIKE, SYSTEM,
          "The backend answers /posts/top with 500: five and more 5xx in 5 minutes, and the "
          "app's api_alert goes out.",
          {"TS-16": FAIL}, platform.spike, ingest.healed(platform.forget_spike),
          probes.few_server_errors, concludes=("TS-D9",)),
    Fault(STREAM_RULES_EMPTY, SYSTEM,
          "The X stream is enabled but has no rules (the stream_rules table is empty).",
          {"TS-7": FAIL}, ingest.empty_rules,
          ingest.healed(ingest.restore_rules, metrics=False),
          probes.stream_rules_listed, concludes=("TS-D4",)),
    Fault(ALERT_DELIVERY_ERRORS, SYSTEM,
          f"Telegram refuses every message since yesterday (\"{KICKED}\"); getMe still answers.",
          {"TS-10": FAIL, "TS-10b": FAIL, "TS-11": FAIL}, platform.kick_bot,
          ingest.healed(platform.readmit_bot), probes.telegram_delivers, concludes=("TS-D6",)),
    Fault(RETENTION_OVERDUE, SYSTEM,
          "The archive workflow has not run: ingest_audit and posts rows 52 days old, "
          "notifications 120 days old.",
          {"TS-18": FAIL}, ingest.keep_old_rows,
          ingest.healed(ingest.archive_old_rows, metrics=False),
          probes.within_retention, concludes=("TS-D10",)),
    Fault(METRICS_UNSCRAPED, SYSTEM,
          "Prometheus runs the repository's own setup: prometheus.yml without credentials (both "
          "targets down, 401) and no retention flag (15 days).",
          {"TS-21b": FAIL, "TS-21c": FAIL, "TS-24": FAIL, **dict.fromkeys(PROMQL_ITEMS, UNKNOWN)},
          platform.unscraped, ingest.healed(daemon_only), probes.targets_up,
          concludes=("TS-D13", "TS-D14")),
    Fault(PROMETHEUS_DOWN, SYSTEM,
          "Prometheus does not serve: its port answers 503 to everything.",
          {"TS-21": FAIL, "TS-21b": UNKNOWN, "TS-21c": UNKNOWN, "TS-24": UNKNOWN,
           **dict.fromkeys(PROMQL_ITEMS, UNKNOWN)},
          platform.stop_serving, ingest.healed(platform.serve_again), probes.prometheus_ready,
          concludes=("TS-D12",)),
    Fault(VACUUM_OVERDUE, SYSTEM,
          "ingest_audit has autovacuum off and no vacuum on record.",
          {"TS-20": FAIL}, ingest.stop_vacuum, ingest.healed(ingest.vacuum, metrics=False),
          probes.vacuumed,
          concludes=("TS-D11",)),
    Fault(GRAFANA_UNPROVISIONED, SYSTEM,
          "Grafana (the stub) started without its provisioning: no dashboards, no alert rules.",
          {"TS-22": FAIL, "TS-23": FAIL}, nothing, ingest.healed(daemon_only, metrics=False),
          probes.grafana_provisioned, concludes=("TS-D15", "TS-D16")),
    Fault(AUDIT_SCHEMA_DRIFT, SYSTEM,
          "ingest_audit.fetched_at is still named created_at (create_all never alters an existing "
          "table): the backend's /ingest/audit answers 500.",
          # The checks that read the column are not evaluated, and the contract item says why.
          {"TS-0": UNKNOWN, "TS-4": UNKNOWN, "TS-18": UNKNOWN, "TS-6": FAIL},
          ingest.drift_audit, ingest.healed(ingest.undrift_audit, metrics=False),
          probes.audit_column_named, concludes=("TS-D17",)),
)
