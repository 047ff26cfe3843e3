"""TrendSpark (runbook 004): FastAPI backend and worker, PostgreSQL, Prometheus, Grafana, Telegram."""

from __future__ import annotations

from sandbox.system import App, System
from sandbox.trendspark import grafana, prometheus, telegram
from sandbox.trendspark.backend import create_backend
from sandbox.trendspark.faults import FAULTS
from sandbox.trendspark.probes import leftovers
from sandbox.trendspark.provision import env, provision
from sandbox.trendspark.settings import new_settings
from sandbox.trendspark.traffic import Traffic
from sandbox.trendspark.worker import create_worker

SYSTEM = System(
    name="trendspark",
    database="trendspark",
    database_variable="TRENDSPARK_DATABASE_URL",
    new_settings=new_settings,
    provision=provision,
    env=env,
    apps={
        # "app", as every system names its main API: the backend.
        "app": App(create_backend, url_variable="TRENDSPARK_BASE_URL"),
        "worker": App(create_worker, url_variable="TRENDSPARK_WORKER_URL"),
        "telegram": App(telegram.create_stub),  # a stub: Telegram cannot run here
        "grafana": App(grafana.create_stub, url_variable="TRENDSPARK_GRAFANA_URL"),  # a stub too
    },
    # Only when the binary is there: without it no Prometheus runs and no URL is written.
    processes={prometheus.NAME: prometheus.PROCESS} if prometheus.binary() else {},
    worker=Traffic,
    faults=FAULTS,
    leftovers=leftovers,
)
