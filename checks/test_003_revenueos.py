"""Runbook 003 (RevenueOS): payments not syncing, dunning spam, database maintenance.

Serves three incidents of the RevenueOS Ops Runbook: a payment that never reaches the dashboard
(the provider, Vercel or the worker, decided from the raw events and the ops dashboard's own
numbers), a customer who receives the same dunning message several times, and the weekly
maintenance (vacuum of the event tables, rotation of the internal cron secret). The checks follow
the system where the runbook is out of date for it and record a correction.
Checklist: runbooks/003-revenueos.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest

from checks.revenueos import (
    RAW,
    RECENT_PAGES,
    at_least_share,
    last_pages,
    note_reach,
    provider_windows,
    raw_columns,
    tail,
    with_raw,
)
from fixtures.contract import assert_contract, needs_of
from fixtures.evidence import TEXT_CHARS, Evidence
from fixtures.http import Api, Exchange
from fixtures.postgres import Connections, ReadOnlyDB
from fixtures.settings import SystemSettings
from fixtures.verdicts import CheckFailed, Limit, at_most, none_found, something

PAYMENTS = pytest.mark.payments_not_syncing
DUNNING = pytest.mark.dunning_spam
MAINTENANCE = pytest.mark.db_maintenance
pytestmark = [pytest.mark.system("revenueos")]

SYSTEM = "revenueos"
CRON_SYNC = "/api/cron/sync"  # GET, and a sync batch when the secret is valid
SECRET_VARIABLE = "INTERNAL_API_SECRET"  # what requireInternalAuth reads on the deployment
EVENT_TABLES = ["external_events_raw", "external_events_normalized"]
DUNNING_WINDOW = "7 days"

# The ops dashboard's queue numbers as ops_queue_health_view defines them, without the view's
# scan of the whole queue: the queued jobs through the poll index (idx_jobs_queue_poll covers
# queued and running ones), the dead ones in the queue's last pages (no index covers them).
QUEUE_HEALTH = f"""
select q.backlog_count, d.dead_letter_count, q.oldest_age_seconds
from (select count(*) as backlog_count,
             coalesce(extract(epoch from now() - min(j.created_at)), 0) as oldest_age_seconds
      from public.jobs_queue j where j.status = 'queued') q
cross join (select count(*) as dead_letter_count from public.jobs_queue j
            where j.ctid >= {tail("jobs_queue")} and j.status = 'dead') d
"""
# ops_job_success_view's numbers, by its definition (per job type over 24 hours), from the
# queue's last pages: jobs_queue has no index on created_at, and the view scans all of it.
# Grouped by the type's start: a type of megabytes compared whole would be decompressed each time.
JOB_SUCCESS_24H = f"""
select job_type, total, success, failed,
       case when total = 0 then 100 else round(success::numeric / total::numeric * 100, 2) end
           as success_rate
from (select left(j.job_type, {TEXT_CHARS}) as job_type, count(*) as total,
             count(*) filter (where j.status = 'completed') as success,
             count(*) filter (where j.status = 'dead'
                              or (j.status = 'failed' and j.attempts >= j.max_attempts)) as failed
      from public.jobs_queue j
      where j.ctid >= {tail("jobs_queue")} and j.created_at > now() - interval '24 hours'
      group by 1) stats
order by total desc
limit 100
"""
# Per provider with an active integration, its newest raw event within a week, from the table's
# last pages (`{raw_tail}`: no index on received_at upstream; see TAIL_PAGES). Each
# integration's newest is found first, so the join has a row per integration, not per event.
NEWEST_RAW_PER_PROVIDER = f"""
select left(i.provider, {TEXT_CHARS}) as provider, count(distinct i.org_id) as organisations,
       max(r.newest) as newest,
       round(extract(epoch from now() - max(r.newest)) / 60.0, 1) as minutes_since_newest
from (select distinct org_id, provider from public.integrations where status = 'active') i
left join (select r.org_id, r.provider, max(r.received_at) as newest
           from public.external_events_raw r
           where r.ctid >= {{raw_tail}} and r.received_at >= now() - interval '7 days'
           group by r.org_id, r.provider) r on r.org_id = i.org_id and r.provider = i.provider
