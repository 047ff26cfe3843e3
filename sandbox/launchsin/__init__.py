"""LaunchSin (runbook 001): Express API, webhooks and a DLQ worker on Supabase Postgres."""

from __future__ import annotations

from sandbox.launchsin.app import create_app
from sandbox.launchsin.faults import FAULTS
from sandbox.launchsin.probes import leftovers
from sandbox.launchsin.provision import env, new_settings, provision
from sandbox.launchsin.traffic import Traffic
from sandbox.system import App, System

SYSTEM = System(
    name="launchsin",
    database="launchsin",
    database_variable="LAUNCHSIN_DATABASE_URL",
    new_settings=new_settings,
    provision=provision,
    env=env,
    apps={"app": App(create_app, url_variable="LAUNCHSIN_BASE_URL")},
    worker=Traffic,
    faults=FAULTS,
    leftovers=leftovers,
)
