"""Runbook 004 (TrendSpark): operations runbooks for seven incidents.

Serves ingestion failures, the real-time stream, Telegram alerts, scheduler jobs, API error
spikes, retention and observability, over the backend and worker's HTTP APIs, their database,
Prometheus (PromQL over its HTTP API, with the queries in the evidence) and Grafana. Timestamps
in the database are naive UTC: windows compare with timezone('utc', now()).
Checklist: runbooks/004-trendspark.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from checks.trendspark import (
    EXPECTED_JOBS,
    bearer,
    by,
    due_within,
    endpoint,
    interval,
    json_list,
    require_prometheus,
    rose_since_start,
    scrape_jobs,
    scraped,
    seconds,
    sources,
    two_scrapes,
    unsettled,
)
from fixtures.contract import assert_contract
from fixtures.errors import NotEvaluated
from fixtures.evidence import Evidence
from fixtures.http import Api
from fixtures.postgres import Connections, ReadOnlyDB
from fixtures.prometheus import Prometheus, scrape_unhealthy
from fixtures.settings import SystemSettings
from fixtures.verdicts import CheckFailed, Limit, at_most, none_found, something

pytestmark = [pytest.mark.system("trendspark")]
RUNBOOK_RUN_PAYLOAD = {"job_id": "ingest_rank"}
RUNBOOK_TOGGLE_PAYLOAD = {"job_id": "ingest_rank", "action": "pause"}
UTC_NOW = "select timezone('utc', now()) as utc_now"
ITEMS_PER_SOURCE = """
select s.source, count(a.id) as items, max(a.fetched_at) as newest
from unnest(%(sources)s::text[]) as s(source)
left join public.ingest_audit a on a.source = s.source
  and a.fetched_at >= timezone('utc', now()) - make_interval(mins => %(window)s)
group by s.source
order by s.source
"""
REFUSED_CREDENTIALS_24H = """
select job_id, run_at, left(detail, 200) as detail from public.job_runs
where status = 'error' and run_at >= timezone('utc', now()) - interval '24 hours'
  and detail ~ '(^|[^0-9])(401|403|429)([^0-9]|$)'
order by run_at desc
limit 20
"""
# The newest Telegram send, walking the time index back from now (no index on channel): it
# stops at the first one, where counting the window's sends would read all of them.
NEWEST_TELEGRAM = """
select max(created_at) as newest,
       extract(epoch from timezone('utc', now()) - max(created_at)) / 3600.0 as hours_since
from (select n.created_at from public.notifications n
      where n.channel = 'telegram'
        and n.created_at >= timezone('utc', now()) - make_interval(hours => 2 * %(hours)s)
      order by n.created_at desc
      limit 1) newest
"""
LAST_RUNS = """
select c.job_id, r.status, r.run_at, left(r.detail, 160) as detail
from (select distinct job_id from public.scheduler_configs) c
cross join lateral (
    select j.status, j.run_at, j.detail from public.job_runs j
    where j.job_id = c.job_id order by j.run_at desc limit %(streak)s
) r
order by c.job_id, r.run_at desc
limit 100
"""
ENABLED_JOBS_LAST_RUN = """
select c.id, c.job_id, c.name, c.cron, last.run_at as last_run, timezone('utc', now()) as utc_now
from public.scheduler_configs c
left join lateral (
    select max(j.run_at) as run_at from public.job_runs j
    where j.job_id = c.job_id and j.run_at >= timezone('utc', now()) - interval '8 days'
) last on true
where c.enabled
order by c.id
limit 50
"""
# Rows past each window, counted through the time index up to PAST_RETENTION_CAP + 1: any is a
# finding, and the count is only evidence, so a year never archived costs what a day does.
PAST_RETENTION_CAP = 1000
ROWS_PAST_RETENTION = f"""
select (select count(*) from (
            select 1 from public.posts
            where collected_at < timezone('utc', now()) - make_interval(days => %(posts)s)
            limit {PAST_RETENTION_CAP + 1}) past) as posts,
       (select count(*) from (
            select 1 from public.ingest_audit
            where fetched_at < timezone('utc', now()) - make_interval(days => %(posts)s)
            limit {PAST_RETENTION_CAP + 1}) past) as ingest_audit,
       (select count(*) from (
            select 1 from public.notifications
            where created_at < timezone('utc', now()) - make_interval(days => %(notifications)s)
            limit {PAST_RETENTION_CAP + 1}) past) as notifications
"""
MAINTAINED = ["posts", "ingest_audit", "notifications", "job_runs"]
VACUUM_STATE = """
select relname as table_name, n_live_tup, n_dead_tup,
       greatest(last_vacuum, last_autovacuum) as vacuumed,
       greatest(last_analyze, last_autoanalyze) as analyzed,
       extract(epoch from now() - greatest(last_vacuum, last_autovacuum)) / 86400.0 as vacuum_days,
       extract(epoch from now() - greatest(last_analyze, last_autoanalyze)) / 86400.0 as analyze_days
