"""A look at what each TrendSpark fault breaks, at the source (the database as the superuser, the
apps, the stubs and Prometheus over HTTP): True when healthy. And what a heal may leave behind.
"""

from __future__ import annotations

import httpx

from sandbox.kit import sql_probe
from sandbox.system import Context
from sandbox.trendspark import prometheus
from sandbox.trendspark.incidents import DEAD_SOURCE, FAILING_JOB, PAUSED_JOB, STASH
from sandbox.trendspark.ingest_faults import MARK, VACUUMED
from sandbox.trendspark.jobs import SOURCES
from sandbox.trendspark.platform_faults import DELIVERY_ERRORS, SERVER_ERRORS
from sandbox.trendspark.settings import GRAFANA_TOKEN, VIEWER_TOKEN

HTTP_TIMEOUT = 15.0
SOURCE_INGESTED = """
    SELECT count(DISTINCT source) = %s FROM public.ingest_audit
    WHERE fetched_at >= timezone('utc', now()) - interval '60 minutes' AND source = ANY(%s)
"""
LEFTOVERS = f"""
    SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = '{STASH}')
         + (SELECT count(*) FROM public.ingest_audit WHERE summary = %(mark)s)
         + (SELECT count(*) FROM public.posts WHERE text = %(mark)s)
         + (SELECT count(*) FROM public.notifications WHERE message = %(mark)s)
         + (SELECT count(*) FROM public.job_runs WHERE detail LIKE '%%' || %(mark)s || '%%')
         + (SELECT count(*) FROM public.scheduler_configs WHERE NOT enabled)
"""


def _health(ctx: Context) -> dict[str, object]:
    with httpx.Client(base_url=ctx.url("app"), timeout=HTTP_TIMEOUT, trust_env=False) as client:
        reply = client.get("/health")
    services: dict[str, object] = reply.json()["services"]
    return services


def worker_answers(ctx: Context) -> bool:
    with httpx.Client(base_url=ctx.url("worker"), timeout=HTTP_TIMEOUT, trust_env=False) as client:
        worker = client.get("/health").status_code == 200
    return worker and _health(ctx)["worker"]["ok"] is True  # type: ignore[index]


def telegram_configured(ctx: Context) -> bool:
    return _health(ctx)["telegram"]["ok"] is True  # type: ignore[index]


def few_server_errors(ctx: Context) -> bool:
    """Fewer than five backend 5xx in Prometheus's last 5 minutes."""
    return (prometheus.value(ctx, SERVER_ERRORS) or 0.0) < 5


def telegram_delivers(ctx: Context) -> bool:
    """No failed delivery in Prometheus, and a notification stored in the last day."""
    failed = prometheus.value(ctx, DELIVERY_ERRORS) if prometheus.NAME in ctx.system.processes \
        else None
    return not failed and _notified_today(ctx)


_notified_today = sql_probe(
    "SELECT count(*) > 0 FROM public.notifications WHERE channel = 'telegram'"
    " AND created_at >= timezone('utc', now()) - interval '24 hours'")


def targets_up(ctx: Context) -> bool:
    found = prometheus.targets(ctx)
    return len(found) == 2 and all(t.get("health") == "up" for t in found)


def prometheus_ready(ctx: Context) -> bool:
    try:
        with httpx.Client(base_url=prometheus.url(ctx), timeout=5, trust_env=False) as client:
            return client.get("/-/ready").status_code == 200
    except httpx.HTTPError:
        return False


def grafana_provisioned(ctx: Context) -> bool:
    headers = {"Authorization": f"Bearer {ctx.settings[GRAFANA_TOKEN]}"}
    with httpx.Client(base_url=ctx.url("grafana"), timeout=HTTP_TIMEOUT, trust_env=False) as client:
        return bool(client.get("/api/v1/provisioning/alert-rules", headers=headers).json())


def stream_rules_listed(ctx: Context) -> bool:
    headers = {"Authorization": f"Bearer {ctx.settings[VIEWER_TOKEN]}"}
    with httpx.Client(base_url=ctx.url("app"), timeout=HTTP_TIMEOUT, trust_env=False) as client:
        return bool(client.get("/stream/rules", headers=headers).json())


every_source_ingests = sql_probe(SOURCE_INGESTED, len(SOURCES), list(SOURCES))
dead_source_ingests = sql_probe(SOURCE_INGESTED, 1, [DEAD_SOURCE])
job_not_failing = sql_probe(
    "SELECT count(*) < 3 OR bool_or(status <> 'error') FROM (SELECT status FROM public.job_runs"
    " WHERE job_id = %s ORDER BY run_at DESC LIMIT 3) last", FAILING_JOB)
job_enabled = sql_probe("SELECT enabled FROM public.scheduler_configs WHERE job_id = %s", PAUSED_JOB)
within_retention = sql_probe(
    "SELECT NOT EXISTS (SELECT 1 FROM public.ingest_audit"
    "                   WHERE fetched_at < timezone('utc', now()) - interval '45 days')"
    " AND NOT EXISTS (SELECT 1 FROM public.posts"
    "                 WHERE collected_at < timezone('utc', now()) - interval '45 days')"
    " AND NOT EXISTS (SELECT 1 FROM public.notifications"
    "                 WHERE created_at < timezone('utc', now()) - interval '90 days')")
vacuumed = sql_probe(
    "SELECT coalesce(greatest(s.last_vacuum, s.last_autovacuum) > now() - interval '7 days', false)"
    " AND NOT coalesce('autovacuum_enabled=false' = ANY(c.reloptions), false)"
    " FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
    " WHERE s.schemaname = 'public' AND s.relname = %s", VACUUMED)


audit_column_named = sql_probe(
    "SELECT count(*) = 1 FROM information_schema.columns WHERE table_schema = 'public'"
    " AND table_name = 'ingest_audit' AND column_name = 'fetched_at'")


def leftovers(ctx: Context) -> list[str]:
    """The stash, rows a fault marked, a paused job; a source or a job left behind; Prometheus
    not scraping both apps."""
    found = []
    with ctx.superuser() as conn:
        marked = conn.execute(LEFTOVERS, {"mark": MARK}).fetchone()
    if marked and marked[0]:
        found.append(f"{marked[0]} fault rows, paused jobs or the {STASH} schema left behind")
    if not every_source_ingests(ctx):
        found.append("a source has written no ingest_audit row in the last 60 minutes")
    if not job_not_failing(ctx):
        found.append(f"{FAILING_JOB}'s last three runs are errors")
    if prometheus.NAME in ctx.system.processes and not targets_up(ctx):
        found.append("Prometheus does not scrape both apps")
    return found
