"""LaunchSin's named faults, each an incident runbook 001 is written for, and the checklist items
each must turn. Names and targets are in incidents.py (the app and the traffic read them there),
the database parts in event_faults.py and dlq_faults.py.
"""

from __future__ import annotations

from datetime import timedelta

from sandbox.launchsin import dlq_faults as dlq
from sandbox.launchsin import event_faults as events
from sandbox.launchsin import ingest, seed, tenants
from sandbox.launchsin.incidents import (
    API_HEALTH_FAILING,
    CONNECTION_DEAD,
    CONNECTION_INACTIVE,
    CONNECTION_LAG_CRITICAL,
    CONNECTION_LAG_WARN,
    CONNECTION_SILENT,
    DEACTIVATED,
    DEAD,
    DEATH,
    DLQ_RATE_CRITICAL,
    DLQ_RATE_WARN,
    DLQ_SCHEMA_DRIFT,
    DLQ_UNKNOWN_ERROR_CLASS,
    DLQ_WORKER_STOPPED,
    DUPLICATE_GUARD_DROPPED,
    FUTURE,
    FUTURE_EVENTS,
    HOTMART_SECRET_MISSING,
    INGEST_STOPPED,
    INSERT_FAILURES,
    LAGGING,
    MEMBER_REMOVED,
    PROJECT_INDEX_DROPPED,
    RLS_MEMBER_DENIED,
    SILENCE,
    SILENT,
    WITHOUT_HOTTOK,
)
from sandbox.system import Context, Fault

SYSTEM = "launchsin"


def _nothing(ctx: Context) -> None:
    """The fault lives in the daemon (app or traffic), which reads the active names itself."""


FAIL = ("FAIL",)
WARN = ("WARN",)
UNKNOWN = ("UNKNOWN",)
UNKNOWN_CLASS = dlq.Letters("PAYLOAD_TOO_LARGE", "request entity too large: body exceeded 1mb limit",
                            3, timedelta(hours=6), timedelta(hours=2))
INSERT_FAILURE = dlq.Letters(ingest.INSERT_FAILED,
                             'null value in column "event_time" of relation "canonical_events" '
                             "violates not-null constraint", 3, timedelta(minutes=45),
                             timedelta(minutes=5))
OVERDUE = dlq.Letters(ingest.UNEXPECTED_ERROR, seed.TRANSIENT_ERROR, 4, timedelta(minutes=15),
                      timedelta(minutes=15), overdue=True)

