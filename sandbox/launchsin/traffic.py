"""The daemon's LaunchSin activity: every active connection delivering at its own pace, and the
DLQ worker.

A connection delivers every `every` seconds, give or take 30 % (the busiest every few seconds, the
quietest about every 3 minutes). About 2 % of deliveries fail transiently and become pending
UNEXPECTED_ERROR dead letters, retried 1-5 minutes later. Writes go through ingest.py as
launchsin_service, as the webhook's do.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from sandbox import db
from sandbox.kit import SERVICE_PASSWORD
from sandbox.launchsin import incidents, ingest
from sandbox.launchsin.events import random_event
from sandbox.launchsin.provision import SERVICE_ROLE
from sandbox.launchsin.seed import DLQ_SHARE, TRANSIENT_ERROR
from sandbox.launchsin.tenants import ACTIVE, Connection
from sandbox.system import Context

DLQ_POLL = 20.0  # seconds between DLQ worker passes; the checks allow two 60-second intervals
JITTER = 0.3
LONGEST_NAP = 1.0  # so the DLQ worker keeps its pace however quiet the connections are
SOON_AFTER_FAILURE = (5.0, 30.0)  # seconds until a source sends again after a dead letter


class Traffic:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rng = random.Random()
        self._conn: db.Connection | None = None
        start = time.monotonic()
        # Random phases, so the connections do not deliver in step; within half an interval,
        # since the history (or the catch-up) ends up to 0.8 of one before now.
        self._due = {c: start + self.rng.uniform(0, c.every / 2) for c in ACTIVE}
        self._dlq_due = start

    def step(self, active_faults: frozenset[str]) -> float:
        try:
            now = time.monotonic()
            quiet = incidents.stopped(active_faults)
            for connection, due in self._due.items():
                if due <= now:
                    pace = connection.every * self.rng.uniform(1 - JITTER, 1 + JITTER)
                    if connection not in quiet and not self._deliver(connection, active_faults):
                        # The source's next event follows soon: a dead letter does not leave
                        # even the quietest connection silent for two of its intervals.
                        pace = min(pace, self.rng.uniform(*SOON_AFTER_FAILURE))
                    self._due[connection] = now + pace
            if now >= self._dlq_due:
                if incidents.DLQ_WORKER_STOPPED not in active_faults:
                    ingest.resolve_due(self._connection(),
                                       as_migrated=incidents.DLQ_SCHEMA_DRIFT in active_faults)
                self._dlq_due = now + DLQ_POLL
        except Exception:
            self.close()  # reconnect next time; the daemon logs the error
            raise
        upcoming = min([*self._due.values(), self._dlq_due])
        return min(max(upcoming - time.monotonic(), 0.0), LONGEST_NAP)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _deliver(self, connection: Connection, active: frozenset[str]) -> bool:
        """One delivery; False when it ended in the DLQ instead of canonical_events."""
        conn = self._connection()
        as_migrated = incidents.DLQ_SCHEMA_DRIFT in active
        if self.rng.random() < DLQ_SHARE:
            retry_in = timedelta(seconds=self.rng.uniform(60, 300))
            ingest.dead_letter(conn, ingest.DeadLetter(
                connection.id, self._payload(connection), ingest.UNEXPECTED_ERROR,
                TRANSIENT_ERROR, retry_in), as_migrated=as_migrated)
            return False
        lagging = incidents.lag(active) if connection == incidents.LAGGING else None
        event = random_event(self.rng, connection, datetime.now(UTC),
                             lagging[0] if lagging else timedelta(0))
        if lagging:
            event = event.marked(lagging[1])
        result = ingest.insert_events(conn, [event])
        if result.failure:
            ingest.dead_letter(conn, ingest.DeadLetter(
                connection.id, self._payload(connection), ingest.INSERT_FAILED, result.failure),
                as_migrated=as_migrated)
        extra = incidents.extra_dead_letters(active)
        if extra and self.rng.random() < extra[0]:
            ingest.dead_letter(conn, ingest.DeadLetter(
                connection.id, {**self._payload(connection), "sandbox_fault": extra[1]},
                ingest.UNEXPECTED_ERROR, TRANSIENT_ERROR, resolved=True), as_migrated=as_migrated)
        return not result.failure

    def _payload(self, connection: Connection) -> dict[str, object]:
        # What upstream keeps of a failed delivery: the source's payload (here its id and kind).
        return {"id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                "source": connection.type}

    def _connection(self) -> db.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self.ctx.connect_as(SERVICE_ROLE, self.ctx.settings[SERVICE_PASSWORD])
        return self._conn