group by i.provider
order by i.provider
limit 100
"""
# The runbook's "newest rows" look, with its columns projected (its select * would print payloads
# and headers).
NEWEST_RAW_ROWS = """
select r.id, r.org_id, left(r.provider, {text_chars}) as provider,
       left({event_id}, {text_chars}) as event_id, left(r.event_type, {text_chars}) as event_type,
       left(r.status, {text_chars}) as status, r.received_at
from public.external_events_raw r
where r.ctid >= {recent_tail} and r.received_at >= now() - interval '1 hour'
order by r.received_at desc
limit 10
"""
# integration_freshness_view's statuses, computed as the view computes them, from the last pages
# of the legacy table it reads (`{legacy_tail}`: no index on received_at; the view reads every
# event of every active organisation). An integration with no event there is stale.
FRESHNESS_VIEW = f"""
select i.org_id, left(i.provider, {TEXT_CHARS}) as provider,
       case when e.newest is null then 'stale'
            when e.newest > now() - interval '24 hours' then 'healthy'
            when e.newest > now() - interval '3 days' then 'degraded'
            else 'stale' end as status,
       round(extract(epoch from now() - e.newest) / 3600.0, 1) as hours_since_last_event
from (select distinct org_id, provider from public.integrations where status = 'active') i
left join (select e.org_id, e.provider, max(e.received_at) as newest
           from public.external_events e where e.ctid >= {{legacy_tail}}
           group by e.org_id, e.provider) e on e.org_id = i.org_id and e.provider = i.provider
order by e.newest nulls first
limit 100
"""
STUCK_RAW = """
select r.id, r.org_id, left(r.provider, {text_chars}) as provider,
       left({event_id}, {text_chars}) as event_id, r.status, r.received_at,
       round(extract(epoch from now() - r.received_at) / 60.0, 1) as minutes_waiting,
       count(*) over () as stuck
from public.external_events_raw r
where r.ctid >= {raw_tail} and r.status in ('pending', 'processing')
  and r.received_at < now() - make_interval(mins => %(minutes)s)
order by r.received_at
limit 20
"""
UNNORMALIZED_FAILURES_24H = """
select r.id, r.org_id, left(r.provider, {text_chars}) as provider,
       left({event_id}, {text_chars}) as event_id, r.status, r.received_at,
       left({error}, 160) as error, count(*) over () as unnormalized
from public.external_events_raw r
where r.ctid >= {raw_tail} and r.status in ('failed', 'normalization_failed')
  and r.received_at >= now() - interval '24 hours'
  and not exists (select 1 from public.external_events_normalized n where n.raw_event_id = r.id)
order by r.received_at desc
limit 20
"""
ANOMALIES = "select open_anomalies, critical_anomalies from public.ops_anomalies_view"
OPEN_CRITICAL_ANOMALIES = f"""
select id, org_id, left(provider, {TEXT_CHARS}) as provider,
       left(entity_type, {TEXT_CHARS}) as entity_type, left(external_id, {TEXT_CHARS}) as external_id,
       left(anomaly_type, {TEXT_CHARS}) as anomaly_type, detected_at
from public.state_anomalies
where status = 'open' and severity = 'critical'
order by detected_at desc
limit 20
"""
# The dunning messages of the last 7 days, from the log's last pages (no index on sent_at
# upstream; see TAIL_PAGES), read once for the three forms of a double send, one row set each:
# `burst`, the symptom ("five WhatsApps in one minute"): the same payment and channel again within
# the limit, whatever the rule (a manual run has none), each message paired with the one before
# it; `repeated`, a step of the cadence sent twice, however far apart; `runbook`, the runbook's own
# query (GROUP BY payment_id HAVING count(*) > 1) as one row: how many payments, the most messages.
DUNNING_SENT_TWICE = f"""
with recent as materialized (
    select d.project_id, d.payment_id, d.rule_id, d.channel, d.sent_at
    from public.dunning_logs d
    where d.ctid >= {tail("dunning_logs")} and d.sent_at >= now() - interval '{DUNNING_WINDOW}'
), paced as (
    select r.project_id, r.payment_id, r.channel, r.sent_at,
           lag(r.sent_at) over (partition by r.payment_id, r.channel order by r.sent_at) as previous
    from recent r where r.payment_id is not null
)
(select 'burst' as form, project_id, payment_id, null::uuid as rule_id,
        left(channel, {TEXT_CHARS}) as channel, count(*) + 1 as messages,
        min(previous) as first_sent, max(sent_at) as last_sent, null::bigint as payments
 from paced where sent_at <= previous + make_interval(secs => %(seconds)s)
 group by project_id, payment_id, channel
 order by messages desc
 limit 20)
