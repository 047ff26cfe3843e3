"""LaunchSin at production volume: 10 M canonical events over 200 connections, 200 k dead letters.

Runbook 001's own scale: ad platforms deliver impressions by the million, so 90 days of a
mid-size agency (200 connections) is 10 M canonical events; a 2 % transient failure share
leaves 200 k dead letters. The sandbox's connections keep delivering live; the other
connections of the 200 are retired ones (inactive, the projects' earlier campaigns), whose
history still fills the table and its indexes. Events are spread evenly over every connection,
so the live connections' index ranges are as long as any.

Ids count up from the seed rather than being random (the live ones are): nothing the checks
read goes through the primary key, and appending to it keeps a 10 M-row load to minutes. Rows
are narrower than live deliveries (actor and entity JSON left empty): a check reads
index pages and the few heap rows it needs, so the width only makes the load slower.
"""

from __future__ import annotations

from typing import Any

import psycopg

from bench.volume import HISTORY_DAYS, LIVE_HOURS, table_rows

EVENTS = 10_000_000
DEAD_LETTERS = 200_000
CONNECTIONS = 200
BATCH = 1_000_000  # rows per INSERT: one transaction per batch keeps the WAL and locks short

RETIRED_CONNECTIONS = """
WITH p AS (SELECT array_agg(id ORDER BY id) AS ids FROM public.projects)
INSERT INTO public.source_connections (id, org_id, project_id, type, name, config_json, is_active,
                                       created_at, updated_at)
SELECT md5(%(seed)s || ':connection:' || n)::uuid, project.org_id, project.id,
       CASE WHEN n %% 2 = 0 THEN 'meta_ads' ELSE 'google_ads' END,
       'Archived campaign ' || n, '{}'::jsonb, false,
       now() - interval '120 days', now() - interval '1 day'
FROM generate_series(1, %(count)s) AS n
CROSS JOIN p
JOIN public.projects project ON project.id = p.ids[1 + n %% cardinality(p.ids)]
ON CONFLICT (id) DO NOTHING
"""

# Event i belongs to connection i mod 200 and is dated i/N of the history back from its end.
HISTORY_EVENTS = """
WITH c AS (
    SELECT row_number() OVER (ORDER BY id) - 1 AS k, id, org_id, project_id
    FROM public.source_connections
), n AS (SELECT count(*) AS connections FROM c)
INSERT INTO public.canonical_events (id, org_id, project_id, source_connection_id, event_type,
                                     event_time, idempotency_key, value_json, ingested_at)
SELECT (lpad(to_hex(%(seed)s::bigint), 8, '0') || lpad(to_hex(i::bigint), 24, '0'))::uuid,
       c.org_id, c.project_id, c.id,
       (ARRAY['ad_impression', 'ad_impression', 'ad_impression', 'ad_click',
              'lead_created'])[1 + i %% 5],
       t.ingested_at - interval '20 seconds', 'scale_' || %(seed)s || '_' || i,
       jsonb_build_object('amount', (i %% 500) / 100.0, 'currency', 'BRL'), t.ingested_at
FROM generate_series(%(first)s, %(last)s) AS i
CROSS JOIN n
JOIN c ON c.k = i %% n.connections
CROSS JOIN LATERAL (SELECT %(until)s::timestamptz
                           - (i::float8 / %(total)s) * (%(until)s::timestamptz - %(since)s::timestamptz)
                           AS ingested_at) t
"""

# Transient failures, each retried and resolved minutes later.
HISTORY_DEAD_LETTERS = """
WITH c AS (
    SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM public.source_connections
), n AS (SELECT count(*) AS connections FROM c)
INSERT INTO public.dlq_events (id, connection_id, payload_json, error_message, status, retry_count,
                               created_at, updated_at, error_class, attempt_count, next_retry_at,
                               last_error_message, resolved_reason)
SELECT md5(%(seed)s || ':letter:' || i)::uuid, c.id, jsonb_build_object('source', 'scale'),
       %(error)s, 'resolved', 1, t.at, t.at + interval '3 minutes', 'UNEXPECTED_ERROR', 1,
       t.at + interval '2 minutes', %(error)s, 'retry_succeeded'
FROM generate_series(0, %(count)s - 1) AS i
CROSS JOIN n
JOIN c ON c.k = i %% n.connections
CROSS JOIN LATERAL (SELECT %(until)s::timestamptz
                           - (i::float8 / %(count)s) * (%(until)s::timestamptz - %(since)s::timestamptz)
                           AS at) t
"""


def load(conn: psycopg.Connection[Any], scale: float, seed_value: int) -> dict[str, int]:
    window = conn.execute(
        "SELECT now() - make_interval(days => %s), now() - make_interval(hours => %s)",
        (HISTORY_DAYS, LIVE_HOURS)).fetchone()
    assert window is not None
    since, until = window
    existing = table_rows(conn, "source_connections")["source_connections"]
    conn.execute(RETIRED_CONNECTIONS, {"seed": seed_value, "count": max(0, CONNECTIONS - existing)})
    total = max(1, round(EVENTS * scale))
    for first in range(0, total, BATCH):
        with conn.transaction():
            # Consistent by construction: skip the per-row FK checks, as pg_restore does.
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(HISTORY_EVENTS, {"seed": seed_value, "first": first, "total": total,
                                          "last": min(total, first + BATCH) - 1,
                                          "since": since, "until": until})
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(HISTORY_DEAD_LETTERS, {
            "seed": seed_value, "count": max(1, round(DEAD_LETTERS * scale)), "since": since,
            "until": until, "error": "fetch failed: other side closed (upstream connection reset)"})
    conn.execute("ANALYZE public.canonical_events, public.dlq_events, public.source_connections")
    return table_rows(conn, "source_connections", "canonical_events", "dlq_events")
