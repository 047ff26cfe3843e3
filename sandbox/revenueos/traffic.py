"""The daemon's RevenueOS activity: webhook deliveries per provider at their own paces, the sync
engine and the queue worker, the scheduler's periodic jobs, the dunning cron and the weekly
maintenance.

A provider delivers every `every` seconds, give or take 30 % (Stripe every few seconds, Belvo's
bank data about every 75 minutes), to one of its integrations at random; about one delivery in
200 has a bad signature and is kept as `ignored`. The upstream crons are called by a scheduler
outside the app; here they are function calls, never HTTP (the checks' request log stays theirs).
Writes go through pipeline.py as revenueos_service, as the app's do.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from datetime import timedelta

from sandbox import db
from sandbox.kit import SERVICE_PASSWORD, db_now
from sandbox.revenueos import dunning, incidents, maintenance, pipeline, seed, tenants
from sandbox.revenueos.pipeline import Delivery, RawWriter
from sandbox.revenueos.provision import SERVICE_ROLE
from sandbox.revenueos.tenants import Provider
from sandbox.system import Context

JITTER = 0.3
LONGEST_NAP = 1.0
SYNC_EVERY = 3.0  # seconds between sync engine batches
WORKER_EVERY = 2.0  # seconds between queue worker passes
DUNNING_EVERY = 30.0
MAINTENANCE_EVERY = 600.0
BAD_SIGNATURE = 0.005
DUNNING_LOOKBACK = timedelta(hours=1)
HEADERS = {"content-type": "application/json"}


class Traffic:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rng = random.Random()
        self.writer = RawWriter()
        self._conn: db.Connection | None = None
        start = time.monotonic()
        # Random phases within half an interval: the history ends up to 0.8 of one before now.
        self._deliveries = {p: start + self.rng.uniform(0, p.every / 2) for p in tenants.PROVIDERS}
        self._syncs = {i: start + self.rng.uniform(0, seed.SYNC_EVERY) for i in tenants.ACTIVE}
        self._consistency = {o: start + self.rng.uniform(0, seed.CONSISTENCY_EVERY)
                             for o in tenants.ORGS}
        self._engine = self._worker = self._dunning = self._maintenance = start

    def step(self, active_faults: frozenset[str]) -> float:
        try:
            self._step(time.monotonic(), active_faults)
        except Exception:
            self.close()  # reconnect next time; the daemon logs the error
            raise
        upcoming = min([*self._deliveries.values(), *self._syncs.values(),
                        *self._consistency.values(), self._engine, self._worker, self._dunning,
                        self._maintenance])
        return min(max(upcoming - time.monotonic(), 0.0), LONGEST_NAP)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _step(self, now: float, active: frozenset[str]) -> None:
        conn = self._connection()
        quiet = incidents.quiet(active)
        for provider, due in self._deliveries.items():
            if due <= now:
                if provider not in quiet:
                    self._deliver(conn, provider)
                self._deliveries[provider] = now + provider.every * self.rng.uniform(
                    1 - JITTER, 1 + JITTER)
        self._schedule(conn, now)
        stopped = incidents.workers_stopped(active)
        if now >= self._engine:
            if not stopped:
                self.writer.process_pending(conn)
            self._engine = now + SYNC_EVERY
        if now >= self._worker:
            if not stopped:
                pipeline.run_jobs(conn, lag=incidents.job_lag(active))
            self._worker = now + WORKER_EVERY
        if now >= self._dunning:
            dunning.fill(conn, db_now(conn) - DUNNING_LOOKBACK)
            self._dunning = now + DUNNING_EVERY
        if now >= self._maintenance:
            if not incidents.maintenance_paused(active):
                with self.ctx.superuser() as owner:  # VACUUM needs the tables' owner
                    maintenance.weekly(owner)
            self._maintenance = now + MAINTENANCE_EVERY

    def _schedule(self, conn: db.Connection, now: float) -> None:
        """The scheduler: a sync per active integration, a consistency run per organisation."""
        for integration, due in self._syncs.items():
            if due <= now:
                pipeline.enqueue(conn, "sync_provider", integration.org.id,
                                 integration.project.id, {"provider": integration.provider.name})
                self._syncs[integration] = now + seed.SYNC_EVERY
        for org, due in self._consistency.items():
            if due <= now:
                pipeline.enqueue(conn, "consistency_run", org.id, None, {})
                self._consistency[org] = now + seed.CONSISTENCY_EVERY

    def _deliver(self, conn: db.Connection, provider: Provider) -> None:
        integration = self.rng.choice(tenants.of(provider))
        event_type = self.rng.choice(provider.event_types)
        ref = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        event_id = f"{PREFIXES[provider.name]}{hashlib.md5(ref.bytes).hexdigest()[:24]}"
        valid = self.rng.random() >= BAD_SIGNATURE
        self.writer.receive(conn, Delivery(
            integration.org.id, integration.project.id, provider.name, event_id, event_type,
            {"id": event_id, "type": event_type, "amount": 1990 + 500 * self.rng.randrange(40),
             "currency": "BRL"},
            {**HEADERS, "user-agent": f"{provider.name}-webhooks/1.0"}, valid,
            None if valid else "Invalid Signature"))

    def _connection(self) -> db.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self.ctx.connect_as(SERVICE_ROLE, self.ctx.settings[SERVICE_PASSWORD])
        return self._conn


# How each provider's event ids look (the history's are made alike, in seed.py).
PREFIXES = {"stripe": "evt_", "hotmart": "HP", "asaas": "pay_", "belvo": "blv_"}
