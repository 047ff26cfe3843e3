"""LaunchSin (runbook 001): Express API, webhooks and a DLQ worker on Supabase Postgres."""

from __future__ import annotations

from sandbox.launchsin.app import create_app
from sandbox.launchsin.faults import FAULTS
from sandbox.launchsin.provision import env, new_settings, provision
from sandbox.launchsin.traffic import Traffic
from sandbox.system import System

SYSTEM = System(
    name="launchsin",
    database="launchsin",
    new_settings=new_settings,
    provision=provision,
    env=env,
    app=create_app,
    worker=Traffic,
    faults=FAULTS,
)
