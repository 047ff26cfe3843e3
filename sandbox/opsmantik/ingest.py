"""The worker's write path (`POST /api/sync/worker` upstream), shared by the app and the traffic.

Like the real worker it claims the signal in processed_signals (`processing`), writes the session
with the month the client computed, then the events with that month, and marks the signal
`processed`. A database error is not retried: the visit is parked in sync_dlq and the signal
marked `failed`, which is how insert errors around a month boundary show up upstream.
"""

from __future__ import annotations

from typing import Literal

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from sandbox import db
from sandbox.opsmantik.visitors import Visit

Outcome = Literal["processed", "dedup", "dlq"]

CLAIM = """
    INSERT INTO public.processed_signals (event_id, site_id, status)
    VALUES (%s, %s, 'processing')
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
"""
MARK = "UPDATE public.processed_signals SET status = %s WHERE event_id = %s"
EVENT = """
    INSERT INTO public.events (session_id, session_month, site_id, url, event_category,
                               event_action, event_label, metadata, ingest_dedup_id)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, gen_random_uuid())
"""
DEAD_LETTER = """
    INSERT INTO public.sync_dlq (site_id, qstash_message_id, dedup_event_id, stage, error, payload)
    VALUES (%s, %s, %s, 'sync_worker', %s, %s)
"""


def ingest(conn: db.Connection, visit: Visit) -> Outcome:
    """Write one visit; `conn` must be in autocommit mode, as the worker's REST calls are."""
    if conn.execute(CLAIM, (visit.event_id, visit.site.id)).fetchone() is None:
        return "dedup"
    try:
        with conn.transaction():
            _insert_session(conn, visit)
            _insert_events(conn, visit)
    except psycopg.Error as exc:
        conn.execute(MARK, ("failed", visit.event_id))
        conn.execute(DEAD_LETTER, (visit.site.id, f"msg_{visit.event_id.hex[:20]}",
                                   visit.event_id, str(exc).splitlines()[0], Jsonb(payload(visit))))
        return "dlq"
    conn.execute(MARK, ("processed", visit.event_id))
    return "processed"


def month_of(visit: Visit) -> str:
    # The client-side month key the worker passes on (`sm` upstream); here from a UTC clock.
    return visit.at.strftime("%Y-%m-01")


def _insert_session(conn: db.Connection, visit: Visit) -> None:
    names = ["id", "site_id", "created_month", "created_at", "event_count", *visit.columns]
    values = [visit.session_id, visit.site.id, month_of(visit), visit.at, len(visit.actions),
              *visit.columns.values()]
    conn.execute(
        sql.SQL("INSERT INTO public.sessions ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join([sql.Placeholder()] * len(names)),
        ),
        values,
    )


def _insert_events(conn: db.Connection, visit: Visit) -> None:
    url = f"https://{visit.site.domain}{visit.columns['entry_page']}"
    rows = [
        (visit.session_id, month_of(visit), visit.site.id, url,
         "conversion" if action in ("phone_click", "form_submit") else "interaction",
         action, f"step {index}", Jsonb({"step": index}))
        for index, action in enumerate(visit.actions, start=1)
    ]
    with conn.cursor() as cur:
        cur.executemany(EVENT, rows)


def payload(visit: Visit) -> dict[str, object]:
    return {
        "ingest_id": str(visit.event_id), "site_id": visit.site.public_id,
        "session_id": str(visit.session_id), "ts": visit.at.isoformat(),
        "url": f"https://{visit.site.domain}{visit.columns['entry_page']}",
        "sm": month_of(visit),
    }
