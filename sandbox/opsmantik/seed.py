"""Healthy history: five sites and, for the last 48 hours, a session about every 30 seconds.

Timestamps are relative to the database's now(). `fill` is also how a restarted sandbox catches
up on the hours it was down, and how healing a stall puts the last hour back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sandbox import db
from sandbox.opsmantik import partitions, visitors

HISTORY = timedelta(hours=48)
SPACING = timedelta(seconds=30)
OLD_DEAD_LETTERS = 5  # all older than 3 days: the DLQ has a past, but nothing recent

SITE_ROWS = """
    WITH owner AS (
        INSERT INTO auth.users (id, email) VALUES (%(owner)s, %(email)s)
        ON CONFLICT (id) DO NOTHING
    )
    INSERT INTO public.sites (id, user_id, public_id, domain, name, created_at)
    VALUES (%(id)s, %(owner)s, %(public_id)s, %(domain)s, %(name)s, now() - interval '400 days')
    ON CONFLICT (id) DO NOTHING
"""

# One row per planned visit, newest first, about SPACING apart between `since` and `until`. Ids
# from md5 of random(), so a load after setseed() gives the same rows every time.
PLAN = """
    CREATE TEMP TABLE seed_visit ON COMMIT DROP AS
    SELECT md5(%(until)s::text || i || random())::uuid AS id,
           (%(sites)s::uuid[])[1 + (i %% cardinality(%(sites)s::uuid[]))] AS site_id,
           %(until)s::timestamptz - i * %(spacing)s::interval
               - random() * %(spacing)s::interval * 0.8 AS created_at,
           1 + floor(random() * %(most_events)s)::int AS event_count,
           i %% %(gclid_share)s = 0 AS paid,
           i
    FROM generate_series(
        0, floor(extract(epoch FROM %(until)s::timestamptz - %(since)s::timestamptz)
                 / extract(epoch FROM %(spacing)s::interval))::int - 1) AS i
"""

SESSIONS = """
    INSERT INTO public.sessions (
        id, site_id, created_month, created_at, ip_address, entry_page, exit_page, gclid,
        total_duration_sec, event_count, attribution_source, device_type, device_os, browser,
        city, district, fingerprint, lead_score, utm_source, utm_medium, utm_campaign,
        traffic_source, traffic_medium)
    SELECT v.id, v.site_id, date_trunc('month', v.created_at AT TIME ZONE 'utc')::date,
           v.created_at, ('10.1.' || (v.i %% 250) || '.' || (1 + v.i %% 200))::inet,
           pg_temp.pick(%(pages)s, v.i), pg_temp.pick(%(pages)s, v.i + 3),
           CASE WHEN v.paid THEN 'sbx-' || md5(v.id::text) END,
           (random() * 600)::int, v.event_count,
           CASE WHEN v.paid THEN 'google_ads' ELSE 'organic' END,
           pg_temp.pick(%(devices)s, v.i), pg_temp.pick(%(systems)s, v.i),
           pg_temp.pick(%(browsers)s, v.i), pg_temp.pick(%(cities)s, v.i),
           pg_temp.pick(%(districts)s, v.i), left(md5(v.i::text), 16),
           (random() * 100)::int,
           CASE WHEN v.paid THEN 'google' END, CASE WHEN v.paid THEN 'cpc' END,
           CASE WHEN v.paid THEN 'sandbox-spring' END,
           'google', CASE WHEN v.paid THEN 'cpc' ELSE 'organic' END
    FROM seed_visit v
"""

EVENTS = """
    INSERT INTO public.events (session_id, session_month, site_id, url, event_category,
                               event_action, event_label, created_at, ingest_dedup_id)
    SELECT v.id, date_trunc('month', v.created_at AT TIME ZONE 'utc')::date, v.site_id,
           'https://' || s.domain || pg_temp.pick(%(pages)s, v.i),
           CASE WHEN k = v.event_count AND v.paid THEN 'conversion' ELSE 'interaction' END,
           CASE WHEN k = 1 THEN 'page_view' ELSE pg_temp.pick(%(actions)s, v.i + k) END,
           'step ' || k, least(v.created_at + k * interval '7 seconds', now()),
           md5(v.id::text || k)::uuid
    FROM seed_visit v
    JOIN public.sites s ON s.id = v.site_id
    CROSS JOIN LATERAL generate_series(1, v.event_count) AS k
