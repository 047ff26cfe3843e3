"""Create (or bring up to date) the `trendspark` database: its role, the create_all schema, the
rows the app seeds, 40 days of history; after a restart, the runs the worker missed."""

from __future__ import annotations

import random

from sandbox import kit
from sandbox.system import Context
from sandbox.trendspark import history, incidents, prometheus
from sandbox.trendspark.incidents import WORKER_DOWN
from sandbox.trendspark.settings import (
    ADMIN_TOKEN,
    GRAFANA_TOKEN,
    SERVICE_ROLE,
    SERVICE_TOKEN,
    TELEGRAM_CHAT,
    TELEGRAM_TOKEN,
    VIEWER_TOKEN,
)


def env(ctx: Context) -> dict[str, str]:
    """What the checks read besides the database's and the listeners' URLs
    (checks/test_004_trendspark.py). Written last by `up`: first Prometheus, which answers
    before it has scraped, gets the moment to scrape both apps."""
    s = ctx.settings
    values = {
        "TRENDSPARK_API_TOKEN": s[VIEWER_TOKEN],
        "TRENDSPARK_ADMIN_TOKEN": s[ADMIN_TOKEN],
        "TRENDSPARK_GRAFANA_TOKEN": s[GRAFANA_TOKEN],
        "TRENDSPARK_TELEGRAM_API_URL": ctx.url("telegram"),
        "TRENDSPARK_TELEGRAM_BOT_TOKEN": s[TELEGRAM_TOKEN],
        "TRENDSPARK_TELEGRAM_CHAT_ID": s[TELEGRAM_CHAT],
        "TRENDSPARK_PROMETHEUS_RETENTION": prometheus.RETENTION,
    }
    if prometheus.binary() is not None:
        prometheus.wait_scraped(ctx)
    return values


def provision(ctx: Context) -> str:
    created = kit.ensure_database(ctx, SERVICE_ROLE)
    active = ctx.active_faults()
    rng = random.Random()
    with ctx.superuser() as conn:
        exists = conn.execute("SELECT to_regclass('public.job_runs')").fetchone()
        fresh = created or not (exists and exists[0])
        with conn.transaction():
            if fresh:
                kit.run_script(conn, __package__, "schema.sql")
                history.seed_reference(conn, {
                    "admin": (ctx.settings[ADMIN_TOKEN], "admin"),
                    "viewer": (ctx.settings[VIEWER_TOKEN], "viewer"),
                    "worker-service": (ctx.settings[SERVICE_TOKEN], "service")})
                added = history.build(conn, incidents.conditions(active), rng)
            elif WORKER_DOWN in active:
                added = 0  # the worker is down: nothing ran
            else:
                added = history.catch_up(conn, incidents.conditions(active), rng)
            if incidents.RETENTION_OVERDUE not in active:
                history.archive(conn)
            kit.run_script(conn, __package__, "grants.sql")
        if fresh:
            conn.execute("VACUUM ANALYZE")
    verb = "created" if fresh else "ready"
    return f"database {ctx.system.database} {verb} ({added} job runs added); {prometheus.summary()}"
