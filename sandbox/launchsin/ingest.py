"""LaunchSin's write path, shared by the app's webhook and the traffic: EventIngestService's
inserts, the webhook's dead letters, and one pass of the DLQ worker.

Like upstream, a repeated idempotency key (SQLSTATE 23505 on unique_event_per_source) is a
duplicate, counted as handled and never dead-lettered; any other insert error is an
INSERT_FAILED dead letter. Connections must be in autocommit mode, as upstream's REST calls are.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from sandbox import db
from sandbox.launchsin.events import CanonicalEvent

DLQ_LOCK = "dlq_global"  # upstream's worker holds this advisory lock for one batch
DLQ_BATCH = 500
INSERT_FAILED = "INSERT_FAILED"
MISSING_SECRET = "MISSING_SECRET"
UNEXPECTED_ERROR = "UNEXPECTED_ERROR"

EVENT = """
    INSERT INTO public.canonical_events (org_id, project_id, source_connection_id, event_type,
                                         event_time, idempotency_key, actor_json, entities_json,
                                         value_json, raw_ref_json)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
# With the columns production added out of band (dlq_columns.sql), as the webhook code writes.
DEAD_LETTER = """
    INSERT INTO public.dlq_events (connection_id, payload_json, error_message, status,
                                   retry_count, error_class, attempt_count, next_retry_at,
                                   last_error_message, resolved_reason)
    VALUES (%(connection)s, %(payload)s, %(message)s, %(status)s, %(attempts)s, %(class)s,
            %(attempts)s, now() + %(retry_in)s, %(message)s, %(reason)s)
"""
# Only what migration 0002 created: what survives when the out-of-band columns are gone.
DEAD_LETTER_AS_MIGRATED = """
    INSERT INTO public.dlq_events (connection_id, payload_json, error_message, status, retry_count)
    VALUES (%(connection)s, %(payload)s, %(message)s, %(status)s, %(attempts)s)
"""
# One batch of the DLQ worker: retry what is due. The retry succeeds (the sandbox's sources are
# reliable the second time); the event it carried is not re-ingested.
RESOLVE_DUE = """
    WITH due AS (
        SELECT id FROM public.dlq_events
        WHERE status = 'pending' AND next_retry_at <= now()
        ORDER BY next_retry_at LIMIT %s FOR UPDATE SKIP LOCKED)
    UPDATE public.dlq_events d
    SET status = 'resolved', attempt_count = d.attempt_count + 1, retry_count = d.retry_count + 1,
        resolved_reason = 'retry_succeeded', updated_at = now()
    FROM due WHERE d.id = due.id
"""
# Without next_retry_at, a pending letter is due five minutes after it was written (upstream's
# first backoff step).
RESOLVE_DUE_AS_MIGRATED = """
    WITH due AS (
        SELECT id FROM public.dlq_events
        WHERE status = 'pending' AND created_at <= now() - interval '5 minutes'
        ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED)
    UPDATE public.dlq_events d
    SET status = 'resolved', retry_count = d.retry_count + 1, updated_at = now()
    FROM due WHERE d.id = due.id
"""


@dataclass(frozen=True)
class DeadLetter:
    connection_id: uuid.UUID
    payload: dict[str, Any]
    error_class: str
    message: str
    retry_in: timedelta = timedelta(minutes=5)  # upstream's webhook retries after 5 minutes
    resolved: bool = False  # a letter already retried with success (fault rows)


@dataclass(frozen=True)
class Ingested:
    processed: int  # as upstream's response: every handled event, duplicates included
    duplicates: int
    failure: str | None  # the first insert error, if any


def insert_events(conn: db.Connection, events: list[CanonicalEvent]) -> Ingested:
    processed = duplicates = 0
    failure = None
    for event in events:
        try:
            conn.execute(EVENT, (event.org_id, event.project_id, event.source_connection_id,
                                 event.event_type, event.event_time, event.idempotency_key,
                                 Jsonb(event.actor_json), Jsonb(event.entities_json),
                                 Jsonb(event.value_json), Jsonb(event.raw_ref_json)))
        except psycopg.errors.UniqueViolation:
            processed, duplicates = processed + 1, duplicates + 1  # "Duplicate event ignored"
            continue
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise  # the database is gone, not the row: nothing to dead-letter
        except psycopg.DatabaseError as exc:
            failure = failure or str(exc).splitlines()[0]
            continue
        processed += 1
    return Ingested(processed, duplicates, failure)


def dead_letter(conn: db.Connection, letter: DeadLetter, *, as_migrated: bool = False) -> None:
    """Write a dead letter; with `as_migrated`, or when the out-of-band columns turn out to be
    missing, only into the columns migration 0002 created."""
    params = {
        "connection": letter.connection_id, "payload": Jsonb(letter.payload),
        "message": letter.message, "class": letter.error_class,
        "status": "resolved" if letter.resolved else "pending",
        "attempts": 1 if letter.resolved else 0,
        "retry_in": timedelta(0) if letter.resolved else letter.retry_in,
        "reason": "retry_succeeded" if letter.resolved else None,
    }
    if not as_migrated:
        try:
            conn.execute(DEAD_LETTER, params)
            return
        except psycopg.errors.UndefinedColumn:
            pass
    conn.execute(DEAD_LETTER_AS_MIGRATED, params)


def resolve_due(conn: db.Connection, *, as_migrated: bool = False) -> int:
    """One pass of the DLQ worker; returns how many letters it resolved (0 if another holds the
    lock)."""
    with conn.transaction():
        row = conn.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (DLQ_LOCK,)).fetchone()
        if not row or not row[0]:
            return 0
        if not as_migrated:
            try:
                with conn.transaction():  # a savepoint: the fallback below must still run
                    return conn.execute(RESOLVE_DUE, (DLQ_BATCH,)).rowcount
            except psycopg.errors.UndefinedColumn:
                pass
        return conn.execute(RESOLVE_DUE_AS_MIGRATED, (DLQ_BATCH,)).rowcount
