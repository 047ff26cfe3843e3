"""Runbook 001 (LaunchSin): event ingest.

Serves the incident where source events stop, lag, repeat or pile up in the dead-letter queue:
per-connection freshness with warning and critical thresholds, the DLQ rate, duplicate
protection, and row level security checked as the user sees it.
Checklist: runbooks/001-event-ingest.md.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fixtures.contract import assert_contract
from fixtures.errors import RefusedAsUser
from fixtures.evidence import SAMPLE_ROWS, TEXT_CHARS, Evidence
from fixtures.http import Api
from fixtures.postgres import Connections, ReadOnlyDB
from fixtures.settings import SystemSettings
from fixtures.verdicts import CheckFailed, Limit, at_least, at_most, excerpt, none_found, something

pytestmark = [pytest.mark.event_ingest, pytest.mark.system("launchsin")]

HEALTH = "/api/health"
KNOWN_DLQ_CLASSES = ("MISSING_SECRET", "INSERT_FAILED", "UNEXPECTED_ERROR")
# No index leads with ingested_at; every time index is (x, event_time DESC). So the windows on
# ingested_at are read per connection on (source_connection_id, event_time DESC), bounded on
# event_time as well, an hour earlier: an event dated more than an hour before it arrived is a
# lag EI-3 reports. Only active connections deliver.
EVENTS_LAST_HOUR = """
select coalesce(sum(recent.events), 0)::bigint as events, count(*) as active_connections
from public.source_connections c
cross join lateral (
    select count(*) as events from public.canonical_events e
    where e.source_connection_id = c.id
      and e.event_time >= now() - interval '2 hours' and e.ingested_at >= now() - interval '1 hour'
) recent
where c.is_active
"""
BOUNDED_BY_EVENT_TIME = ("events of the window counted per active connection among those dated "
                         "at most an hour before it began (exact with an index on ingested_at)")
# The newest arrival among each connection's newest-dated events (EI-2, EI-4): reading a whole day
# of a connection's index, or bitmap-scanning it as PostgreSQL plans a plain EXISTS, follows the
# day's volume. Only a connection whose recent arrivals are all backfills dated behind its newest
# events could look more silent than it is.
NEWEST_DATED_EVENTS = 20
NEWEST_DATED_NOTE = (f"arrivals read among each connection's {NEWEST_DATED_EVENTS} newest-dated "
                     "events of the window (exact with an index on ingested_at)")
# The ordered, limited subquery keeps the plan a backward index scan that stops at the first
# arrival of the day (an EXISTS drops ORDER BY and LIMIT, and its filter on ingested_at made
# PostgreSQL 15 sort the whole window).
DELIVERED_PER_ACTIVE_CONNECTION_24H = f"""
select c.id, left(c.name, {TEXT_CHARS}) as name, octet_length(c.name) as name_bytes,
       left(c.type, {TEXT_CHARS}) as type, exists (
    select 1 from (
        select e.ingested_at from public.canonical_events e
        where e.source_connection_id = c.id and e.event_time >= now() - interval '25 hours'
        order by e.event_time desc
        limit %(newest)s
    ) newest
    where newest.ingested_at >= now() - interval '24 hours'
) as delivered
from public.source_connections c
where c.is_active
order by delivered, c.name
limit 500
"""
LAG_PER_ACTIVE_CONNECTION = f"""
select c.id, left(c.name, {TEXT_CHARS}) as name, octet_length(c.name) as name_bytes,
       left(c.type, {TEXT_CHARS}) as type,
       extract(epoch from now() - latest.event_time) / 60.0 as lag_minutes
from public.source_connections c
left join lateral (
    select e.event_time from public.canonical_events e
    where e.source_connection_id = c.id and e.event_time <= now() + interval '5 minutes'
    order by e.event_time desc
    limit 1
) latest on true
where c.is_active
order by lag_minutes desc nulls first
limit 500
"""
SILENCE_PER_ACTIVE_CONNECTION = f"""
select c.id, left(c.name, {TEXT_CHARS}) as name, octet_length(c.name) as name_bytes,
       left(c.type, {TEXT_CHARS}) as type,
       extract(epoch from now() - newest.ingested_at) / 60.0 as silent_minutes