FAULTS: tuple[Fault, ...] = (
    Fault(CONNECTION_LAG_WARN, SYSTEM,
          f"{LAGGING.name} keeps delivering, its events dated 12 minutes late.",
          {"EI-3": WARN}, events.lag_apply(CONNECTION_LAG_WARN), events.lag_heal(CONNECTION_LAG_WARN)),
    Fault(CONNECTION_LAG_CRITICAL, SYSTEM,
          f"{LAGGING.name} keeps delivering, its events dated 35 minutes late.",
          {"EI-3": FAIL}, events.lag_apply(CONNECTION_LAG_CRITICAL),
          events.lag_heal(CONNECTION_LAG_CRITICAL)),
    Fault(CONNECTION_SILENT, SYSTEM,
          f"{SILENT.name} stops delivering; its last 20 minutes of events are gone.",
          # 20 minutes without events: past the 15-minute silence alarm, between the lag
          # warning (10) and the critical lag (30).
          {"EI-3": WARN, "EI-4": FAIL}, events.forget(SILENT, SILENCE), events.resume_after(SILENT)),
    Fault(CONNECTION_DEAD, SYSTEM,
          f"{DEAD.name} stopped delivering a day ago: nothing from it in 24 hours.",
          {"EI-2": FAIL, "EI-3": FAIL, "EI-4": FAIL}, events.forget(DEAD, DEATH), events.resume_after(DEAD)),
    Fault(INGEST_STOPPED, SYSTEM,
          "Every source stops; the last 65 minutes of events and dead letters are gone.",
          # With no delivery at all the DLQ rate cannot be measured: EI-7 warns.
          {"EI-1": FAIL, "EI-3": FAIL, "EI-4": FAIL, "EI-7": WARN},
          events.stop_all, events.resume_after(*tenants.ACTIVE)),
    Fault(DLQ_RATE_WARN, SYSTEM,
          "About 7 % of the last hour's deliveries end in the DLQ (retried with success).",
          {"EI-7": WARN}, dlq.raise_dlq_share(DLQ_RATE_WARN), dlq.forget(DLQ_RATE_WARN)),
    Fault(DLQ_RATE_CRITICAL, SYSTEM,
          "About 15 % of the last hour's deliveries end in the DLQ (retried with success).",
          {"EI-7": FAIL}, dlq.raise_dlq_share(DLQ_RATE_CRITICAL), dlq.forget(DLQ_RATE_CRITICAL)),
    Fault(DLQ_WORKER_STOPPED, SYSTEM,
          "The DLQ worker stops: pending letters whose retry time passed 10 minutes ago.",
          {"EI-15": FAIL}, dlq.add(DLQ_WORKER_STOPPED, OVERDUE), dlq.resume_dlq_worker),
    Fault(DUPLICATE_GUARD_DROPPED, SYSTEM,
          "unique_event_per_source is dropped (a re-ingest left half done) and a key is stored twice.",
          {"EI-5": FAIL, "EI-17b": FAIL}, events.drop_guard, events.restore_guard),
    Fault(FUTURE_EVENTS, SYSTEM,
          f"{FUTURE.name} delivers three events dated an hour ahead.",
          {"EI-16": FAIL}, events.future, events.forget_future),
    Fault(CONNECTION_INACTIVE, SYSTEM,
          f"{DEACTIVATED.name}, an expected connection, is switched off (is_active false).",
          {"EI-9": FAIL}, events.deactivate, events.reactivate),
    Fault(RLS_MEMBER_DENIED, SYSTEM,
          "The canonical_events SELECT policy is replaced by one that denies everyone.",
          {"EI-13": FAIL}, events.deny_members, events.restore_policies),
    Fault(MEMBER_REMOVED, SYSTEM,
          "The on-call check user's membership of its organisation is deleted.",
          {"EI-12": FAIL, "EI-13": FAIL}, events.remove_member, events.restore_member),
    Fault(DLQ_SCHEMA_DRIFT, SYSTEM,
          "dlq_events loses the out-of-band columns (error_class, attempt_count, next_retry_at, "
          "last_error_message), as on a database built from the migrations alone.",
          # The checks that read them are not evaluated, and the contract item says why.
          {"EI-0": UNKNOWN, "EI-8": UNKNOWN, "EI-14": UNKNOWN, "EI-15": UNKNOWN},
          dlq.drift_dlq, dlq.undrift_dlq),
    Fault(DLQ_UNKNOWN_ERROR_CLASS, SYSTEM,
          "A few dead letters of a class the code does not write (PAYLOAD_TOO_LARGE), hours ago.",
          {"EI-8": WARN}, dlq.add(DLQ_UNKNOWN_ERROR_CLASS, UNKNOWN_CLASS),
          dlq.forget(DLQ_UNKNOWN_ERROR_CLASS)),
    Fault(INSERT_FAILURES, SYSTEM,
          "A few inserts into canonical_events failed in the last hour (INSERT_FAILED letters).",
          {"EI-14": FAIL}, dlq.add(INSERT_FAILURES, INSERT_FAILURE),
          dlq.forget(INSERT_FAILURES)),
    Fault(HOTMART_SECRET_MISSING, SYSTEM,
          f"{WITHOUT_HOTTOK.name} loses its hottok (hotmart_secret) from config_json.",
          {"EI-11": FAIL}, events.remove_hottok, events.restore_hottok),
    Fault(PROJECT_INDEX_DROPPED, SYSTEM,
          "idx_canonical_events_project_time is dropped.",
          {"EI-18": FAIL}, events.drop_project_index, events.reindex),
    Fault(API_HEALTH_FAILING, SYSTEM,
          "The API answers /api/health with 503.",
          {"EI-10": FAIL}, _nothing, _nothing),
)