union all
(select 'repeated', project_id, payment_id, rule_id, left(channel, {TEXT_CHARS}), count(*),
        min(sent_at), max(sent_at), null
 from recent where payment_id is not null and rule_id is not null
 group by project_id, payment_id, rule_id, channel
 having count(*) > 1
 order by count(*) desc
 limit 20)
union all
select 'runbook', null, null, null, null, coalesce(max(messages), 0), null, null, count(*)
from (select payment_id, count(*) as messages from recent
      group by payment_id having count(*) > 1) several
"""
DUNNING_UNIQUE_KEYS = """
select ic.relname as index_name, i.indisvalid as valid, i.indpred is not null as partial,
       con.conname as constraint_name,
       array(select a.attname::text from unnest(i.indkey::int2[]) as k(attnum)
             join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
             order by a.attname) as columns
from pg_index i
join pg_class c on c.oid = i.indrelid
join pg_class ic on ic.oid = i.indexrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_constraint con on con.conindid = i.indexrelid
where n.nspname = 'public' and c.relname = 'dunning_logs' and i.indisunique
"""
# Which columns an idempotency key of dunning_logs may hold, and which it must.
KEY_REQUIRED = {"payment_id", "rule_id"}
KEY_ALLOWED = {"payment_id", "rule_id", "channel", "project_id"}
# pg_stat_user_tables' columns (and pg_class's) for the tables named in %(tables)s, each found by
# its oid through pg_class's index: the view would look them up by name, then pg_class again.
TABLE_STATS = """(
    select c.relname, c.reltuples, c.reloptions,
           pg_stat_get_last_vacuum_time(c.oid) as last_vacuum,
           pg_stat_get_last_autovacuum_time(c.oid) as last_autovacuum,
           pg_stat_get_last_analyze_time(c.oid) as last_analyze,
           pg_stat_get_last_autoanalyze_time(c.oid) as last_autoanalyze,
           pg_stat_get_live_tuples(c.oid) as n_live_tup, pg_stat_get_dead_tuples(c.oid) as n_dead_tup
    from pg_class c
    where c.oid = any(array(select to_regclass('public.' || t.name)
                            from unnest(%(tables)s::text[]) as t(name))))"""
MAINTENANCE_STATS = f"""
select s.relname as table_name,
       greatest(s.last_vacuum, s.last_autovacuum) as last_vacuumed,
       greatest(s.last_analyze, s.last_autoanalyze) as last_analyzed,
       round(extract(epoch from now() - greatest(s.last_vacuum, s.last_autovacuum)) / 86400.0, 2)
           as days_since_vacuum,
       round(extract(epoch from now() - greatest(s.last_analyze, s.last_autoanalyze)) / 86400.0, 2)
           as days_since_analyze,
       coalesce('autovacuum_enabled=false' = any(s.reloptions), false) as autovacuum_off
from {TABLE_STATS} s
order by s.relname
"""
# Without a vacuum or analyze since the counters were reset, n_live_tup counts only the rows
# inserted since: the planner's reltuples is then the better count of live rows.
DEAD_TUPLES = f"""
select s.relname as table_name, s.n_live_tup as live, s.n_dead_tup as dead,
       s.reltuples::bigint as estimated_rows,
       coalesce(s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze) is null
           as counted_since_reset,
       round((s.n_dead_tup::numeric / greatest(
           case when coalesce(s.last_vacuum, s.last_autovacuum, s.last_analyze,
                              s.last_autoanalyze) is null
                then greatest(s.n_live_tup, s.reltuples::bigint) else s.n_live_tup end, 1)), 4)
           as dead_ratio