from public.source_connections c
left join lateral (
    select max(latest.ingested_at) as ingested_at from (
        select e.ingested_at from public.canonical_events e
        where e.source_connection_id = c.id and e.event_time >= now() - interval '1 day'
        order by e.event_time desc
        limit %(newest)s
    ) latest
) newest on true
where c.is_active
order by silent_minutes desc nulls first
limit 500
"""
UNIQUE_KEYS = """
select con.conname as name, con.contype::text as kind, con.convalidated as validated,
       array(select a.attname::text from unnest(con.conkey) as k(attnum)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum
             order by a.attname) as columns
from pg_constraint con
join pg_class c on c.oid = con.conrelid
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relname = 'canonical_events' and con.contype in ('u', 'p')
"""
DEDUP_COLUMNS = ["idempotency_key", "source_connection_id"]
# Only run when the unique key is missing or not validated (with it, PostgreSQL itself refuses
# a repeat): per connection, a day of its events, grouped by key.
REPEATED_KEYS_24H = f"""
select c.id as source_connection_id,
       left(repeated.idempotency_key, {TEXT_CHARS}) as idempotency_key, repeated.copies
from public.source_connections c
cross join lateral (
    select e.idempotency_key, count(*) as copies from public.canonical_events e
    where e.source_connection_id = c.id
      and e.event_time >= now() - interval '25 hours' and e.ingested_at >= now() - interval '24 hours'
    group by e.idempotency_key
    having count(*) > 1
) repeated
limit 20
"""
RUNBOOK_DUPLICATE_CLASS_LAST_HOUR = """
select count(*) as duplicate_rows from public.dlq_events
where error_class = 'DUPLICATE_EVENT' and created_at >= now() - interval '1 hour'
"""
DLQ_RATE_LAST_HOUR = """
select (select count(*) from public.dlq_events
        where created_at >= now() - interval '1 hour') as dlq,
       delivered.events
from (""" + EVENTS_LAST_HOUR + """) delivered
"""
# Grouped by the class's start and size, not its whole value: a class of megabytes would be
# decompressed for every comparison (ten of 50 MB took seconds), where these two read a slice
# and the stored size.
DLQ_CLASSES_24H = f"""
select left(error_class, {TEXT_CHARS}) as error_class, octet_length(error_class) as error_class_bytes,
       count(*) as dlq_rows, min(left(last_error_message, 160)) as sample_message
from public.dlq_events
where created_at >= now() - interval '24 hours'
group by 1, 2
order by dlq_rows desc
limit 20
"""
EXPECTED_CONNECTIONS = f"""
select id::text as id, left(name, {TEXT_CHARS}) as name, octet_length(name) as name_bytes,
       left(type, {TEXT_CHARS}) as type, is_active
from public.source_connections
where id = any(%(ids)s::uuid[])
"""
HOTMART_HOTTOK_PRESENCE = f"""
select count(*) as hotmart_active,
       count(*) filter (where not coalesce(config_json ? 'hotmart_secret', false)) as without_hottok,
       (array_agg(left(name, {TEXT_CHARS}))
            filter (where not coalesce(config_json ? 'hotmart_secret', false)))[:{SAMPLE_ROWS}] as names
from public.source_connections
where is_active and type = 'hotmart'
"""
MEMBERSHIP = """
select role::text as role from public.org_members
where org_id = %(org)s::uuid and user_id = %(user)s::uuid
"""
PROJECT_EVENTS_24H = """
select count(*) as events from public.canonical_events
where project_id = %(project)s::uuid and event_time >= now() - interval '24 hours'
"""
INSERT_FAILURES_LAST_HOUR = """
select count(*) as insert_failed from public.dlq_events
where error_class = 'INSERT_FAILED' and created_at >= now() - interval '1 hour'
"""
OVERDUE_RETRIES = f"""
select id, connection_id, left(error_class, {TEXT_CHARS}) as error_class, next_retry_at,
       round(extract(epoch from now() - next_retry_at) / 60.0, 1) as overdue_minutes
