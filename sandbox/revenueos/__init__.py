"""RevenueOS (runbook 003): Next.js on Vercel with Supabase, webhooks from payment providers,
a sync engine and a job queue, dunning."""

from __future__ import annotations

from sandbox.revenueos.app import create_app
from sandbox.revenueos.faults import FAULTS
from sandbox.revenueos.probes import leftovers
from sandbox.revenueos.provision import env, new_settings, provision
from sandbox.revenueos.traffic import Traffic
from sandbox.system import App, System

SYSTEM = System(
    name="revenueos",
    database="revenueos",
    database_variable="REVENUEOS_DATABASE_URL",
    new_settings=new_settings,
    provision=provision,
    env=env,
    apps={"app": App(create_app, url_variable="REVENUEOS_BASE_URL")},
    worker=Traffic,
    faults=FAULTS,
    leftovers=leftovers,
)