from pg_stat_user_tables
where schemaname = 'public' and relname = any(%(tables)s)
order by relname
"""
# Below this many rows a dead-row share says nothing (a few updates of a small table).
DEAD_ROWS_FLOOR = 1000


@pytest.fixture
def worker(request: pytest.FixtureRequest, evidence: Evidence,
           system_settings: SystemSettings) -> Iterator[Api]:
    """The worker's HTTP API (TRENDSPARK_WORKER_URL)."""
    with endpoint(request, evidence, system_settings.require("TRENDSPARK_WORKER_URL").value) as api:
        yield api


@pytest.fixture
def prometheus(request: pytest.FixtureRequest, evidence: Evidence,
               system_settings: SystemSettings) -> Iterator[Prometheus]:
    """Prometheus, or UNKNOWN naming TRENDSPARK_PROMETHEUS_URL when the target has none."""
    url = require_prometheus(system_settings)
    with endpoint(request, evidence, url) as api:
        yield Prometheus(api, evidence, url)


@pytest.fixture
def maybe_prometheus(request: pytest.FixtureRequest, evidence: Evidence,
                     system_settings: SystemSettings) -> Iterator[Prometheus | None]:
    """Prometheus if the target has one; None for the checks two scrapes of /metrics can answer."""
    setting = system_settings.get("TRENDSPARK_PROMETHEUS_URL")
    if setting is None:
        yield None
        return
    with endpoint(request, evidence, setting.value) as api:
        yield Prometheus(api, evidence, setting.value)


@pytest.fixture
def grafana(request: pytest.FixtureRequest, evidence: Evidence,
            system_settings: SystemSettings) -> Iterator[Api]:
    with endpoint(request, evidence, system_settings.require("TRENDSPARK_GRAFANA_URL").value) as api:
        yield api


def _utc_now(db: ReadOnlyDB) -> datetime:
    now: datetime = db.scalar(UTC_NOW)
    return now


def _health(api: Api) -> dict[str, object]:
    exchange = api.get("/health")
    exchange.expect_status(200, source="the backend's /health always answers 200 when it runs")
    return exchange.json_object()


def _service(health: dict[str, object], name: str) -> dict[str, object]:
    services = health.get("services")
    found = services.get(name) if isinstance(services, dict) else None
    if not isinstance(found, dict):
        raise CheckFailed(f"/health has no services.{name} object: {json.dumps(health)[:200]}")
    return found


def _jobs(api: Api, system_settings: SystemSettings) -> list[dict[str, object]]:
    exchange = api.get("/scheduler/jobs", headers=bearer(system_settings, "TRENDSPARK_ADMIN_TOKEN"))
    exchange.expect_status(200, source="runbook 004 scheduler step 1")
    return [job for job in json_list(exchange) if isinstance(job, dict)]


def _config_of(jobs: list[dict[str, object]], job_id: str) -> dict[str, object]:
    found = [job for job in jobs if job.get("job_id") == job_id]
    if not found:
        raise CheckFailed(f"/scheduler/jobs lists no {job_id} config (runbook 004 expects it)")
    return found[0]


# Ingestion failures ------------------------------------------------------------------------------

@pytest.mark.trendspark_ingest
@pytest.mark.trendspark_stream
@pytest.mark.telegram_alerts
@pytest.mark.scheduler_jobs
@pytest.mark.api_errors
@pytest.mark.retention
@pytest.mark.observability
def test_ts0_schema_contract_holds(
    db: ReadOnlyDB, pg_connections: Connections, request: pytest.FixtureRequest, evidence: Evidence
) -> None:
    """TS-0: The tables and columns the checks rely on exist (SQLAlchemy's create_all shape)."""
    assert_contract(pg_connections.catalog("trendspark"), request, evidence)


@pytest.mark.trendspark_ingest
def test_ts1_worker_and_database_healthy(api: Api, worker: Api, evidence: Evidence) -> None:
    """TS-1: The backend's health reports the worker and the database healthy, and the worker's
    own health is ok with jobs scheduled."""
    health = _health(api)
    if "worker" not in health:
        evidence.correction(says="the symptom is /health showing worker.ok=false",
                            does="/health has no top-level worker: the field is services.worker.ok "
                                 "(with services.database.ok and services.telegram.ok)")
    problems = []
    for name in ("worker", "database"):
        service = _service(health, name)
        evidence.value(f"services.{name}.ok", service.get("ok"), expected="true",
                       source="the backend's /health")
        if service.get("ok") is not True:
            problems.append(f"services.{name}.ok is {service.get('ok')!r} ({service.get('detail')})")
    evidence.note(f"overall ok: {health.get('ok')!r} (it also needs Telegram: TS-9)")
    own = worker.get("/health")
    if own.status != 200:
        problems.append(f"the worker's /health answered {own.status}")
    else:
        body = own.json_object()
        evidence.value("worker /health jobs", body.get("jobs"), expected="at least 1",
                       source="the worker's APScheduler jobs")
        if body.get("ok") is not True or not isinstance(body.get("jobs"), int) or body["jobs"] < 1:
            problems.append(f"the worker's /health says ok={body.get('ok')!r}, jobs={body.get('jobs')!r}")
    assert not problems, "; ".join(problems) + " (runbook 004 ingestion symptom)"