from {TABLE_STATS} s
order by dead_ratio desc
"""


def runs_raw_checks(request: pytest.FixtureRequest) -> bool:
    return any(name.startswith(RAW) for item in request.session.items for name in needs_of(item))


@PAYMENTS
@DUNNING
@MAINTENANCE
def test_ro0_schema_contract_holds(
    db: ReadOnlyDB, pg_connections: Connections, request: pytest.FixtureRequest, evidence: Evidence
) -> None:
    """RO-0: The tables, views and columns the checks rely on exist."""
    catalog = pg_connections.catalog(SYSTEM)
    assert_contract(catalog, request, evidence)
    if runs_raw_checks(request):
        raw_columns(catalog, evidence)


# Payments not syncing (Sev1) -------------------------------------------------------------------

@PAYMENTS
@pytest.mark.needs("jobs_queue.status", "jobs_queue.created_at")
def test_ro1_queue_lag_within_slo(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """RO-1: The oldest queued job is under 60 s old (warning) and 300 s (critical)."""
    warn, warn_source = system_settings.threshold("REVENUEOS_QUEUE_LAG_WARN_SECONDS")
    fail, fail_source = system_settings.threshold("REVENUEOS_QUEUE_LAG_CRIT_SECONDS")
    queue = db.one(QUEUE_HEALTH)
    note_reach(db, evidence, "jobs_queue", index="status")  # the dead jobs counted
    evidence.note(f"backlog {queue['backlog_count']} queued jobs, {queue['dead_letter_count']} dead; "
                  "the runbook's 'ingestion latency' is this number on the ops dashboard")
    at_most(evidence, round(float(queue["oldest_age_seconds"]), 1), Limit(
        "age of the oldest queued job (ops_queue_health_view)", fail,
        f"the ops dashboard's queue-lag SLO; {warn_source}, {fail_source}", warn=warn, unit=" s"))


@PAYMENTS
@pytest.mark.needs("jobs_queue.job_type", "jobs_queue.status", "jobs_queue.created_at",
                   "jobs_queue.attempts", "jobs_queue.max_attempts")
def test_ro2_job_success_rate_within_slo(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """RO-2: At least 99 % of the last 24 hours' jobs succeeded (warning), at least 95 % (critical)."""
    warn, warn_source = system_settings.threshold("REVENUEOS_JOB_SUCCESS_WARN_PERCENT")
    fail, fail_source = system_settings.threshold("REVENUEOS_JOB_SUCCESS_CRIT_PERCENT")
    rows = something(db.rows(JOB_SUCCESS_24H), "jobs queued in the last 24 hours")
    note_reach(db, evidence, "jobs_queue")
    total, success = sum(int(r["total"]) for r in rows), sum(int(r["success"]) for r in rows)
    failing = [f"{r['job_type']} {float(r['success_rate']):g} % of {r['total']}" for r in rows
               if float(r["success_rate"]) < warn]
    evidence.note("job types under the warning rate: " + ("; ".join(failing) or "none"))
    at_least_share(evidence, round(100.0 * success / total, 2),
                   f"jobs of the last 24 hours that succeeded ({success} of {total}, weighted by "
                   "volume)", warn=warn, fail=fail,
                   source=f"the ops dashboard's job-success SLO; {warn_source}, {fail_source}")


def recent_first(db: ReadOnlyDB, query: str,
                 settled: Callable[[list[dict[str, Any]]], bool]
                 ) -> tuple[list[dict[str, Any]], int | None]:
    """The query over the tables' last RECENT_PAGES pages, and over their last TAIL_PAGES when
    those do not settle it (a provider silent, an integration not healthy); the pages read (None:
    each table's TAIL_PAGES)."""
    rows = db.rows(last_pages(query, RECENT_PAGES))
    if settled(rows):
        return rows, RECENT_PAGES
    return db.rows(last_pages(query)), None


def silent_providers(rows: list[dict[str, Any]], windows: dict[str, float]) -> list[str]:
    """The providers whose newest raw event is older than their window, with their age."""
    silent = []
    for row in rows:
        window = windows.get(row["provider"], windows["*"])
        minutes = row["minutes_since_newest"]
        if minutes is None or float(minutes) > window:
            age = ("none within 7 days in the pages read" if minutes is None
                   else f"newest {float(minutes):g} min ago")
            silent.append(f"{row['provider']} ({age}; window {window:g} min)")
    return silent


@PAYMENTS
@pytest.mark.needs("integrations.provider", "integrations.status", "external_events_raw.received_at",
                   "external_events_raw.provider", "external_events_raw.org_id",
                   "external_events.received_at", "external_events.provider",
                   "external_events.org_id")
