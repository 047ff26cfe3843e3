"""The daemon's OpsMantik activity: a visit every 2-3 seconds, and partitions kept a month ahead.

Visits go through the worker's own write path as opsmantik_service. Partition upkeep stands in
for upstream's pg_cron job and runs as the superuser, as that job does.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from sandbox import db
from sandbox.kit import SERVICE_PASSWORD
from sandbox.opsmantik import partitions
from sandbox.opsmantik.incidents import INGEST_STALLED, NEXT_PARTITION_MISSING, WORKER_FAILING
from sandbox.opsmantik.ingest import ingest
from sandbox.opsmantik.ingest_faults import record_failures
from sandbox.opsmantik.provision import SERVICE_ROLE
from sandbox.opsmantik.visitors import random_visit
from sandbox.system import Context

UPKEEP_EVERY = 10.0  # seconds; cheap when nothing is missing (two to_regclass per month)


class Traffic:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rng = random.Random()
        self._service: db.Connection | None = None
        self._admin: db.Connection | None = None
        self._upkeep_due = 0.0

    def step(self, active_faults: frozenset[str]) -> float:
        try:
            if time.monotonic() >= self._upkeep_due:
                self._upkeep(active_faults)
                self._upkeep_due = time.monotonic() + UPKEEP_EVERY
            if INGEST_STALLED not in active_faults:
                self._visit(active_faults)
        except Exception:
            self.close()  # reconnect next time; the daemon logs the error
            raise
        return self.rng.uniform(2.0, 3.0)

    def close(self) -> None:
        for conn in (self._service, self._admin):
            if conn is not None:
                conn.close()
        self._service = self._admin = None

    def _visit(self, active_faults: frozenset[str]) -> None:
        conn = self._service_connection()
        ingest(conn, random_visit(self.rng, datetime.now(UTC)))
        if WORKER_FAILING in active_faults:
            record_failures(conn, 1, timedelta(0))

    def _upkeep(self, active_faults: frozenset[str]) -> None:
        conn = self._admin_connection()
        month = partitions.current_month(conn)
        partitions.ensure(conn, month)
        if NEXT_PARTITION_MISSING not in active_faults:
            partitions.ensure(conn, partitions.add_months(month, 1))

    def _service_connection(self) -> db.Connection:
        if self._service is None or self._service.closed:
            self._service = self.ctx.connect_as(SERVICE_ROLE, self.ctx.settings[SERVICE_PASSWORD])
        return self._service

    def _admin_connection(self) -> db.Connection:
        if self._admin is None or self._admin.closed:
            self._admin = self.ctx.superuser()
        return self._admin