@pytest.mark.trendspark_ingest
def test_ts2_items_counter_rose_per_source(
    maybe_prometheus: Prometheus | None, worker: Api, evidence: Evidence,
    system_settings: SystemSettings,
) -> None:
    """TS-2: Every enabled source's items counter rose over the ingest window (60 minutes)."""
    window, source = system_settings.threshold("TRENDSPARK_INGEST_WINDOW_MINUTES")
    wanted = sources(system_settings)
    if maybe_prometheus is not None:
        job = scrape_jobs(system_settings)["worker"]
        scraped(maybe_prometheus, job)
        rose = by(maybe_prometheus.increase(f'trendspark_ingest_items_total{{job="{job}"}}',
                                            f"{window:g}m", ("source",)), "source")
    else:
        gap, _ = system_settings.threshold("TRENDSPARK_SCRAPE_GAP_SECONDS")
        scrapes = two_scrapes(worker, evidence, system_settings, gap)
        rose = rose_since_start(scrapes, "trendspark_ingest_items_total", "source",
                                timedelta(minutes=window))
        if any(rose.get(s, 0) <= 0 for s in wanted):
            raise unsettled("trendspark_ingest_items_total of " + ", ".join(wanted), scrapes, window)
    for name in wanted:
        evidence.value(f"items ingested from {name} in {window:g} min", rose.get(name, 0.0),
                       expected="more than 0", source=source)
    flat = [name for name in wanted if rose.get(name, 0.0) <= 0]
    if flat and maybe_prometheus is not None:  # the flat counters' own samples, as evidence
        job = scrape_jobs(system_settings)["worker"]
        shown = "|".join(flat)
        maybe_prometheus.samples(f'trendspark_ingest_items_total{{job="{job}",source=~"{shown}"}}',
                                 f"{window:g}m")
    assert not flat, (f"trendspark_ingest_items_total did not rise for {', '.join(flat)} in "
                      f"{window:g} min (runbook 004: the counter flatlines; {source})")