def test_ro4_every_provider_delivered_recently(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings, pg_connections: Connections
) -> None:
    """RO-4: Every provider with an active integration delivered a raw event within its window
    (60 minutes unless the provider has its own), and no integration is stale."""
    default, source = system_settings.threshold("REVENUEOS_RAW_MAX_AGE_MINUTES")
    own = system_settings.get("REVENUEOS_PROVIDER_MAX_AGE_MINUTES")
    windows = provider_windows(own.value if own else None, default,
                               "REVENUEOS_PROVIDER_MAX_AGE_MINUTES")
    columns = raw_columns(pg_connections.catalog(SYSTEM), evidence)
    providers, pages = recent_first(db, NEWEST_RAW_PER_PROVIDER,
                                    lambda rows: not silent_providers(rows, windows))
    something(providers, "a provider with an active integration")
    db.rows(with_raw(NEWEST_RAW_ROWS, columns))  # the runbook's look, kept as evidence
    note_reach(db, evidence, RAW, pages)
    silent = silent_providers(providers, windows)
    view, pages = recent_first(db, FRESHNESS_VIEW,
                               lambda rows: all(r["status"] == "healthy" for r in rows))
    something(view, "an active integration in integration_freshness_view")
    note_reach(db, evidence, "external_events", pages, index="org_id, provider, received_at")
    evidence.note("integration_freshness_view reads the legacy external_events table, not "
                  "external_events_raw: it can call an integration healthy while the raw table is silent")
    stale = [f"{r['provider']} of organisation {r['org_id']} is stale in integration_freshness_view"
             for r in view if r["status"] == "stale"]
    none_found(evidence, silent + stale, "providers without a raw event in their window or stale "
               f"integrations: {'; '.join(silent + stale)}",
               f"runbook 003 Sev1 diagnosis 2-3: no rows means a provider issue or Vercel down ({source})")


@PAYMENTS
@pytest.mark.needs("external_events_raw.status", "external_events_raw.received_at")
def test_ro5_no_raw_event_stuck_pending(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings, pg_connections: Connections
) -> None:
    """RO-5: No raw event has waited in pending or processing for more than 10 minutes."""
    minutes, source = system_settings.threshold("REVENUEOS_STUCK_MINUTES")
    columns = raw_columns(pg_connections.catalog(SYSTEM), evidence)
    stuck = db.rows(with_raw(STUCK_RAW, columns), {"minutes": minutes})
    note_reach(db, evidence, RAW, index="status, received_at")
    evidence.note("external_events_raw records no start time for 'processing': its wait is "
                  "counted from received_at, as the sync engine's own stuck rule would")
    count = int(stuck[0]["stuck"]) if stuck else 0
    none_found(evidence, count, f"raw events pending or processing for more than {minutes:g} min "
               "(rows exist but the worker does not take them)",
               f"runbook 003 Sev1 diagnosis 4: pending rows mean the worker is down ({source})")


@PAYMENTS
@pytest.mark.needs("external_events_raw.status", "external_events_raw.received_at",
                   "external_events_normalized.raw_event_id")
def test_ro7_failed_events_were_normalized(
    db: ReadOnlyDB, evidence: Evidence, pg_connections: Connections
) -> None:
    """RO-7: Every raw event that failed in the last 24 hours has its normalized event."""
    columns = raw_columns(pg_connections.catalog(SYSTEM), evidence)
    rows = db.rows(with_raw(UNNORMALIZED_FAILURES_24H, columns))
    note_reach(db, evidence, RAW, index="status, received_at")
    count = int(rows[0]["unnormalized"]) if rows else 0
    none_found(evidence, count, "raw events of the last 24 hours failed or normalization_failed "
               "without a normalized event", "runbook 003 Sev1 mitigation: after the backfill "
               "nothing of the last 24 hours is left unprocessed")


@PAYMENTS
@pytest.mark.needs("ops_anomalies_view.critical_anomalies", "state_anomalies.severity",
                   "state_anomalies.status")
def test_ro8_no_critical_anomaly_open(db: ReadOnlyDB, evidence: Evidence) -> None:
    """RO-8: No critical anomaly is open."""
    counts = db.one(ANOMALIES)
    evidence.note(f"open anomalies: {counts['open_anomalies']}")
    if counts["critical_anomalies"]:
        db.rows(OPEN_CRITICAL_ANOMALIES)  # which ones, as evidence
    none_found(evidence, int(counts["critical_anomalies"]), "open critical anomalies "
               "(ops_anomalies_view)", "the ops dashboard: critical anomalies must be 0")


