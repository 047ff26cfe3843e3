"""Healthy history: the tenants, and 30 days of deliveries from every connection.

The last RECENT hours are at each connection's live pace, older ones thinned THIN times: the
checks' windows (1 hour, 24 hours) see realistic volumes, the table still holds a month, so a
project's 7-day query is selective, and `up` stays fast. About 2 % of deliveries are dead letters.
`fill` is also how a restarted sandbox catches up and how heals put deliveries back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.types.json import Jsonb

from sandbox import db, kit
from sandbox.launchsin import tenants
from sandbox.launchsin.tenants import Connection

HISTORY = timedelta(days=30)
RECENT = timedelta(hours=2)
THIN = 60
DLQ_SHARE = 0.02
TRANSIENT_ERROR = "fetch failed: other side closed (upstream connection reset)"


@dataclass(frozen=True)
class Stretch:
    """Deliveries of one connection to fill in, ingested in (since, until]."""

    connection: Connection
    since: datetime
    until: datetime
    lag: timedelta = timedelta(0)  # event_time held back this much more than usual
    marker: str | None = None  # raw_ref_json.sandbox_fault of the events, for a fault's heal


TENANT_ROWS = (
    """INSERT INTO public.orgs (id, name, created_at) VALUES (%s, %s, now() - interval '400 days')
       ON CONFLICT (id) DO NOTHING""",
    """INSERT INTO auth.users (id, email, created_at) VALUES (%s, %s, now() - interval '300 days')
       ON CONFLICT (id) DO NOTHING""",
    """INSERT INTO public.org_members (org_id, user_id, role, created_at)
       VALUES (%s, %s, %s, now() - interval '300 days') ON CONFLICT DO NOTHING""",
    """INSERT INTO public.projects (id, org_id, name, created_at)
       VALUES (%s, %s, %s, now() - interval '200 days') ON CONFLICT (id) DO NOTHING""",
    """INSERT INTO public.source_connections (id, org_id, project_id, type, name, config_json,
                                              is_active, created_at, updated_at, last_sync_at,
                                              last_success_at)
       VALUES (%s, %s, %s, %s, %s, %s, %s, now() - interval '120 days',
               now() - %s * interval '1 day', now() - %s * interval '1 day',
               now() - %s * interval '1 day')
       ON CONFLICT (id) DO NOTHING""",
)

# One statement: plan the deliveries, then write the events and the dead letters. Each
# connection's stretch is cut where the recent window begins: before it deliveries are THIN times
# sparser. `ref` makes the source's own ids and the idempotency key. The JSON shapes are those
# events.py builds for live deliveries. A `dead` delivery is a transient failure, retried 1-5
# minutes later; the DLQ worker resolves those whose retry time has come.
FILL = """
    WITH plan AS (
        SELECT p.connection_id, p.every, p.since, p.until, p.lag, p.marker,
               string_to_array(p.pool, ',') AS pool, c.org_id, c.project_id, c.type
        FROM unnest(%(ids)s::uuid[], %(every)s::float8[], %(since)s::timestamptz[],
                    %(until)s::timestamptz[], %(lag)s::float8[], %(marker)s::text[],
                    %(pools)s::text[])
             AS p(connection_id, every, since, until, lag, marker, pool)
        JOIN public.source_connections c ON c.id = p.connection_id
    ), stretch AS (
        SELECT plan.*, s.lo, s.hi, s.spacing
        FROM plan CROSS JOIN LATERAL (VALUES
            (plan.since, least(plan.until, %(recent)s::timestamptz), plan.every * %(thin)s),
            (greatest(plan.since, %(recent)s::timestamptz), plan.until, plan.every)
        ) AS s(lo, hi, spacing)
        WHERE s.hi > s.lo
    ), delivery AS MATERIALIZED (
        -- Only the columns the inserts need: wide rows make the materialisation the slow part.
        -- Ids from md5 rather than gen_random_uuid(), whose strong randomness costs more than
        -- the rest of the row.
        SELECT md5(st.connection_id::text || i || random())::uuid AS id, st.connection_id,
               st.org_id, st.project_id, st.type, st.marker, t.ingested_at,
               t.ingested_at - make_interval(secs => st.lag + 3 + 57 * random()) AS event_time,
               st.pool[1 + floor(random() * cardinality(st.pool))::int] AS event_type,
               i > 0 AND random() < %(dlq_share)s AS dead  -- the newest is always an event
        FROM stretch st
        CROSS JOIN LATERAL generate_series(
            0, floor(extract(epoch FROM st.hi - st.lo) / st.spacing)::int - 1) AS i
        CROSS JOIN LATERAL (SELECT st.hi - (i + 0.2 + 0.6 * random())
                                   * make_interval(secs => st.spacing) AS ingested_at) t
    ), ref AS (
        SELECT delivery.*, upper(left(replace(delivery.id::text, '-', ''), 16)) AS ref
        FROM delivery
    ), events AS (
        INSERT INTO public.canonical_events (id, org_id, project_id, source_connection_id,
                                             event_type, event_time, idempotency_key, actor_json,
                                             entities_json, value_json, raw_ref_json, ingested_at)
        SELECT d.id, d.org_id, d.project_id, d.connection_id, d.event_type, d.event_time,
               CASE WHEN d.type <> 'hotmart'
                    THEN split_part(d.type, '_', 1) || '_' || d.ref || '_' || d.event_type
                    ELSE 'hotmart_HP' || d.ref || '_' || CASE d.event_type
                        WHEN 'purchase_completed' THEN 'PURCHASE_APPROVED'
                        WHEN 'refund_created' THEN 'PURCHASE_REFUNDED'
                        ELSE 'PURCHASE_CANCELED' END END,
               CASE WHEN d.event_type IN ('ad_impression', 'ad_click') THEN '{}'::jsonb
                    ELSE jsonb_build_object('email_hash', encode(sha256(
                             convert_to(d.org_id::text || ':' || lower(d.ref) || '@mail', 'UTF8')),
                             'hex')) END,
               CASE WHEN d.type = 'hotmart'
                    THEN jsonb_build_object('product_id', (1000 + floor(random() * 256))::text,
                                            'order_id', 'HP' || d.ref, 'payment_type', 'PIX')
                    ELSE jsonb_build_object('campaign_id', 'cmp_' || left(d.ref, 6),
                                            'ad_id', 'ad_' || right(d.ref, 8)) END,
               CASE WHEN d.type = 'hotmart'
                    THEN jsonb_build_object('amount', 97 + 7 * floor(random() * 256),
                                            'currency', 'BRL', 'status', 'APPROVED')
                    WHEN d.event_type IN ('ad_impression', 'ad_click')
                    THEN jsonb_build_object('amount', round((0.05 + random())::numeric, 2),
                                            'currency', 'BRL')
                    ELSE '{}'::jsonb END,
               jsonb_strip_nulls(jsonb_build_object('source_event_id', d.id, 'source', d.type,
                                                    'sandbox_fault', d.marker)),
               d.ingested_at
        FROM ref d
        WHERE NOT d.dead
        -- In arrival order, as live traffic fills the heap: rows of all connections interleaved.
        ORDER BY d.ingested_at
    ), letters AS (
        INSERT INTO public.dlq_events (id, connection_id, payload_json, error_message, status,
                                       retry_count, created_at, updated_at, error_class,
                                       attempt_count, next_retry_at, last_error_message,
                                       resolved_reason)
        SELECT d.id, d.connection_id, jsonb_build_object('id', d.id, 'source', d.type),
               %(error)s, CASE WHEN d.due THEN 'resolved' ELSE 'pending' END,
               d.due::int, d.ingested_at, least(d.retry_at, now()), 'UNEXPECTED_ERROR',
               d.due::int, d.retry_at, %(error)s,
               CASE WHEN d.due THEN 'retry_succeeded' END
        FROM (SELECT delivery.*, r.retry_at, r.retry_at <= now() AS due
              FROM delivery
              CROSS JOIN LATERAL (SELECT delivery.ingested_at
                                         + (60 + 240 * random()) * interval '1 second'
                                         AS retry_at) r
              WHERE delivery.dead) d
        ORDER BY d.ingested_at
    )
    SELECT count(*) FROM delivery
