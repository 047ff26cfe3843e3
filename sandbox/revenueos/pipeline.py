"""RevenueOS's write path, shared by the app and the traffic: a webhook delivery lands in
external_events_raw as `pending` (and in the legacy table), the sync engine takes pending rows to
`processing` and then `processed` with their normalized event and an `apply_event` job, and the
queue worker takes jobs from `queued` through `running` to `completed`.

Connections must be in autocommit mode, as upstream's REST calls are: each step is its own
transaction, so `processing` is briefly visible as it is upstream.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from sandbox import db
from sandbox.revenueos import raw
from sandbox.revenueos.raw import ColumnSet
from sandbox.revenueos.tenants import PROVIDERS

BATCH = 200

RAW = """
    INSERT INTO public.external_events_raw (org_id, provider, {event_id}, event_type, {payload},
                                            {headers}, status, {error} {extra_columns})
    VALUES (%(org)s, %(provider)s, %(event_id)s, %(event_type)s, %(payload)s, %(headers)s,
            %(status)s, %(error)s {extra_values})
    RETURNING id
"""
LEGACY = """
    INSERT INTO public.external_events (org_id, provider, external_event_id, event_type,
                                        payload_json, status, received_at, processed_at)
    VALUES (%s, %s, %s, %s, %s, 'processed', now(), now())
"""
# The sync engine's batch: oldest pending first. No index on status upstream: a scan.
CLAIM = """
    UPDATE public.external_events_raw SET status = 'processing'
    WHERE id IN (SELECT id FROM public.external_events_raw WHERE status = 'pending'
                 ORDER BY received_at LIMIT %s FOR UPDATE SKIP LOCKED)
    RETURNING id
"""
NORMALIZE = """
    WITH done AS (
        UPDATE public.external_events_raw r SET status = 'processed', processed_at = now()
        WHERE r.id = ANY(%(ids)s::uuid[])
        RETURNING r.id, r.org_id, r.provider, r.{event_id} AS event_id, r.{payload} AS payload
    ), normalized AS (
        INSERT INTO public.external_events_normalized (org_id, raw_event_id, provider,
                                                       canonical_type, canonical_payload)
        SELECT d.org_id, d.id, d.provider, c.canonical,
               jsonb_build_object('provider_object_id', d.event_id,
                                  'amount_cents', d.payload -> 'amount', 'currency', 'BRL')
        FROM done d JOIN unnest(%(providers)s::text[], %(canonical)s::text[]) AS c(provider, canonical)
             ON c.provider = d.provider
        ON CONFLICT (raw_event_id, canonical_type) DO NOTHING
    )
    INSERT INTO public.jobs_queue (org_id, project_id, job_type, payload, trace_id)
    SELECT d.org_id, k.project_id, 'apply_event', jsonb_build_object('raw_event_id', d.id),
           d.event_id
    FROM done d
    LEFT JOIN LATERAL (SELECT project_id FROM public.project_webhook_keys k
                       WHERE k.org_id = d.org_id AND k.provider = d.provider AND k.active
                       ORDER BY k.created_at LIMIT 1) k ON true
"""
# The queue worker: fetch_next_jobs (queued -> running, SKIP LOCKED), then the jobs succeed.
FETCH = """
    WITH next AS (
        SELECT id FROM public.jobs_queue
        WHERE status = 'queued' AND available_at <= now() AND created_at <= now() - %(lag)s
        ORDER BY available_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    UPDATE public.jobs_queue j SET status = 'running', attempts = j.attempts + 1
    FROM next WHERE j.id = next.id
    RETURNING j.id
"""
COMPLETE = "UPDATE public.jobs_queue SET status = 'completed' WHERE id = ANY(%s)"
ENQUEUE = """
    INSERT INTO public.jobs_queue (org_id, project_id, job_type, payload, trace_id)
    VALUES (%s, %s, %s, %s, %s)
"""


@dataclass(frozen=True)
class Delivery:
    org_id: uuid.UUID
    project_id: uuid.UUID
    provider: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    headers: dict[str, str]
    signature_valid: bool = True
    error: str | None = None


class RawWriter:
    """Writes deliveries in whichever column set external_events_raw has, looked up once and
    again when the table changes under it."""

    def __init__(self) -> None:
        self._columns: ColumnSet | None = None

    def columns(self, conn: db.Connection, *, fresh: bool = False) -> ColumnSet:
        if self._columns is None or fresh:
            self._columns = raw.column_set(conn)
        return self._columns

    def receive(self, conn: db.Connection, delivery: Delivery) -> uuid.UUID | None:
        """The raw row (pending, or ignored for a bad signature) and its legacy twin; None for a
        delivery already received (the unique key's 23505, answered as a duplicate)."""
        params = {"org": delivery.org_id, "provider": delivery.provider,
                  "event_id": delivery.event_id, "event_type": delivery.event_type,
                  "payload": Jsonb(delivery.payload), "headers": Jsonb(delivery.headers),
                  "status": "pending" if delivery.signature_valid else "ignored",
                  "error": delivery.error, "project": delivery.project_id,
                  "valid": delivery.signature_valid}
        for attempt in (1, 2):
            try:
                with conn.transaction():
                    row = conn.execute(self._raw(self.columns(conn, fresh=attempt > 1)),
                                       params).fetchone()
                    conn.execute(LEGACY, (delivery.org_id, delivery.provider, delivery.event_id,
                                          delivery.event_type, Jsonb(delivery.payload)))
                return row[0] if row else None
            except psycopg.errors.UniqueViolation:
                return None
            except psycopg.errors.UndefinedColumn:
                if attempt == 2:
                    raise
        return None

    def process_pending(self, conn: db.Connection, limit: int = BATCH) -> int:
        """One batch of the sync engine; how many raw events it processed."""
        with conn.transaction():
            ids = [r[0] for r in conn.execute(CLAIM, (limit,)).fetchall()]
        if not ids:
            return 0
        columns = self.columns(conn, fresh=True)
        query = sql.SQL(NORMALIZE).format(event_id=columns.ident("event_id"),
                                          payload=columns.ident("payload"))
        with conn.transaction():
            conn.execute(query, {"ids": ids, "providers": [p.name for p in PROVIDERS],
                                 "canonical": [p.canonical_type for p in PROVIDERS]})
        return len(ids)

    @staticmethod
    def _raw(columns: ColumnSet) -> sql.Composed:
        return raw.insert(RAW, columns, ", %(project)s, %(valid)s")


def run_jobs(conn: db.Connection, limit: int = BATCH, lag: timedelta = timedelta(0)) -> int:
    """One pass of the queue worker over jobs at least `lag` old; how many it completed."""
    with conn.transaction():
        ids = [r[0] for r in conn.execute(FETCH, {"lag": lag, "limit": limit}).fetchall()]
    if ids:
        with conn.transaction():
            conn.execute(COMPLETE, (ids,))
    return len(ids)


def enqueue(conn: db.Connection, kind: str, org: uuid.UUID, project: uuid.UUID | None,
            payload: dict[str, Any]) -> None:
    conn.execute(ENQUEUE, (org, project, kind, Jsonb(payload), uuid.uuid4().hex))