from public.dlq_events
where status = 'pending' and next_retry_at < now() - make_interval(secs => %(grace)s)
order by next_retry_at
limit 20
"""
# The top of each active connection's event_time index: only future-dated rows are read.
FUTURE_EVENTS = """
select ahead.id, c.id as source_connection_id, ahead.event_time, ahead.ingested_at
from public.source_connections c
cross join lateral (
    select e.id, e.event_time, e.ingested_at from public.canonical_events e
    where e.source_connection_id = c.id
      and e.event_time > now() + make_interval(mins => %(tolerance)s)
      and e.ingested_at >= now() - interval '24 hours'
    limit 20
) ahead
where c.is_active
limit 20
"""
PROJECT_WEEK_PLAN = """
explain (format json)
select event_type, count(*) as events from public.canonical_events
where project_id = %(project)s::uuid and event_time >= now() - interval '7 days'
group by event_type
"""


def exempt(system_settings: SystemSettings) -> set[str]:
    """Connections allowed to be quiet (low-volume sources), from LAUNCHSIN_LOW_VOLUME_CONNECTIONS."""
    setting = system_settings.get("LAUNCHSIN_LOW_VOLUME_CONNECTIONS")
    return {v.strip() for v in setting.value.split(",")} if setting else set()


def label(row: dict[str, Any]) -> str:
    return f"{excerpt(row['name'], row['name_bytes'])} ({excerpt(row['type'])}, {row['id']})"


def unique_key_problem(db: ReadOnlyDB, evidence: Evidence) -> str | None:
    keys = db.rows(UNIQUE_KEYS)
    match = [k for k in keys if k["kind"] == "u" and sorted(k["columns"]) == DEDUP_COLUMNS]
    evidence.value("unique keys on (source_connection_id, idempotency_key)", len(match),
                   expected="1, validated", source="runbook 001: unique_event_per_source")
    if not match:
        return ("no unique constraint on canonical_events (source_connection_id, idempotency_key): "
                "duplicates are accepted (runbook 001 expects unique_event_per_source)")
    if not match[0]["validated"]:
        return f"constraint {match[0]['name']} is NOT VALID: existing rows were never checked"
    return None


def test_ei0_schema_contract_holds(
    db: ReadOnlyDB, pg_connections: Connections, request: pytest.FixtureRequest, evidence: Evidence
) -> None:
    """EI-0: The tables, columns, constraints and functions the checks rely on exist."""
    assert_contract(pg_connections.catalog("launchsin"), request, evidence)


@pytest.mark.needs("canonical_events.ingested_at", "source_connections.is_active")
def test_ei1_events_ingested_last_hour(db: ReadOnlyDB, evidence: Evidence) -> None:
    """EI-1: Events were ingested in the last hour."""
    counts = db.one(EVENTS_LAST_HOUR)
    something([counts] if counts["active_connections"] else [], "an active source connection")
    evidence.note(BOUNDED_BY_EVENT_TIME)
    at_least(evidence, counts["events"], 1, "events ingested in the last hour",
             "runbook 001 monitoring: with active connections, events must keep arriving")


@pytest.mark.needs("canonical_events.source_connection_id", "source_connections.is_active")
def test_ei2_every_active_connection_delivered_24h(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """EI-2: Every active connection delivered events in the last 24 hours."""
    evidence.note(NEWEST_DATED_NOTE)
    rows = something(db.rows(DELIVERED_PER_ACTIVE_CONNECTION_24H, {"newest": NEWEST_DATED_EVENTS}),
                     "an active source connection")
    silent = [label(r) for r in rows if not r["delivered"] and str(r["id"]) not in exempt(system_settings)]
    if silent:
        evidence.correction(says="'Events by source (last 24h)' joins canonical_events to the connections",
                            does="a connection without events has no row in that join: the runbook's "
                                 f"query hides {', '.join(silent)}; join from source_connections")
    none_found(evidence, silent, f"active connections without events in 24 h: {', '.join(silent)}",
               "runbook 001 (the runbook's inner join would hide them)")


@pytest.mark.needs("canonical_events.event_time", "source_connections.is_active")
def test_ei3_connection_lag_within_thresholds(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """EI-3: No active connection lags more than 10 minutes (warning) or 30 minutes (critical)."""
    warn, warn_source = system_settings.threshold("LAUNCHSIN_LAG_WARN_MINUTES")
    fail, fail_source = system_settings.threshold("LAUNCHSIN_LAG_CRIT_MINUTES")
    rows = something(db.rows(LAG_PER_ACTIVE_CONNECTION), "an active source connection")
    rows = [r for r in rows if str(r["id"]) not in exempt(system_settings)]
    lagging = [f"{label(r)}: {_minutes(r['lag_minutes'])}" for r in rows
               if r["lag_minutes"] is None or r["lag_minutes"] > 5]
    evidence.note("connections over 5 min behind (informational): " + ("; ".join(lagging) or "none"))
    worst = rows[0] if rows else None
    if worst is None:
        return
    if worst["lag_minutes"] is None:
        raise CheckFailed(f"{label(worst)} has never delivered an event")
    at_most(evidence, round(float(worst["lag_minutes"]), 1), Limit(
        f"lag of {label(worst)} (now - newest event_time)", fail,
        f"runbook 001 alert thresholds; {warn_source}, {fail_source}", warn=warn, unit=" min"))


@pytest.mark.needs("canonical_events.ingested_at", "source_connections.is_active")
def test_ei4_no_active_connection_silent(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """EI-4: No active connection has been silent for more than 15 minutes."""
    limit, source = system_settings.threshold("LAUNCHSIN_SILENT_MAX_MINUTES")
    evidence.note(f"last arrival: {NEWEST_DATED_NOTE}")
    rows = something(db.rows(SILENCE_PER_ACTIVE_CONNECTION, {"newest": NEWEST_DATED_EVENTS}),
                     "an active source connection")
    silent = [f"{label(r)}: {_minutes(r['silent_minutes'])}" for r in rows
              if str(r["id"]) not in exempt(system_settings)
              and (r["silent_minutes"] is None or r["silent_minutes"] > limit)]
    none_found(evidence, silent, f"active connections silent for more than {limit:g} min: "
               + "; ".join(silent), f"runbook 001 critical alert ({source})")


@pytest.mark.needs("canonical_events.idempotency_key", "canonical_events.source_connection_id")
def test_ei5_duplicates_impossible(
    db: ReadOnlyDB, evidence: Evidence, pg_connections: Connections
) -> None:
    """EI-5: Duplicate events are impossible: the unique key is in place and no key repeats."""
    problem = unique_key_problem(db, evidence)
    if problem is None:
        evidence.note("keys stored more than once were not searched: the validated unique key "
                      "makes a repeat impossible")
    repeated = [] if problem is None else db.rows(REPEATED_KEYS_24H)
    if "dlq_events.error_class" in pg_connections.catalog("launchsin").objects:
        runbook_form = db.scalar(RUNBOOK_DUPLICATE_CLASS_LAST_HOUR)
        evidence.value("DLQ rows of class DUPLICATE_EVENT in the last hour", runbook_form,
                       expected="0", source="the runbook's query (the code never writes this class)")
        evidence.correction(says="duplicates show as DLQ rows of class DUPLICATE_EVENT (should be 0)",
                            does="the code never writes that class: duplicates are dropped on "
                                 "unique_event_per_source and only logged, so the query is always 0")
    else:
        evidence.note("the runbook's DUPLICATE_EVENT query was not run: dlq_events has no error_class")
    assert problem is None, problem
    none_found(evidence, repeated, "idempotency keys stored more than once in 24 h",
               "runbook 001: duplicates should be 0")


@pytest.mark.needs("dlq_events.created_at", "canonical_events.ingested_at")
def test_ei7_dlq_rate_within_thresholds(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """EI-7: The DLQ rate is below 5 % (warning) and 10 % (critical)."""
    warn, warn_source = system_settings.threshold("LAUNCHSIN_DLQ_RATE_WARN")
    fail, fail_source = system_settings.threshold("LAUNCHSIN_DLQ_RATE_CRIT")
    counts = db.one(DLQ_RATE_LAST_HOUR)
    evidence.note(BOUNDED_BY_EVENT_TIME)
    deliveries = counts["dlq"] + counts["events"]
    if deliveries == 0:
        evidence.warn("nothing delivered in the last hour (no event, no DLQ row): the DLQ rate "
                      "cannot be measured (EI-1 reports the missing events)")
        return
    at_most(evidence, round(counts["dlq"] / deliveries, 4), Limit(
        f"DLQ share of the last hour ({counts['dlq']} of {deliveries} deliveries)", fail,
        f"runbook 001 alert thresholds; {warn_source}, {fail_source}", warn=warn))


@pytest.mark.needs("dlq_events.error_class", "dlq_events.last_error_message", "dlq_events.created_at")
def test_ei8_dlq_error_classes_known(db: ReadOnlyDB, evidence: Evidence) -> None:
    """EI-8: Every DLQ error class of the last 24 hours is a known one."""
    classes = db.rows(DLQ_CLASSES_24H)
    unknown = [f"{excerpt(r['error_class'], r['error_class_bytes'])!r} x{r['dlq_rows']}" for r in classes
               if r["error_class"] not in KNOWN_DLQ_CLASSES]
    evidence.value("DLQ error classes in 24 h", len(classes), expected=f"within {KNOWN_DLQ_CLASSES}",
                   source="the classes LaunchSin's webhook code writes")
    if unknown:
        evidence.warn(f"unknown DLQ error classes in 24 h: {', '.join(unknown)}; see the samples")


@pytest.mark.needs("source_connections.is_active")
def test_ei9_expected_connections_active(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """EI-9: The connections expected to be active are active."""
    expected = system_settings.listed("LAUNCHSIN_EXPECTED_ACTIVE_CONNECTIONS")
    rows = {r["id"]: r for r in db.rows(EXPECTED_CONNECTIONS, {"ids": expected})}
    problems = [f"{cid} not found" for cid in expected if cid not in rows]
    problems += [f"{label(r)} is inactive" for r in rows.values() if not r["is_active"]]
    none_found(evidence, problems, "expected connections not active: " + "; ".join(problems),
               "LAUNCHSIN_EXPECTED_ACTIVE_CONNECTIONS")


def test_ei10_api_answers(api: Api) -> None:
    """EI-10: The API behind the webhook URL answers, with valid DNS and TLS."""
    # /api/health sits behind an auth middleware that accepts any bearer; this one is a placeholder.
    exchange = api.get(HEALTH, headers={"Authorization": "Bearer runbook-checks"})
    exchange.expect_status(200, source="runbook 001 checklist: webhook URL accessible")
    status = exchange.json_object().get("status")
    assert status == "ok", f"{HEALTH} status is {status!r}, expected 'ok'"


@pytest.mark.needs("source_connections.config_json", "source_connections.type")
def test_ei11_hotmart_connections_have_hottok(db: ReadOnlyDB, evidence: Evidence) -> None:
    """EI-11: Every active Hotmart connection has a hottok configured."""
    presence = db.one(HOTMART_HOTTOK_PRESENCE)
    something([presence] if presence["hotmart_active"] else [], "an active Hotmart connection")
    names = ", ".join(presence["names"] or [])
    none_found(evidence, presence["without_hottok"], f"active Hotmart connections without a hottok: "
               f"{names}", "runbook 001 checklist (their webhooks land in the DLQ as MISSING_SECRET)")


@pytest.mark.needs("org_members.org_id", "org_members.user_id")
def test_ei12_test_user_is_org_member(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """EI-12: The on-call test user is a member of the project's organisation."""
    user = system_settings.require("LAUNCHSIN_CHECK_USER_ID").value
    org = system_settings.require("LAUNCHSIN_CHECK_ORG_ID").value
    rows = db.rows(MEMBERSHIP, {"org": org, "user": user})
    evidence.value("org_members rows for the test user", len(rows), expected="1",
                   source="LAUNCHSIN_CHECK_USER_ID, LAUNCHSIN_CHECK_ORG_ID")
    assert rows, f"user {user} is not a member of organisation {org} (runbook 001 checklist)"