# Dunning spam (Sev2) ----------------------------------------------------------------------------

DUNNING_NEEDS = ("dunning_logs", "dunning_logs.payment_id", "dunning_logs.rule_id",
                 "dunning_logs.channel", "dunning_logs.sent_at")


@DUNNING
@pytest.mark.needs(*DUNNING_NEEDS)
def test_ro9_no_dunning_message_sent_twice(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """RO-9: No dunning message went out twice (the same payment and channel within a minute, or
    the same payment, rule and channel), over the last 7 days."""
    seconds, source = system_settings.threshold("REVENUEOS_DOUBLE_SEND_SECONDS")
    rows = db.rows(DUNNING_SENT_TWICE, {"seconds": seconds})
    note_reach(db, evidence, "dunning_logs")
    bursts = [r for r in rows if r["form"] == "burst"]
    repeated = [r for r in rows if r["form"] == "repeated"]
    runbook_form = next(r for r in rows if r["form"] == "runbook")
    evidence.value("payments with more than one dunning message in 7 days (the runbook's query)",
                   runbook_form["payments"], expected="information only",
                   source="runbook 003 Sev2 diagnosis 1")
    if runbook_form["payments"] > len(bursts) + len(repeated):
        evidence.correction(
            says="duplicates are payments with more than one dunning_logs row "
                 "(GROUP BY payment_id HAVING count(*) > 1)",
            does=f"the cadence sends several steps per payment by design ({runbook_form['payments']} "
                 "payments in 7 days): a double send is the same payment and channel within a "
                 "minute, or the same payment, rule and channel twice")
    found = [f"payment {r['payment_id']}: {r['messages']} {r['channel']} messages within "
             f"{seconds:g} s" for r in bursts]
    found += [f"payment {r['payment_id']}: step {r['rule_id']} sent {r['messages']} times by "
              f"{r['channel']}" for r in repeated]
    none_found(evidence, found, "dunning messages sent twice: " + "; ".join(found),
               f"runbook 003 Sev2: the customer gets the same WhatsApp again ({source})")


@DUNNING
@pytest.mark.needs("dunning_logs")
def test_ro10_dunning_logs_has_idempotency_key(db: ReadOnlyDB, evidence: Evidence) -> None:
    """RO-10: dunning_logs has its idempotency key (payment, rule, channel)."""
    keys = db.rows(DUNNING_UNIQUE_KEYS)
    usable = [k for k in keys if k["valid"] and KEY_REQUIRED <= set(k["columns"]) <= KEY_ALLOWED]
    evidence.value("unique keys of dunning_logs over payment_id and rule_id", len(usable),
                   expected="at least 1, valid", source="runbook 003 Sev2: an idempotency key "
                   "stops a step from going out twice")
    if not usable:
        evidence.correction(says="a double send is an idempotency key failure",
                            does="dunning_logs has no idempotency key to fail: the dunning "
                                 "migration creates none, nothing stops a step going out twice")
    assert usable, ("dunning_logs has no valid unique key over (payment_id, rule_id, channel): "
                    "nothing stops the cron from sending a step twice (runbook 003 Sev2 assumes "
                    f"an idempotency key; unique indexes found: {[k['columns'] for k in keys]})")


# Database maintenance ----------------------------------------------------------------------------

@MAINTENANCE
@pytest.mark.needs("external_events_raw", "external_events_normalized")
def test_ro13_event_tables_vacuumed_and_analyzed(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """RO-13: Both event tables were vacuumed and analyzed within the last 7 days."""
    days, source = system_settings.threshold("REVENUEOS_VACUUM_MAX_DAYS")
    rows = something(db.rows(MAINTENANCE_STATS, {"tables": EVENT_TABLES}), "statistics of the event tables")
    overdue = []
    for row in rows:
        late = [f"last {what} {_age(age)}" for what, age in (
            ("vacuum", row["days_since_vacuum"]), ("analyze", row["days_since_analyze"]))
            if age is None or float(age) > days]
        if late and row["autovacuum_off"]:
            late.append("autovacuum switched off on it")
        if late:
            overdue.append(f"{row['table_name']}: {', '.join(late)}")
    none_found(evidence, overdue, f"event tables overdue for VACUUM ANALYZE: {'; '.join(overdue)}",
               f"runbook 003: VACUUM ANALYZE the event tables weekly ({source})")


@MAINTENANCE
@pytest.mark.needs("external_events_raw", "external_events_normalized")
def test_ro14_dead_tuples_under_limit(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """RO-14: Dead tuples are under 0.2 of the live ones on both event tables."""
    limit, source = system_settings.threshold("REVENUEOS_DEAD_TUPLE_RATIO_MAX")
    rows = something(db.rows(DEAD_TUPLES, {"tables": EVENT_TABLES}), "statistics of the event tables")
    for row in rows:
        if row["counted_since_reset"]:
            evidence.note(f"{row['table_name']}: no vacuum or analyze since its counters were reset; "
                          f"live rows estimated from reltuples ({row['estimated_rows']})")
    worst = rows[0]
    at_most(evidence, float(worst["dead_ratio"]), Limit(
        f"dead / live tuples of {worst['table_name']} ({worst['dead']} dead)", limit,
        f"runbook 003 maintenance: vacuum if slow ({source})"))


def _age(days: Any) -> str:
    return "never since its statistics were reset" if days is None else f"{float(days):g} days ago"


def cron_refusal(exchange: Exchange) -> tuple[int, str]:
    """The status and the `error` of a cron route's answer."""
    try:
        error = str(exchange.json_object().get("error", ""))
    except CheckFailed:
        error = exchange.text()[:120]
    return exchange.status, error


def configuration_finding(error: str) -> str:
    return (f"{CRON_SYNC} answered 500 {error!r}: {SECRET_VARIABLE} is not set on the deployment, "
            "so every cron route fails (runbook 003, rotating secrets: update the Vercel "
            "environment variables and redeploy)")


@MAINTENANCE
def test_ro15_cron_routes_refuse_without_secret(api: Api, evidence: Evidence) -> None:
    """RO-15: The cron routes refuse a request without the secret and one with a wrong secret, and
    the secret is set."""
    status, error = cron_refusal(api.get(CRON_SYNC))
    if status != 401:
        raise CheckFailed(f"{CRON_SYNC} without credentials answered {status} {error!r}, expected "
                          "401 'Missing Authorization header': the route is not protected")
    # A token made for this run, never a real secret: with the valid one the route runs a batch.
    status, error = cron_refusal(api.get(CRON_SYNC, headers={
        "Authorization": f"Bearer {secrets.token_urlsafe(24)}"}))
    if status == 500:
        raise CheckFailed(configuration_finding(error))
    if status != 401:
        raise CheckFailed(f"{CRON_SYNC} with a made-up bearer token answered {status} {error!r}, "
                          "expected 401 'Unauthorized': it accepts a token that is not the secret")
    evidence.note(f"refusals as expected: no header and a wrong token both 401 ({error!r})")


@MAINTENANCE
@pytest.mark.side_effect("GET /api/cron/sync with the previous secret runs a sync batch if the "
                         "rotation did not take")
def test_ro16_previous_secret_refused(
    api: Api, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """RO-16: After a rotation, the previous secret no longer opens the cron routes."""
    previous = system_settings.require("REVENUEOS_PREVIOUS_INTERNAL_API_SECRET").value
    exchange = api.get(CRON_SYNC, headers={"Authorization": f"Bearer {previous}"})
    status, error = cron_refusal(exchange)
    if status == 500:
        raise CheckFailed(configuration_finding(error))
    if 200 <= status < 300:
        evidence.note(f"side effect: the request ran a sync batch ({exchange.text()[:120]})")
        raise CheckFailed(f"{CRON_SYNC} accepted REVENUEOS_PREVIOUS_INTERNAL_API_SECRET ({status}): "
                          "the rotation did not reach the deployment (runbook 003, rotating "
                          "secrets steps 2 and 4: update the Vercel environment variable, redeploy)")
    if (status, error) != (401, "Unauthorized"):
        raise CheckFailed(f"{CRON_SYNC} with the previous secret answered {status} {error!r}, "
                          "expected 401 'Unauthorized'")
