"""OpsMantik (runbooks 000 and 002): Next.js on Vercel with Supabase Postgres, runbook-era shape."""

from __future__ import annotations

from sandbox.opsmantik.app import create_app
from sandbox.opsmantik.faults import FAULTS
from sandbox.opsmantik.probes import leftovers
from sandbox.opsmantik.provision import env, new_settings, provision
from sandbox.opsmantik.traffic import Traffic
from sandbox.system import App, System

SYSTEM = System(
    name="opsmantik",
    database="opsmantik",
    database_variable="OPSMANTIK_DATABASE_URL",
    new_settings=new_settings,
    provision=provision,
    env=env,
    apps={"app": App(create_app, url_variable="OPSMANTIK_BASE_URL")},
    worker=Traffic,
    faults=FAULTS,
    leftovers=leftovers,
)
