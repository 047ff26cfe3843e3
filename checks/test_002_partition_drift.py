"""Runbook 002 (OpsMantik): partition drift on sessions and events.

Serves the incident where rows land in the wrong month partition or fail to insert because a
drift-guard trigger is missing or disabled, or next month's partitions were never created.
Checklist: runbooks/002-partition-drift.md.
"""

from __future__ import annotations

import pytest
from psycopg import sql

from checks.opsmantik import VERIFY_TRIGGERS, trigger_problems
from fixtures.contract import assert_contract
from fixtures.errors import SchemaMismatch
from fixtures.evidence import Evidence
from fixtures.http import Api
from fixtures.postgres import Connections, ReadOnlyDB
from fixtures.settings import SystemSettings
from fixtures.verdicts import CheckFailed, none_found, something

pytestmark = [pytest.mark.partition_drift, pytest.mark.system("opsmantik")]

PARTITION_DRIFT = "/api/watchtower/partition-drift"

VERIFY_BOTH = """
select public.verify_partition_triggers_exist() as triggers_ok,
       public.verify_current_events_partition_exists() as events_partition_ok
"""
MONTH_PARTITIONS = """
with months(label, first_day) as (
    values ('current', date_trunc('month', now() at time zone 'UTC')::date),
           ('next', (date_trunc('month', now() at time zone 'UTC') + interval '1 month')::date)
)
select parent.relname as parent, parent.relkind::text as relkind, m.label as month,
       parent.relname || '_' || to_char(m.first_day, 'YYYY_MM') as expected_partition,
       exists (
           select 1 from pg_inherits i join pg_class child on child.oid = i.inhrelid
           where i.inhparent = parent.oid
             and child.relname = parent.relname || '_' || to_char(m.first_day, 'YYYY_MM')
       ) as attached,
       (date_trunc('month', now() at time zone 'UTC') + interval '1 month')::date
           - (now() at time zone 'UTC')::date as days_left
from pg_class parent
join pg_namespace n on n.oid = parent.relnamespace
cross join months m
where n.nspname = 'public' and parent.relname in ('sessions', 'events')
order by parent.relname, m.first_day
"""
DEFAULT_PARTITIONS = """
select parent.relname as parent, child.relname as partition
from pg_inherits i
join pg_class parent on parent.oid = i.inhparent
join pg_class child on child.oid = i.inhrelid
join pg_namespace n on n.oid = parent.relnamespace
where n.nspname = 'public' and parent.relname in ('sessions', 'events')
  and pg_get_expr(child.relpartbound, child.oid) = 'DEFAULT'
"""
RECENT_ROWS_IN = """
select count(*) as recent_rows from public.{} where created_at >= now() - interval '24 hours'
"""
SESSION_MONTH_DRIFT = """
select count(*) as sessions,
       count(*) filter (
           where created_month <> date_trunc('month', created_at at time zone 'UTC')::date
       ) as drifted
from public.sessions
where created_month >= date_trunc('month', (now() - interval '24 hours') at time zone 'UTC')::date
  and created_at >= now() - interval '24 hours'
"""
DRIFTED_SESSIONS_SAMPLE = """
select id, created_at, created_month,
       date_trunc('month', created_at at time zone 'UTC')::date as utc_month
from public.sessions
where created_month >= date_trunc('month', (now() - interval '24 hours') at time zone 'UTC')::date
  and created_at >= now() - interval '24 hours'
  and created_month <> date_trunc('month', created_at at time zone 'UTC')::date
limit 20
"""
# The events -> sessions foreign key on (session_id, session_month): while it is validated and
# its triggers fire, an event can neither point at no session nor carry a month key other than
# its session's, so the checks need not look up each recent event's session.
EVENTS_SESSIONS_KEY = """
select fk.conname as name, fk.convalidated as validated,
       (select count(*) from pg_trigger t
        join pg_constraint part on part.oid = t.tgconstraint
        where (part.oid = fk.oid or part.conparentid = fk.oid) and t.tgenabled = 'D') as disabled
from pg_constraint fk
where fk.conrelid = 'public.events'::regclass and fk.confrelid = 'public.sessions'::regclass
  and fk.contype = 'f'
  and (select array_agg(a.attname::text order by a.attname) from pg_attribute a
       where a.attrelid = fk.conrelid and a.attnum = any(fk.conkey))
      = array['session_id', 'session_month']
"""
RECENT_EVENTS = """
    e.session_month >= date_trunc('month', (now() - interval '24 hours') at time zone 'UTC')::date
    and e.created_at >= now() - interval '24 hours'
"""
# Without the key: every event of the last 24 h looked up (primary-key probes pruned to the
# months involved), at a cost that follows the window.
EVENT_MONTH_DRIFT = """
select e.id, e.session_id, e.session_month, s.created_month
from public.events e
join public.sessions s on s.id = e.session_id
  and s.created_month >= (date_trunc('month', now() at time zone 'UTC') - interval '1 month')::date
where e.session_month <> s.created_month and""" + RECENT_EVENTS + """
limit 20
"""
ORPHAN_EVENTS = """
select count(*) as events,
       count(*) filter (where not exists (
           select 1 from public.sessions s
           where s.id = e.session_id and s.created_month = e.session_month)) as orphans
from public.events e
where""" + RECENT_EVENTS
# With the key: the newest events of the window still looked up, a bounded second look at rows
# written around it (bulk loads with session_replication_role = replica skip foreign keys).
NEWEST_EVENTS_SAMPLE = 500
ORPHANS_AMONG_NEWEST = """
select count(*) as events,
       count(*) filter (where not exists (
           select 1 from public.sessions s
           where s.id = e.session_id and s.created_month = e.session_month)) as orphans
from (select e.session_id, e.session_month from public.events e
      where""" + RECENT_EVENTS + """
      order by e.created_at desc limit %(sample)s) e
"""
FUNCTIONS_PRESENT = """
select p.proname as function_name
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'public' and p.proname = any(%(names)s)
"""
# The functions OpsMantik's CI database verify calls (scripts/ci/verify-db.mjs); existence only.
CI_VERIFY_FUNCTIONS = (
    "ping", "verify_partition_triggers_exist", "verify_current_events_partition_exists",
    "watchtower_partition_drift_check_v1", "get_recent_intents_v1", "get_session_details",
    "get_session_timeline", "is_ads_session", "verify_call_event_signature_v1",
    "rotate_site_secret_v1",
)


