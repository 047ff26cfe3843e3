"""OpsMantik (runbooks 000 and 002): Next.js on Vercel with Supabase Postgres, runbook-era shape."""

from __future__ import annotations

from sandbox.opsmantik.app import create_app
from sandbox.opsmantik.faults import FAULTS
from sandbox.opsmantik.provision import env, new_settings, provision
from sandbox.opsmantik.traffic import Traffic
from sandbox.system import System

SYSTEM = System(
    name="opsmantik",
    database="opsmantik",
    new_settings=new_settings,
    provision=provision,
    env=env,
    app=create_app,
    worker=Traffic,
    faults=FAULTS,
)