@pytest.mark.trendspark_ingest
@pytest.mark.needs("ingest_audit.source", "ingest_audit.fetched_at", "job_runs.detail")
def test_ts4_every_source_wrote_audit_rows(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """TS-4: Every enabled source wrote audit rows within the ingest window (60 minutes), and no
    job failed on a refused credential or a rate limit in 24 hours."""
    window, source = system_settings.threshold("TRENDSPARK_INGEST_WINDOW_MINUTES")
    rows = something(db.rows(ITEMS_PER_SOURCE, {"sources": sources(system_settings),
                                                "window": window}), "an enabled source")
    quiet = [r["source"] for r in rows if r["items"] == 0]
    refused = db.rows(REFUSED_CREDENTIALS_24H)
    none_found(evidence, refused, "job errors naming 401, 403 or 429 in 24 h",
               "runbook 004 ingestion step 2: credentials, rate limits, bans")
    none_found(evidence, quiet, f"enabled sources without ingest_audit rows in {window:g} min: "
               + ", ".join(quiet), source)


@pytest.mark.trendspark_ingest
def test_ts5_ingest_rank_enabled(api: Api, evidence: Evidence,
                                 system_settings: SystemSettings) -> None:
    """TS-5: The ingest_rank job is configured and enabled, so a manual run can be queued."""
    config = _config_of(_jobs(api, system_settings), "ingest_rank")
    evidence.correction(says='a manual run posts {"job_id": "ingest_rank"} to /scheduler/run',
                        does=f'the scheduler takes {{"config_id": {config.get("config_id")}}}; '
                             "the runbook's payload gets 422")
    evidence.value("ingest_rank enabled", config.get("enabled"), expected="true",
                   source="runbook 004 ingestion step 3 (manual run)")
    assert config.get("enabled") is True, (
        f"ingest_rank (config {config.get('config_id')}) is paused: it runs only when triggered")


@pytest.mark.trendspark_ingest
@pytest.mark.side_effect("queues a run of ingest_rank on the worker (it fetches and may alert)")
def test_ts5b_manual_run_is_queued(worker: Api, evidence: Evidence,
                                   system_settings: SystemSettings) -> None:
    """TS-5b: A manual run of ingest_rank is queued with the payload the worker takes."""
    admin = bearer(system_settings, "TRENDSPARK_ADMIN_TOKEN")
    config = _config_of(_jobs(worker, system_settings), "ingest_rank")
    wrong = worker.post("/scheduler/run", headers=admin, json_body=RUNBOOK_RUN_PAYLOAD)
    if wrong.status == 422:
        evidence.correction(says='curl -X POST .../scheduler/run -d \'{"job_id": "ingest_rank"}\'',
                            does=f'that payload gets 422; send {{"config_id": {config["config_id"]}}}')
    queued = worker.post("/scheduler/run", headers=admin,
                         json_body={"config_id": config["config_id"]})
    queued.expect_status(202, source="the worker queues a manual run and answers 202")
    assert queued.json_object().get("queued") is True, f"not queued: {queued.text()[:200]}"


@pytest.mark.trendspark_ingest
def test_ts6_ingest_audit_recent_per_source(
    api: Api, db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """TS-6: The ingest audit shows recent rows from every enabled source (60 minutes)."""
    window, source = system_settings.threshold("TRENDSPARK_INGEST_WINDOW_MINUTES")
    now = _utc_now(db)
    exchange = api.get("/ingest/audit", params={"limit": "500"},
                       headers=bearer(system_settings, "TRENDSPARK_API_TOKEN"))
    exchange.expect_status(200, source="runbook 004 ingestion fallback: /ingest/audit")
    rows = [r for r in json_list(exchange) if isinstance(r, dict) and r.get("fetched_at")]
    recent = [r for r in rows if datetime.fromisoformat(str(r["fetched_at"]))
              >= now - timedelta(minutes=window)]
    evidence.value(f"audit rows in the last {window:g} min (of the newest 500)", len(recent),
                   expected="rows from every enabled source", source=source)
    missing = [name for name in sources(system_settings)
               if not any(r.get("source") == name for r in recent)]
    newest = max((str(r["fetched_at"]) for r in rows), default="none")
    assert not missing, (f"/ingest/audit has no row from {', '.join(missing)} in the last "
                         f"{window:g} min (newest row of any source: {newest}; {source})")


# Real-time stream --------------------------------------------------------------------------------

@pytest.mark.trendspark_stream
def test_ts7_stream_has_rules(api: Api, evidence: Evidence, system_settings: SystemSettings) -> None:
    """TS-7: With the X stream enabled, stream rules are configured."""
    enabled = _health(api).get("stream_enabled")
    exchange = api.get("/stream/rules", headers=bearer(system_settings, "TRENDSPARK_API_TOKEN"))
    exchange.expect_status(200, source="runbook 004 stream step 1: GET /stream/rules")
    rules = json_list(exchange)
    evidence.value("stream rules", len(rules), expected="at least 1 while stream_enabled",
                   source=f"/health stream_enabled={enabled!r}")
    if enabled is not True:
        evidence.note("the stream is disabled: rules are not needed")
        return
    assert rules, "the X stream is enabled but has no rules: it delivers nothing (runbook 004)"


# Telegram alerts -------------------------------------------------------------------------------

@pytest.mark.telegram_alerts
def test_ts9_telegram_configured(api: Api, evidence: Evidence) -> None:
    """TS-9: Telegram is configured and the bot answers."""
    telegram = _service(_health(api), "telegram")
    evidence.value("services.telegram.ok", telegram.get("ok"), expected="true",
                   source="runbook 004 Telegram step 1 (a live getMe; nothing is sent)")
    assert telegram.get("ok") is True, f"services.telegram.ok is {telegram.get('ok')!r}: " \
        f"{telegram.get('detail')}"


@pytest.mark.telegram_alerts
@pytest.mark.needs("notifications.channel", "notifications.created_at")
def test_ts10_telegram_delivered_recently(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """TS-10: A Telegram message was delivered within the last day (24 hours)."""
    hours, source = system_settings.threshold("TRENDSPARK_TELEGRAM_SILENCE_MAX_HOURS")
    newest = db.one(NEWEST_TELEGRAM, {"hours": hours})
    if newest["newest"] is None:
        raise CheckFailed(f"no Telegram message was delivered in {2 * hours:g} h (only accepted "
                          f"sends are stored; {source})")
    at_most(evidence, round(float(newest["hours_since"]), 2),
            Limit("hours since the newest delivered Telegram message", hours, source, unit=" h"))


@pytest.mark.telegram_alerts
def test_ts10b_no_telegram_delivery_failed(
    maybe_prometheus: Prometheus | None, worker: Api, evidence: Evidence,
    system_settings: SystemSettings,
) -> None:
    """TS-10b: No Telegram delivery failed over the ingest window (60 minutes)."""
    window, source = system_settings.threshold("TRENDSPARK_INGEST_WINDOW_MINUTES")
    errors = {"channel": "telegram", "status": "error"}
    if maybe_prometheus is not None:
        job = scrape_jobs(system_settings)["worker"]
        scraped(maybe_prometheus, job)
        failed = by(maybe_prometheus.increase(
            f'trendspark_alert_delivery_total{{job="{job}",channel="telegram",status="error"}}',
            f"{window:g}m", ("category",)), "category")
    else:
        gap, _ = system_settings.threshold("TRENDSPARK_SCRAPE_GAP_SECONDS")
        scrapes = two_scrapes(worker, evidence, system_settings, gap)
        since_start = by(scrapes.second.total("trendspark_alert_delivery_total", errors), "category")
        failed = {k: v for k, v in since_start.items() if v > 0}
        if failed and not rose_since_start(scrapes, "trendspark_alert_delivery_total", "category",
                                           timedelta(minutes=window), errors):
            raise unsettled("failed Telegram deliveries since the worker started", scrapes, window)
    failed = {k: v for k, v in failed.items() if v > 0}
    none_found(evidence, int(sum(failed.values())),
               f"failed Telegram deliveries in {window:g} min ({', '.join(failed) or 'none'})",
               f"runbook 004 Telegram step 2: warnings instead of telegram.sent; {source}")


@pytest.mark.telegram_alerts
@pytest.mark.side_effect("sends a test message to the alert chat on Telegram")
def test_ts11_test_message_delivered(request: pytest.FixtureRequest, evidence: Evidence,
                                     system_settings: SystemSettings) -> None:
    """TS-11: A test message reaches the alert chat."""
    base, _ = system_settings.text("TRENDSPARK_TELEGRAM_API_URL", "https://api.telegram.org")
    token = system_settings.require("TRENDSPARK_TELEGRAM_BOT_TOKEN").value
    chat = system_settings.require("TRENDSPARK_TELEGRAM_CHAT_ID").value
    with endpoint(request, evidence, base) as telegram:
        # The Bot API puts the token in the path; the report masks it as every secret.
        sent = telegram.post(f"/bot{token}/sendMessage", json_body={
            "chat_id": chat, "text": "runbook-checks TS-11: test alert, please ignore"})
    body = sent.json_object()
    assert sent.status == 200 and body.get("ok") is True, (
        f"Telegram refused the test message: {sent.status} {body.get('description')} "
        "(runbook 004 Telegram step 3)")


# Scheduler / job failures -------------------------------------------------------------------------

@pytest.mark.scheduler_jobs
def test_ts12_no_job_paused_or_unscheduled(api: Api, evidence: Evidence,
                                           system_settings: SystemSettings) -> None:
    """TS-12: No scheduled job is paused or lacks a next run."""
    jobs = _jobs(api, system_settings)
    problems = []
    for job_id in EXPECTED_JOBS:
        found = [j for j in jobs if j.get("job_id") == job_id]
        if not found:
            problems.append(f"{job_id} is not configured")
        for job in found:
            if job.get("paused") is not False or not job.get("next_run"):
                problems.append(f"{job_id} (config {job.get('config_id')}) paused="
                                f"{job.get('paused')!r}, next_run={job.get('next_run')!r}")
    none_found(evidence, problems, "jobs paused, unscheduled or missing: " + "; ".join(problems),
               "runbook 004 scheduler step 1")


@pytest.mark.scheduler_jobs
@pytest.mark.needs("job_runs.status", "job_runs.run_at", "scheduler_configs.job_id")
def test_ts13_no_job_failing_repeatedly(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """TS-13: No job's last three runs all failed."""
    streak, source = system_settings.threshold("TRENDSPARK_JOB_FAILURE_STREAK")
    rows = something(db.rows(LAST_RUNS, {"streak": int(streak)}), "runs of the configured jobs")
    failing = []
    for job_id in sorted({r["job_id"] for r in rows}):
        last = [r for r in rows if r["job_id"] == job_id]
        if len(last) == int(streak) and all(r["status"] == "error" for r in last):
            failing.append(f"{job_id} (last error at {last[0]['run_at']}: {last[0]['detail']})")
    none_found(evidence, failing, f"jobs whose last {int(streak)} runs all failed: "
               + "; ".join(failing), f"the app's own job alert; {source}")


@pytest.mark.scheduler_jobs
@pytest.mark.needs("scheduler_configs.cron", "scheduler_configs.enabled", "job_runs.run_at")
def test_ts13b_enabled_jobs_ran_recently(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """TS-13b: Every enabled job ran within twice its cron interval."""
    factor, source = system_settings.threshold("TRENDSPARK_JOB_LATE_FACTOR")
    configs = something(db.rows(ENABLED_JOBS_LAST_RUN), "an enabled scheduler config")
    late = []
    for row in configs:
        allowed = interval(row["cron"], row["utc_now"]) * factor
        last = row["last_run"]
        evidence.value(f"{row['job_id']} last run", last, expected=f"within {allowed}",
                       source=f"cron {row['cron']!r}; {source}")
        if last is None or row["utc_now"] - last > allowed:
            late.append(f"{row['job_id']} (cron {row['cron']!r}) last ran {last or 'never (8 days)'}")
    none_found(evidence, late, "enabled jobs without a run in twice their interval: "
               + "; ".join(late), source)


@pytest.mark.scheduler_jobs
def test_ts14_prometheus_counted_due_runs(
    prometheus: Prometheus, db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """TS-14: Prometheus counted a run of every enabled job that was due in the window
    (60 minutes)."""
    window, source = system_settings.threshold("TRENDSPARK_INGEST_WINDOW_MINUTES")
    job = scrape_jobs(system_settings)["worker"]
    scraped(prometheus, job)
    evidence.correction(says="check job_runs (or metrics) for failure details",
                        does="trendspark_job_runs_total has no error outcome (a failed run counts "
                             "as ok, noop or no_ideas) and its job label arrives as exported_job: "
                             "failures are only in job_runs")
    counted = by(prometheus.increase(f'trendspark_job_runs_total{{job="{job}"}}', f"{window:g}m",
                                     ("exported_job",)), "exported_job")
    configs = something(db.rows(ENABLED_JOBS_LAST_RUN), "an enabled scheduler config")
    missing = []
    for row in configs:
        fired = due_within(row["cron"], row["utc_now"], timedelta(minutes=window))
        if fired is None:
            continue
        evidence.value(f"runs of {row['job_id']} counted in {window:g} min",
                       counted.get(row["job_id"], 0.0), expected=f"more than 0 (due {fired})",
                       source=f"cron {row['cron']!r}")
        if counted.get(row["job_id"], 0.0) <= 0:
            missing.append(f"{row['job_id']} (due {fired})")
    none_found(evidence, missing, f"due jobs without a counted run in {window:g} min: "
               + ", ".join(missing), source)


@pytest.mark.scheduler_jobs
def test_ts14b_job_duration_p95_under_limit(
    prometheus: Prometheus, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """TS-14b: The jobs' 95th percentile duration over 60 minutes is under the limit (120 s)."""
    window, _ = system_settings.threshold("TRENDSPARK_INGEST_WINDOW_MINUTES")
    limit, source = system_settings.threshold("TRENDSPARK_JOB_DURATION_MAX_SECONDS")
    job = scrape_jobs(system_settings)["worker"]
    scraped(prometheus, job)
    answer = prometheus.query(
        "histogram_quantile(0.95, sum by (le, exported_job) (increase("
        f'trendspark_job_duration_seconds_bucket{{job="{job}"}}[{window:g}m])))')
    p95 = {dict(k).get("exported_job", "?"): v for k, v in answer.series.items() if v == v}
    if not p95:
        raise CheckFailed(f"no job finished in {window:g} min: no duration to judge "
                          "(TS-13b names the jobs that did not run)")
    slow = {name: value for name, value in p95.items() if value > limit}
    for name, value in sorted(p95.items()):
        evidence.value(f"p95 duration of {name}", round(value, 1), expected=f"at most {limit:g} s",
                       source=source, unit=" s")
    none_found(evidence, list(slow), "jobs with a p95 duration over "
               f"{limit:g} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in slow.items()), source)


@pytest.mark.scheduler_jobs
@pytest.mark.side_effect("pauses ingest_rank and resumes it at once (or the reverse if it is paused)")
def test_ts15_job_pause_and_resume(api: Api, evidence: Evidence,
                                   system_settings: SystemSettings) -> None:
    """TS-15: A job can be paused and resumed with the payload the scheduler takes."""
    admin = bearer(system_settings, "TRENDSPARK_ADMIN_TOKEN")
    config = _config_of(_jobs(api, system_settings), "ingest_rank")
    wrong = api.post("/scheduler/toggle", headers=admin, json_body=RUNBOOK_TOGGLE_PAYLOAD)
    if wrong.status == 422:
        evidence.correction(says='pause with {"job_id": "ingest_rank", "action": "pause"}',
                            does=f'that payload gets 422; send {{"config_id": {config["config_id"]}, '
                                 '"action": "pause"}')
    # Leave the job as it was found: pause then resume, or resume then pause a paused one.
    actions = ("pause", "resume") if config.get("paused") is False else ("resume", "pause")
    for action in actions:
        toggled = api.post("/scheduler/toggle", headers=admin,
                           json_body={"config_id": config["config_id"], "action": action})
        toggled.expect_status(200, source="runbook 004 scheduler step 5")
        seen = _config_of(_jobs(api, system_settings), "ingest_rank").get("paused")
        assert seen is (action == "pause"), f"after {action}, /scheduler/jobs says paused={seen!r}"


# API error spikes --------------------------------------------------------------------------------

@pytest.mark.api_errors
def test_ts16_server_errors_under_alert_threshold(
    maybe_prometheus: Prometheus | None, api: Api, worker: Api, evidence: Evidence,
    system_settings: SystemSettings,
) -> None:
    """TS-16: Each app answered fewer than 5 responses of 500 and above in the last 5 minutes."""
    count, source = system_settings.threshold("TRENDSPARK_API_ERROR_ALERT_COUNT")
    minutes, _ = system_settings.threshold("TRENDSPARK_API_ERROR_WINDOW_MINUTES")
    jobs = scrape_jobs(system_settings)
    seen: dict[str, float] = {}
    unknown: list[str] = []
    if maybe_prometheus is not None:
        targets = {t.job: t for t in maybe_prometheus.targets()}
        for app, job in jobs.items():
            if job not in targets or targets[job].health != "up":
                unknown.append(f"{app}: Prometheus does not scrape {job} (TS-21b)")
                continue
            totals = maybe_prometheus.increase(f'http_requests_total{{job="{job}",status="5xx"}}',
                                               f"{minutes:g}m", ())
            seen[app] = sum(totals.values())
    else:
        for app, endpoint_api in (("backend", api), ("worker", worker)):
            scrapes = two_scrapes(endpoint_api, evidence, system_settings, 0)
            total = sum(scrapes.second.total("http_requests_total", {"status": "5xx"}).values())
            if total < count:
                seen[app] = total  # fewer since the process started: fewer in any window
                evidence.note(f"{app}: {total:g} 5xx since it started, so fewer in any window")
            else:
                unknown.append(f"{app}: {total:g} 5xx since it started; the {minutes:g}-minute "
                               "window needs Prometheus (TRENDSPARK_PROMETHEUS_URL is not set)")
    for app, value in seen.items():
        evidence.value(f"{app} 5xx responses in {minutes:g} min", round(value, 1),
                       expected=f"fewer than {count:g}", source=source)
    over = [f"{app} {value:.0f}" for app, value in seen.items() if value >= count]
    assert not over, (f"5xx responses in {minutes:g} min at or above the app's alert threshold "
                      f"of {count:g}: {', '.join(over)} (runbook 004 API error spikes; {source})")
    if unknown:
        raise NotEvaluated("not evaluated for " + "; ".join(unknown))


# Retention ---------------------------------------------------------------------------------------

@pytest.mark.retention
@pytest.mark.needs("posts.collected_at", "ingest_audit.fetched_at", "notifications.created_at")
def test_ts18_nothing_outlives_retention(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """TS-18: Nothing outlives its retention window: posts and the ingest audit 45 days,
    notifications 90 days."""
    posts, posts_source = system_settings.threshold("TRENDSPARK_POSTS_RETENTION_DAYS")
    notes, notes_source = system_settings.threshold("TRENDSPARK_NOTIFICATIONS_RETENTION_DAYS")
    counted = db.one(ROWS_PAST_RETENTION, {"posts": posts, "notifications": notes})
    old = {table: (f"more than {PAST_RETENTION_CAP}" if n > PAST_RETENTION_CAP else n)
           for table, n in counted.items()}
    found = {table: n for table, n in old.items() if n}
    for table, n in old.items():
        evidence.value(f"{table} rows past retention", n, expected="0",
                       source=notes_source if table == "notifications" else posts_source)
    none_found(evidence, list(found), "tables with rows past their retention windows ("
               + ", ".join(f"{t} {n}" for t, n in found.items()) + "; the archive workflow is manual)",
               f"runbook 004 retention: {posts:g} days, notifications {notes:g} days")


@pytest.mark.retention
def test_ts20_tables_vacuumed_within_week(
    db: ReadOnlyDB, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """TS-20: The busy tables were vacuumed and analyzed within 7 days, with dead rows under 20 %."""
    days, source = system_settings.threshold("TRENDSPARK_VACUUM_MAX_DAYS")
    ratio, ratio_source = system_settings.threshold("TRENDSPARK_DEAD_TUPLE_RATIO_MAX")
    rows = something(db.rows(VACUUM_STATE, {"tables": MAINTAINED}), "the tables' statistics")
    problems = []
    for row in rows:
        for what in ("vacuum", "analyze"):
            age = row[f"{what}_days"]
            if age is None or age > days:
                problems.append(f"{row['table_name']}: last {what} "
                                + ("never recorded" if age is None else f"{age:.1f} days ago"))
        total = row["n_live_tup"] + row["n_dead_tup"]
        if total >= DEAD_ROWS_FLOOR and row["n_dead_tup"] / total > ratio:
            problems.append(f"{row['table_name']}: {row['n_dead_tup']} dead of {total} rows")
    none_found(evidence, problems, "tables behind on VACUUM ANALYZE: " + "; ".join(problems),
               f"runbook 004: weekly VACUUM ANALYZE ({source}; {ratio_source})")


# Prometheus and Grafana --------------------------------------------------------------------------

@pytest.mark.observability
def test_ts21_prometheus_ready(prometheus: Prometheus) -> None:
    """TS-21: Prometheus is up and ready."""
    prometheus.ready().expect_status(200, source="runbook 004: the Prometheus UI answers")


@pytest.mark.observability
def test_ts21b_both_apps_scraped(prometheus: Prometheus, evidence: Evidence,
                                 system_settings: SystemSettings) -> None:
    """TS-21b: Prometheus scrapes both apps."""
    bad = scrape_unhealthy(prometheus.targets(), tuple(scrape_jobs(system_settings).values()))
    if any("401" in t.last_error for t in bad):
        evidence.correction(says="the shipped prometheus.yml scrapes backend:8000 and worker:9000",
                            does="/metrics needs a token on both apps: without `authorization` in "
                                 "the scrape config both targets answer 401")
    none_found(evidence, bad, "targets not up: " + "; ".join(t.describe() for t in bad),
               "runbook 004: verify the worker metrics in Prometheus")


@pytest.mark.observability
def test_ts21c_worker_metrics_fresh(prometheus: Prometheus, evidence: Evidence,
                                    system_settings: SystemSettings) -> None:
    """TS-21c: The worker's metrics are fresh in Prometheus."""
    job = scrape_jobs(system_settings)["worker"]
    fresh = prometheus.query(f'trendspark_ingest_cycles_total{{job="{job}"}}')
    rate = prometheus.query("rate(trendspark_ingest_items_total[5m])")
    p95 = prometheus.query("histogram_quantile(0.95, sum by (le,job)"
                           "(rate(trendspark_job_duration_seconds_bucket[5m])))")
    evidence.correction(
        says="rate(trendspark_ingest_items_total[5m]) and histogram_quantile(0.95, sum by (le,job)"
             "(rate(trendspark_job_duration_seconds_bucket[5m]))) verify the worker metrics",
        does=f"ingest runs every 30 minutes, so a 5-minute rate is 0 or empty most of the time "
             f"({len(rate.series)} series now), and `job` is the scrape job: the app's job label is "
             f"exported_job ({len(p95.series)} series, NaN without a run in 5 minutes); use "
             "increase over the ingest window, by exported_job")
    evidence.value("fresh trendspark_ingest_cycles_total series", len(fresh.series),
                   expected="at least 1", source="the worker exports it from its start")
    assert fresh.series, (f"no fresh trendspark_* metric of {job} in Prometheus: "
                          "trendspark_ingest_cycles_total is absent (runbook 004: verify worker metrics)")


@pytest.mark.observability
def test_ts22_grafana_healthy_with_dashboards(grafana: Api, evidence: Evidence,
                                              system_settings: SystemSettings) -> None:
    """TS-22: Grafana is healthy and has its dashboards."""
    evidence.correction(says="Grafana: http://localhost:3000 (admin/admin)",
                        does="that is the image's default admin password, printed in the runbook: "
                             "a security finding wherever it still works. The checks use a "
                             "service account token (TRENDSPARK_GRAFANA_TOKEN) and never log in "
                             "with it; TS-22b asks a person to confirm it was changed")
    health = grafana.get("/api/health")
    health.expect_status(200, source="runbook 004: Grafana reachable")
    database = health.json_object().get("database")
    assert database == "ok", f"Grafana's /api/health says database={database!r}"
    search = grafana.get("/api/search", params={"type": "dash-db"},
                         headers=bearer(system_settings, "TRENDSPARK_GRAFANA_TOKEN"))
    search.expect_status(200, source="runbook 004: Grafana dashboards")
    dashboards = json_list(search)
    evidence.value("dashboards", len(dashboards), expected="at least 1",
                   source="runbook 004: ingest overview, alert delivery, OpenAI usage, job duration")
    assert dashboards, "Grafana has no dashboards (runbook 004 lists four)"


@pytest.mark.observability
def test_ts23_grafana_alert_rules_provisioned(grafana: Api, evidence: Evidence,
                                              system_settings: SystemSettings) -> None:
    """TS-23: Grafana alert rules are provisioned."""
    rules = grafana.get("/api/v1/provisioning/alert-rules",
                        headers=bearer(system_settings, "TRENDSPARK_GRAFANA_TOKEN"))
    rules.expect_status(200, source="runbook 004: Grafana alert rules")
    found = json_list(rules)
    evidence.value("alert rules", len(found), expected="at least 1",
                   source="runbook 004: alerts on backlog, errors and stalled ingestion")
    assert found, "Grafana has no alert rules: backlog, errors and stalls alert nobody"


@pytest.mark.observability
def test_ts24_prometheus_retention_as_configured(
    prometheus: Prometheus, evidence: Evidence, system_settings: SystemSettings
) -> None:
    """TS-24: Prometheus keeps its data as long as configured."""
    expected, source = system_settings.text("TRENDSPARK_PROMETHEUS_RETENTION", "15d")
    flag = prometheus.flags().get("storage.tsdb.retention.time", "")
    # Unset, the flag reads 0s and Prometheus keeps 15 days.
    effective = "15d" if flag in ("", "0s") else flag
    evidence.value("storage.tsdb.retention.time", flag, expected=expected, source=source)
    assert seconds(effective) == seconds(expected), (
        f"Prometheus keeps {effective} (flag {flag!r}), configured {expected} ({source})")