"""

# Incidents the DLQ remembers, all long over: a Hotmart connection nobody gave a hottok (retired
# since) and a week-old burst of insert failures, both given up on.
PAST_INCIDENTS = """
    INSERT INTO public.dlq_events (connection_id, payload_json, error_message, status,
                                   retry_count, created_at, updated_at, error_class, attempt_count,
                                   next_retry_at, last_error_message, dead_after)
    SELECT i.connection_id, jsonb_build_object('id', gen_random_uuid(), 'source', 'hotmart'),
           i.message, 'dead', 5, t.at, t.at + interval '2 hours', i.class, 5,
           NULL, i.message, t.at + interval '2 hours'
    FROM (VALUES
        (%(no_secret)s::uuid, 'MISSING_SECRET', 'Hotmart secret not configured', 13),
        (%(no_secret)s::uuid, 'MISSING_SECRET', 'Hotmart secret not configured', 13),
        (%(no_secret)s::uuid, 'MISSING_SECRET', 'Hotmart secret not configured', 12),
        (%(insert_failed)s::uuid, 'INSERT_FAILED',
         'new row for relation "canonical_events" violates check constraint', 6),
        (%(insert_failed)s::uuid, 'INSERT_FAILED',
         'new row for relation "canonical_events" violates check constraint', 6)
    ) AS i(connection_id, class, message, days_ago)
    CROSS JOIN LATERAL (SELECT now() - i.days_ago * interval '1 day'
                                 - random() * interval '3 hours' AS at) t