def test_pd0_schema_contract_holds(
    db: ReadOnlyDB, pg_connections: Connections, request: pytest.FixtureRequest, evidence: Evidence
) -> None:
    """PD-0: The tables, columns and functions the checks rely on exist."""
    assert_contract(pg_connections.catalog("opsmantik"), request, evidence)


def assert_trigger_verify_true(db: ReadOnlyDB, evidence: Evidence) -> None:
    __tracebackhide__ = True
    verified = db.scalar(VERIFY_TRIGGERS)
    evidence.value("verify_partition_triggers_exist()", verified, expected="true",
                   source="scripts/verify-partition-triggers.mjs exits 0 only on true")
    assert verified is True, (
        f"verify_partition_triggers_exist() returned {verified!r}: a drift-guard trigger is "
        "missing on sessions or events")


@pytest.mark.side_effect("the watchtower RPC inserts a watchtower_checks row per call")
def test_pd1_watchtower_partition_drift_ok(
    api: Api, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """PD-1: The watchtower partition-drift endpoint answers ok."""
    secret = system_settings.require("OPSMANTIK_WATCHTOWER_SECRET").value
    exchange = api.post(PARTITION_DRIFT, headers={"Authorization": f"Bearer {secret}"})
    assert exchange.status != 401, (
        "auth rejected (401): OPSMANTIK_WATCHTOWER_SECRET is not accepted; a configuration "
        "failure, not partition drift")
    exchange.expect_status(200, source="runbook 002 check 1")
    body = exchange.json_object()
    for key in ("ok", "triggers_ok", "events_partition_ok"):
        evidence.value(key, body.get(key), expected="true", source="runbook 002 check 1")
    bad = [key for key in ("ok", "triggers_ok", "events_partition_ok") if body.get(key) is not True]
    assert not bad, f"partition drift reported: {', '.join(f'{k}={body.get(k)!r}' for k in bad)}"


@pytest.mark.needs("verify_partition_triggers_exist()", "verify_current_events_partition_exists()")
def test_pd1b_verify_functions_true(db: ReadOnlyDB, evidence: Evidence) -> None:
    """PD-1b: The two verify functions both return true."""
    result = db.one(VERIFY_BOTH)
    for key, value in result.items():
        evidence.value(f"{key}", value, expected="true", source="read-only twin of PD-1")
    bad = [f"{key}={value!r}" for key, value in result.items() if value is not True]
    assert not bad, f"drift detected by the verify functions: {', '.join(bad)}"


@pytest.mark.needs("verify_partition_triggers_exist()")
def test_pd2_trigger_verify_function_true(db: ReadOnlyDB, evidence: Evidence) -> None:
    """PD-2: The trigger verify function returns true, as the verify script requires."""
    assert_trigger_verify_true(db, evidence)


@pytest.mark.needs("sessions", "events")
def test_pd3_drift_guard_triggers_set_month_keys(db: ReadOnlyDB) -> None:
    """PD-3: A BEFORE INSERT trigger on sessions sets created_month and one on events sets session_month, both enabled."""  # noqa: E501
    problems = trigger_problems(db, check_definitions=True)
    assert not problems, "; ".join(problems)


@pytest.mark.needs("verify_partition_triggers_exist()")
def test_pd4_trigger_verify_true_after_mitigation(db: ReadOnlyDB, evidence: Evidence) -> None:
    """PD-4: After mitigation, the trigger verify function returns true."""
    assert_trigger_verify_true(db, evidence)


@pytest.mark.needs("sessions", "events")
def test_pd6_current_and_next_month_partitions_exist(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """PD-6: This month's and next month's partitions exist for sessions and events."""
    lead_days, source = system_settings.threshold("OPSMANTIK_PARTITION_LEAD_DAYS")
    rows = something(db.rows(MONTH_PARTITIONS), "the parents public.sessions and public.events")
    flat = [r["parent"] for r in rows if r["relkind"] != "p"]
    if flat:
        raise SchemaMismatch(f"{', '.join(sorted(set(flat)))} not partitioned (relkind is not "
                             "'p'); runbook 002 assumes monthly range partitions")
    missing = {r["expected_partition"]: r for r in rows if not r["attached"]}
    current = [name for name, r in missing.items() if r["month"] == "current"]
    assert not current, f"this month's partition is missing: {', '.join(current)}; inserts fail now"
    if missing:
        days_left = min(r["days_left"] for r in missing.values())
        finding = (f"next month's partition is missing: {', '.join(missing)} with {days_left} "
                   f"day(s) left in the month")
        evidence.value("days left in the month", days_left,
                       expected=f"more than {lead_days:g} while next month is missing", source=source)
        if days_left <= lead_days:
            raise CheckFailed(f"{finding}; inserts fail at midnight UTC on the 1st ({source})")
        evidence.warn(f"{finding}; create it before the last {lead_days:g} days ({source})")


def test_pd6b_no_recent_rows_in_default_partitions(db: ReadOnlyDB, evidence: Evidence) -> None:
    """PD-6b: No recent rows fell into a DEFAULT partition."""
    defaults = db.rows(DEFAULT_PARTITIONS)
    if not defaults:
        evidence.note("no DEFAULT partition on sessions or events: rows cannot leak into one")
    leaked = []
    for row in defaults:
        count = db.scalar(sql.SQL(RECENT_ROWS_IN).format(sql.Identifier(row["partition"])))
        if count:
            leaked.append(f"{row['partition']}: {count} rows in 24 h")
    none_found(evidence, leaked, "DEFAULT partitions with rows of the last 24 h",
               "runbook 002: such rows also block creating that month's partition")


@pytest.mark.needs("sessions.created_at", "sessions.created_month")
@pytest.mark.needs("events.session_id", "events.session_month", "events.created_at")
def test_pd7_new_rows_carry_utc_month_keys(db: ReadOnlyDB, evidence: Evidence) -> None:
    """PD-7: New sessions and events carry the month key of their UTC creation time."""
    sessions = db.one(SESSION_MONTH_DRIFT)
    something([sessions] if sessions["sessions"] else [], "sessions created in the last 24 hours")
    if sessions["drifted"]:
        db.rows(DRIFTED_SESSIONS_SAMPLE)
    events = [] if events_key_holds(db, evidence) else db.rows(EVENT_MONTH_DRIFT)
    none_found(evidence, sessions["drifted"] + len(events),
               "rows of the last 24 h whose month key is not their UTC month "
               f"({sessions['drifted']} sessions, {len(events)} events)", "runbook 002 checklist")


@pytest.mark.needs("sessions.created_month")
@pytest.mark.needs("events.session_id", "events.session_month", "events.created_at")
def test_pd8_recent_events_join_their_session(db: ReadOnlyDB, evidence: Evidence) -> None:
    """PD-8: Events of the last 24 h all join to their session."""
    if events_key_holds(db, evidence):
        counts = db.one(ORPHANS_AMONG_NEWEST, {"sample": NEWEST_EVENTS_SAMPLE})
        checked = f"the newest {NEWEST_EVENTS_SAMPLE} of the last 24 h"
    else:
        counts = db.one(ORPHAN_EVENTS)
        checked = "every event of the last 24 h"
    something([counts] if counts["events"] else [], "events created in the last 24 hours")
    evidence.value("events checked", counts["events"], expected="above 0", source=checked)
    none_found(evidence, counts["orphans"], "events of the last 24 h without a session",
               "runbook 002: dashboard joins need every event's session")


def events_key_holds(db: ReadOnlyDB, evidence: Evidence) -> bool:
    """Whether the events -> sessions foreign key is in place, validated and enforced."""
    key = db.rows(EVENTS_SESSIONS_KEY)
    holds = bool(key) and key[0]["validated"] and not key[0]["disabled"]
    evidence.value("events -> sessions foreign key on (session_id, session_month)",
                   "validated and enforced" if holds else
                   ("missing" if not key else "not validated or its triggers disabled"),
                   expected="validated and enforced",
                   source="with it, no event can lack its session or carry another month key")
    return holds


def test_pd9_ci_verify_functions_exist(db: ReadOnlyDB, evidence: Evidence) -> None:
    """PD-9: Every function the CI database verify calls exists."""
    found = {r["function_name"] for r in db.rows(FUNCTIONS_PRESENT,
                                                   {"names": list(CI_VERIFY_FUNCTIONS)})}
    missing = [name for name in CI_VERIFY_FUNCTIONS if name not in found]
    none_found(evidence, missing, f"functions missing from public: {', '.join(missing)}",
               "scripts/ci/verify-db.mjs calls them")