@pytest.mark.needs("canonical_events.project_id")
def test_ei13_rls_member_sees_events_nonmember_none(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """EI-13: Row level security lets a member see the project's events and a non-member none."""
    project = {"project": system_settings.require("LAUNCHSIN_CHECK_PROJECT_ID").value}
    member = system_settings.require("LAUNCHSIN_CHECK_USER_ID").value
    outsider = system_settings.require("LAUNCHSIN_NONMEMBER_USER_ID").value
    role, _ = system_settings.text("LAUNCHSIN_RLS_ROLE", "authenticated")
    privileged = db.scalar(PROJECT_EVENTS_24H, project)
    something([privileged] if privileged else [], "events of the check project in the last 24 h")
    seen = {}
    for who, user in (("member", member), ("non-member", outsider)):
        try:
            rows = db.rows_as(role, {"sub": user, "role": role}, PROJECT_EVENTS_24H, project)
        except RefusedAsUser as exc:
            raise CheckFailed(f"querying as the {who} fails, so users see an error: {exc}") from None
        seen[who] = rows[0]["events"]
        evidence.value(f"events visible to the {who}", seen[who],
                       expected=str(privileged) if who == "member" else "0", source="RLS policies")
    assert seen["member"] == privileged, (
        f"the member sees {seen['member']} of the project's {privileged} events in 24 h")
    assert seen["non-member"] == 0, f"a non-member sees {seen['non-member']} of the project's events"


@pytest.mark.needs("dlq_events.error_class", "dlq_events.created_at")
def test_ei14_no_insert_failures_last_hour(db: ReadOnlyDB, evidence: Evidence) -> None:
    """EI-14: No insert into canonical events failed in the last hour."""
    none_found(evidence, db.scalar(INSERT_FAILURES_LAST_HOUR), "DLQ rows of class INSERT_FAILED "
               "in the last hour", "runbook 001 checklist: no constraint violations")


@pytest.mark.needs("dlq_events.status", "dlq_events.next_retry_at", "dlq_events.error_class")
def test_ei15_dlq_worker_keeps_up(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """EI-15: The DLQ worker is running: no retry is overdue."""
    poll, source = system_settings.threshold("LAUNCHSIN_DLQ_POLL_SECONDS")
    overdue = db.rows(OVERDUE_RETRIES, {"grace": 2 * poll})
    none_found(evidence, overdue, f"pending DLQ retries overdue by more than two poll intervals "
               f"({2 * poll:g} s)", f"the DLQ worker polls every {poll:g} s ({source})")


@pytest.mark.needs("canonical_events.event_time", "canonical_events.ingested_at")
def test_ei16_no_events_dated_in_future(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """EI-16: No event is dated more than 5 minutes in the future."""
    tolerance, source = system_settings.threshold("LAUNCHSIN_FUTURE_TOLERANCE_MINUTES")
    future = db.rows(FUTURE_EVENTS, {"tolerance": tolerance})
    none_found(evidence, future, f"events ingested in 24 h dated more than {tolerance:g} min ahead",
               f"runbook 001 checklist ({source})")


def test_ei17b_unique_key_back_after_reingest(db: ReadOnlyDB, evidence: Evidence) -> None:
    """EI-17b: After a forced re-ingest, the unique key is back."""
    problem = unique_key_problem(db, evidence)
    assert problem is None, problem


@pytest.mark.needs("canonical_events.project_id", "canonical_events.event_time")
def test_ei18_project_week_query_uses_index(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """EI-18: The project's 7-day event query uses its index."""
    index, _ = system_settings.text("LAUNCHSIN_PROJECT_TIME_INDEX", "idx_canonical_events_project_time")
    project = system_settings.require("LAUNCHSIN_CHECK_PROJECT_ID").value
    plan = db.scalar(PROJECT_WEEK_PLAN, {"project": project})
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes = list(_plan_nodes(plan[0]["Plan"]))
    scans = [f"{n['Node Type']} on {n.get('Relation Name')}" + (f" using {n['Index Name']}"
             if n.get("Index Name") else "") for n in nodes if n.get("Relation Name")]
    evidence.value("scans in the plan", "; ".join(scans), expected=f"an index scan using {index}",
                   source="runbook 001 performance section")
    seq = [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "canonical_events"]
    assert not seq, f"the project/7-day query scans canonical_events sequentially: {'; '.join(scans)}"
    assert any(n.get("Index Name") == index for n in nodes), f"{index} is not used: {'; '.join(scans)}"


def _plan_nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def _minutes(value: Any) -> str:
    return "never" if value is None else f"{float(value):.1f} min"