"""

SIGNALS = """
    INSERT INTO public.processed_signals (event_id, received_at, site_id, status)
    SELECT md5(v.id::text || 'signal')::uuid, v.created_at, v.site_id, 'processed'
    FROM seed_visit v
"""

PICK = """
    CREATE FUNCTION pg_temp.pick(pool text[], i integer) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT pool[1 + (i % cardinality(pool))] $$
"""

DEAD_LETTERS = """
    INSERT INTO public.sync_dlq (received_at, site_id, qstash_message_id, dedup_event_id, stage,
                                 error, payload, replay_count)
    SELECT now() - (3 + n) * interval '1 day' - random() * interval '12 hours',
           (%(sites)s::uuid[])[1 + n %% cardinality(%(sites)s::uuid[])],
           'msg_' || left(md5(n::text), 20), gen_random_uuid(), 'sync_worker',
           'invalid input syntax for type uuid: "undefined"',
           jsonb_build_object('url', 'https://www.sandbox-shop.example/', 'sm', null), 1
    FROM generate_series(1, %(count)s) AS n
"""


def ensure_sites(conn: db.Connection) -> None:
    for site in visitors.SITES:
        conn.execute(SITE_ROWS, {"id": site.id, "owner": site.owner_id,
                                 "email": f"owner@{site.domain}", "public_id": site.public_id,
                                 "domain": site.domain, "name": site.name})


def fill(conn: db.Connection, since: datetime, until: datetime, *,
         spacing: timedelta = SPACING, most_events: int = 4) -> int:
    """Insert visits between two instants (sessions, events, processed signals), one per
    `spacing` with 1 to `most_events` events each; return how many."""
    if until - since < spacing:
        return 0
    params = {
        "since": since, "until": until, "spacing": spacing, "most_events": most_events,
        "gclid_share": visitors.GCLID_SHARE,
        "sites": [site.id for site in visitors.SITES], "pages": list(visitors.PAGES),
        "devices": list(visitors.DEVICES), "systems": list(visitors.OPERATING_SYSTEMS),
        "browsers": list(visitors.BROWSERS), "cities": list(visitors.CITIES),
        "districts": list(visitors.DISTRICTS), "actions": list(visitors.ACTIONS),
    }
    with conn.transaction():
        # A bulk load of rows built consistent by construction: skip the per-row FK checks and
        # drift guards, as pg_restore does, which makes `up` several times faster. Live traffic
        # always goes through them. Needs the superuser.
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(PICK)
        conn.execute(PLAN, params)
        for statement in (SESSIONS, EVENTS, SIGNALS):
            conn.execute(statement, params)
        row = conn.execute("SELECT count(*) FROM seed_visit").fetchone()
        conn.execute("DROP FUNCTION pg_temp.pick(text[], integer)")
    return int(row[0]) if row else 0


def catch_up(conn: db.Connection, *, hold_back: timedelta = timedelta(0)) -> int:
    """Fill from the newest session (at most HISTORY ago) to `hold_back` before now."""
    row = conn.execute(
        """SELECT now(), max(created_at) FROM public.sessions
           WHERE created_month >= %s AND created_at >= now() - %s::interval""",
        (partitions.first_month(conn, HISTORY), HISTORY),
    ).fetchone()
    assert row is not None
    now, newest = row
    since = max(newest or now - HISTORY, now - HISTORY)
    return fill(conn, since, now - hold_back)


def dead_letter_history(conn: db.Connection) -> None:
    conn.execute(DEAD_LETTERS, {"sites": [site.id for site in visitors.SITES],
                                "count": OLD_DEAD_LETTERS})
