"""The steps of TrendSpark's faults around it: Telegram, the API, Prometheus and Grafana.

Most of them live in the daemon (the apps and the Telegram and Grafana stubs read the active
names); the steps here make what the daemon does visible where the checks look (Prometheus has
scraped it) and, at heal, restart the apps and rebuild Prometheus as every heal does
(ingest_faults.healed).
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from sandbox import db, external, procs
from sandbox.errors import SandboxError
from sandbox.system import Context, Process
from sandbox.trendspark import history, incidents, prometheus, stash
from sandbox.trendspark.incidents import SILENT_DAY, STASH
from sandbox.trendspark.settings import ADMIN_TOKEN

SPIKE_TIMEOUT = 45.0
SERVER_ERRORS = ('sum(increase(http_requests_total{job="trendspark-backend",status="5xx"}[5m]))')
DELIVERY_ERRORS = 'sum(trendspark_alert_delivery_total{channel="telegram",status="error"})'
NOTIFICATIONS = f"{STASH}.notifications"
UNREADY = Path(__file__).with_name("unready.py")


def _until(ctx: Context, promql: str, minimum: float, what: str) -> None:
    """Wait until Prometheus sees it (no Prometheus in this sandbox: nothing to wait for)."""
    if prometheus.NAME not in ctx.system.processes:
        return

    def seen() -> bool:
        value = prometheus.value(ctx, promql)
        return value is not None and value >= minimum

    if not procs.wait_until(seen, SPIKE_TIMEOUT, interval=0.5):
        raise SandboxError(f"prometheus did not see {what} within {SPIKE_TIMEOUT:.0f}s")


# api_5xx_spike ---------------------------------------------------------------------------------

def spike(ctx: Context) -> None:
    """The frontend's calls to /posts/top fail with 500 (the traffic makes one every 2 s)."""
    with ctx.superuser() as conn:
        stash.remember(conn, incidents.API_5XX_SPIKE, history.utc_now(conn))
    _until(ctx, SERVER_ERRORS, 5, "five backend 5xx responses in 5 minutes")


def forget_spike(conn: db.Connection) -> None:
    """The api_alert the spike raised goes with it."""
    since = stash.recall(conn, incidents.API_5XX_SPIKE)
    if since is not None:
        conn.execute("DELETE FROM public.notifications WHERE category = 'api_alert'"
                     " AND created_at >= %s", (since,))


# alert_delivery_errors -----------------------------------------------------------------------

def kick_bot(ctx: Context) -> None:
    """The bot has been out of the chat for a day: nothing delivered since (the day's
    notifications go to the stash), and one more delivery fails now."""
    with ctx.superuser() as conn:
        stash.schema(conn)
        since = history.utc_now(conn) - SILENT_DAY
        conn.execute(f"CREATE TABLE {NOTIFICATIONS} AS SELECT * FROM public.notifications"
                     " WHERE created_at >= %s", (since,))
        conn.execute("DELETE FROM public.notifications WHERE created_at >= %s", (since,))
        row = conn.execute("SELECT id FROM public.scheduler_configs WHERE job_id = 'daily_ideas'"
                           ).fetchone()
    assert row is not None
    # The day's ideas, run now through the worker's own API: their message is refused.
    reply = httpx.post(f"{ctx.url('worker')}/scheduler/run", json={"config_id": row[0]},
                       headers={"Authorization": f"Bearer {ctx.settings[ADMIN_TOKEN]}"},
                       timeout=10, trust_env=False)
    if reply.status_code != 202:
        raise SandboxError(f"the worker did not queue daily_ideas: {reply.status_code} {reply.text}")
    _until(ctx, DELIVERY_ERRORS, 1, "a failed Telegram delivery")


def readmit_bot(conn: db.Connection) -> None:
    if stash.exists(conn, NOTIFICATIONS):
        conn.execute(f"INSERT INTO public.notifications SELECT * FROM {NOTIFICATIONS}"
                     " ON CONFLICT (id) DO NOTHING")
        conn.execute(f"DROP TABLE {NOTIFICATIONS}")


# metrics_unscraped, prometheus_down ----------------------------------------------------------

def _needs_prometheus(ctx: Context, fault: str) -> None:
    if prometheus.NAME not in ctx.system.processes:
        raise SandboxError(f"{fault} needs the sandbox's Prometheus; {prometheus.summary()}")


def unscraped(ctx: Context) -> None:
    """Prometheus restarted from the repository's own setup: monitoring/prometheus.yml scrapes
    without credentials, and docker-compose sets no retention (so 15 days)."""
    _needs_prometheus(ctx, incidents.METRICS_UNSCRAPED)
    prometheus.restart(ctx, processes=False)  # its command and config follow the active faults
    prometheus.wait_target(ctx, "worker", "down")
    prometheus.wait_target(ctx, "app", "down")


def stop_serving(ctx: Context) -> None:
    """Prometheus stops serving: its port answers 503 to everything."""
    _needs_prometheus(ctx, incidents.PROMETHEUS_DOWN)
    port = ctx.port(prometheus.NAME)
    prometheus.stop(ctx)
    # Under the same name, so that the sandbox still counts it as running (and `heal` works).
    stand_in = Process(lambda ctx, port: [sys.executable, str(UNREADY), str(port)])
    external.start(ctx, prometheus.NAME, stand_in, port)
    if not procs.wait_until(lambda: procs.listening(port), 10):
        raise SandboxError(f"the stand-in for Prometheus did not listen on {port}")


def serve_again(conn: db.Connection) -> None:
    """Nothing in the database; healed() restarts Prometheus, stopping the stand-in first."""