"""


def ensure_tenants(conn: db.Connection, hotmart_key: str) -> None:
    orgs, users, members, projects, connections = TENANT_ROWS
    with conn.cursor() as cur:
        cur.executemany(orgs, [(o.id, o.name) for o in tenants.ORGS])
        cur.executemany(users, [(u.id, u.email) for u in tenants.USERS])
        cur.executemany(members, [(u.org.id, u.id, u.role) for u in tenants.USERS if u.org])
        cur.executemany(projects, [(p.id, p.org.id, p.name) for p in tenants.PROJECTS])
        cur.executemany(connections, [_connection_row(c, hotmart_key)
                                      for c in tenants.CONNECTIONS])


def _connection_row(c: Connection, hotmart_key: str) -> tuple[object, ...]:
    config: dict[str, object] = {"sandbox": True}
    if c.has_secret:
        config["hotmart_secret"] = tenants.hotmart_secret(hotmart_key, c.id)
    idle = c.retired_days or 0
    return (c.id, c.project.org.id, c.project.id, c.type, c.name, Jsonb(config), c.active,
            idle, idle, idle)


def fill(conn: db.Connection, stretches: Sequence[Stretch], *, dead_letters: bool = True) -> int:
    """Insert the deliveries of these stretches (events and dead letters); return how many."""
    stretches = [s for s in stretches if s.until > s.since]
    if not stretches:
        return 0
    now = kit.db_now(conn)
    params = {
        "ids": [s.connection.id for s in stretches],
        "every": [s.connection.every for s in stretches],
        "since": [s.since for s in stretches], "until": [s.until for s in stretches],
        "lag": [s.lag.total_seconds() for s in stretches],
        "marker": [s.marker for s in stretches],
        "pools": [",".join(tenants.EVENT_TYPES[s.connection.type]) for s in stretches],
        "recent": now - RECENT, "thin": THIN,
        "dlq_share": DLQ_SHARE if dead_letters else 0.0, "error": TRANSIENT_ERROR,
    }
    with conn.transaction():
        # A bulk load of rows consistent by construction: skip the per-row FK checks, as
        # pg_restore does. Live traffic always goes through them. Needs the superuser.
        conn.execute("SET LOCAL session_replication_role = replica")
        count = conn.execute(FILL, params).fetchone()
    return int(count[0]) if count else 0


def history(conn: db.Connection) -> int:
    """A fresh database's month: every connection, the retired ones up to their retirement."""
    now = kit.db_now(conn)
    stretches = [Stretch(c, now - HISTORY, now - timedelta(days=c.retired_days or 0))
                 for c in tenants.CONNECTIONS]
    added = fill(conn, stretches)
    conn.execute(PAST_INCIDENTS, {
        "no_secret": tenants.connection("vertice-community-hotmart-old").id,
        "insert_failed": tenants.connection("delta-bootcamp-hotmart").id})
    return added


def newest(conn: db.Connection, connections: Iterable[Connection],
           before: timedelta = timedelta(0)) -> Mapping[Connection, datetime]:
    """Each connection's newest ingested_at older than `before` (within HISTORY; else its start)."""
    chosen = list(connections)
    # Among each connection's newest-dated deliveries, read down its (connection, event_time)
    # index: max(ingested_at) over the whole history would read all of it, which at production
    # volume made every `up` seconds slower.
    rows = conn.execute(
        """SELECT c.id, coalesce(e.newest, now() - %(history)s)
           FROM unnest(%(ids)s::uuid[]) AS c(id)
           LEFT JOIN LATERAL (
               SELECT max(latest.ingested_at) AS newest FROM (
                   SELECT ingested_at FROM public.canonical_events
                   WHERE source_connection_id = c.id
                     AND event_time >= now() - %(history)s - interval '1 day'
                     AND ingested_at >= now() - %(history)s AND ingested_at < now() - %(before)s
                   ORDER BY event_time DESC
                   LIMIT 50
               ) latest
           ) e ON true""",
        {"ids": [c.id for c in chosen], "history": HISTORY, "before": before},
    ).fetchall()
    by_id = {c.id: c for c in chosen}
    return {by_id[r[0]]: r[1] for r in rows}


def catch_up(conn: db.Connection, connections: Iterable[Connection], until: datetime,
             *, lags: Mapping[Connection, tuple[timedelta, str]] | None = None,
             dead_letters: bool = True) -> int:
    """Fill each connection from its newest delivery to `until`."""
    lags = lags or {}
    stretches = [Stretch(c, since, until, *lags.get(c, (timedelta(0), None)))
                 for c, since in newest(conn, connections).items()]
    return fill(conn, stretches, dead_letters=dead_letters)
