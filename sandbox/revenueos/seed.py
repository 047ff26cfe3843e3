"""Healthy history: the tenants, and a week of webhook deliveries with everything the pipeline
made of them, plus the periodic jobs.

The last RECENT hours are at each provider's live pace (the checks' windows, 24 hours at most,
see realistic volumes), older ones thinned THIN times. A delivery is a raw event (processed, or
ignored for a bad signature), its normalized event, the completed `apply_event` job, and its row
in the legacy `external_events` table that integration_freshness_view still reads. `fill` is
also how a restarted sandbox catches up and how heals put deliveries back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import sql

from sandbox import db, kit
from sandbox.revenueos import raw, tenants
from sandbox.revenueos.tenants import Provider

HISTORY = timedelta(days=7)
RECENT = timedelta(hours=24)
THIN = 10
IGNORED_SHARE = 0.005  # deliveries with a bad signature: kept as `ignored`, never processed
SYNC_EVERY = 600.0  # seconds between sync_provider jobs of one integration
CONSISTENCY_EVERY = 900.0  # seconds between consistency_run jobs of one organisation


@dataclass(frozen=True)
class Stretch:
    """Deliveries of one provider to fill in, received in (since, until]."""

    provider: Provider
    since: datetime
    until: datetime


TENANT_ROWS = (
    """INSERT INTO public.organizations (id, name, slug, created_at)
       VALUES (%s, %s, %s, now() - interval '400 days') ON CONFLICT (id) DO NOTHING""",
    """INSERT INTO auth.users (id, email, created_at) VALUES (%s, %s, now() - interval '400 days')
       ON CONFLICT (id) DO NOTHING""",
    """INSERT INTO public.memberships (org_id, user_id, role, created_at)
       VALUES (%s, %s, 'owner', now() - interval '400 days') ON CONFLICT DO NOTHING""",
    """INSERT INTO public.projects (id, org_id, name, created_at)
       VALUES (%s, %s, %s, now() - interval '300 days') ON CONFLICT (id) DO NOTHING""",
    """INSERT INTO public.integrations (id, org_id, provider, status, webhook_secret, created_at)
       VALUES (%s, %s, %s, %s, %s, now() - interval '200 days') ON CONFLICT (id) DO NOTHING""",
    """INSERT INTO public.project_webhook_keys (org_id, project_id, provider, webhook_key, active)
       VALUES (%s, %s, %s, %s, %s) ON CONFLICT (webhook_key) DO NOTHING""",
)

# One statement: plan the deliveries, then write what the pipeline made of each. Each provider's
# stretch is cut where the recent window begins: before it deliveries are THIN times sparser.
# `target` names one of the provider's integrations ("org/project"), picked at random. Ids from
# md5 rather than gen_random_uuid(), whose strong randomness costs more than the rest of the row.
FILL = """
    WITH plan AS (
        SELECT * FROM unnest(%(providers)s::text[], %(every)s::float8[], %(since)s::timestamptz[],
                             %(until)s::timestamptz[], %(types)s::text[], %(canonical)s::text[],
                             %(targets)s::text[])
             AS p(provider, every, since, until, types, canonical, targets)
    ), stretch AS (
        SELECT plan.provider, plan.canonical, string_to_array(plan.types, ',') AS types,
               string_to_array(plan.targets, ',') AS targets, s.lo, s.hi, s.spacing
        FROM plan CROSS JOIN LATERAL (VALUES
            (plan.since, least(plan.until, %(recent)s::timestamptz), plan.every * %(thin)s),
            (greatest(plan.since, %(recent)s::timestamptz), plan.until, plan.every)
        ) AS s(lo, hi, spacing)
        WHERE s.hi > s.lo
    ), picked AS MATERIALIZED (
        SELECT md5(st.provider || i || random())::uuid AS id, st.provider, st.canonical,
               st.targets[1 + floor(random() * cardinality(st.targets))::int] AS target,
               st.types[1 + floor(random() * cardinality(st.types))::int] AS event_type,
               st.hi - (i + 0.2 + 0.6 * random()) * make_interval(secs => st.spacing)
                   AS received_at,
               (1 + 3 * random()) * interval '1 second' AS took,
               i > 0 AND random() < %(ignored)s AS ignored  -- the newest is always processed
        FROM stretch st
        CROSS JOIN LATERAL generate_series(
            0, floor(extract(epoch FROM st.hi - st.lo) / st.spacing)::int - 1) AS i
    ), delivery AS MATERIALIZED (
        SELECT p.*, split_part(p.target, '/', 1)::uuid AS org_id,
               split_part(p.target, '/', 2)::uuid AS project_id,
               CASE p.provider WHEN 'stripe' THEN 'evt_' WHEN 'hotmart' THEN 'HP'
                    WHEN 'asaas' THEN 'pay_' ELSE 'blv_' END || left(md5(p.id::text), 24)
                   AS event_id,
               (1990 + 500 * floor(random() * 40))::int AS amount_cents
        FROM picked p
    ), raw_rows AS (
        INSERT INTO public.external_events_raw (id, org_id, provider, {event_id}, event_type,
                                                {payload}, {headers}, status, {error}, received_at,
                                                processed_at {extra_columns})
        SELECT d.id, d.org_id, d.provider, d.event_id, d.event_type,
               jsonb_build_object('id', d.event_id, 'type', d.event_type,
                                  'amount', d.amount_cents, 'currency', 'BRL'),
               '{{"content-type": "application/json"}}'::jsonb,
               CASE WHEN d.ignored THEN 'ignored' ELSE 'processed' END,
               CASE WHEN d.ignored THEN 'Invalid Signature' END,
               d.received_at, CASE WHEN NOT d.ignored THEN d.received_at + d.took END
               {extra_values}
        FROM delivery d
    ), normalized AS (
        INSERT INTO public.external_events_normalized (org_id, raw_event_id, provider,
                                                       canonical_type, canonical_payload,
                                                       normalized_at)
        SELECT d.org_id, d.id, d.provider, d.canonical,
               jsonb_build_object('provider_object_id', d.event_id,
                                  'amount_cents', d.amount_cents, 'currency', 'BRL'),
               d.received_at + d.took
        FROM delivery d WHERE NOT d.ignored
    ), applied AS (
        INSERT INTO public.jobs_queue (org_id, project_id, job_type, payload, status, attempts,
                                       trace_id, available_at, created_at, updated_at)
        SELECT d.org_id, d.project_id, 'apply_event', jsonb_build_object('raw_event_id', d.id),
               'completed', 1, d.event_id, d.received_at + d.took, d.received_at + d.took,
               d.received_at + d.took + interval '1 second'
        FROM delivery d WHERE NOT d.ignored
    ), legacy AS (
        INSERT INTO public.external_events (org_id, provider, external_event_id, event_type,
                                            payload_json, status, received_at, processed_at)
        SELECT d.org_id, d.provider, d.event_id, d.event_type,
               jsonb_build_object('id', d.event_id, 'type', d.event_type),
               'processed', d.received_at, d.received_at + d.took
        FROM delivery d
    )
    SELECT count(*) FROM delivery
"""

# The scheduler's jobs over a stretch of time, all completed: a sync per active integration and
# a consistency run per organisation, at the same thinning as the deliveries.
PERIODIC = """
    WITH plan AS (
        SELECT * FROM unnest(%(kinds)s::text[], %(orgs)s::uuid[], %(projects)s::uuid[],
                             %(every)s::float8[]) AS p(kind, org_id, project_id, every)
    ), stretch AS (
        SELECT plan.*, s.lo, s.hi, s.spacing
        FROM plan CROSS JOIN LATERAL (VALUES
            (%(since)s::timestamptz, least(%(until)s::timestamptz, %(recent)s::timestamptz),
             plan.every * %(thin)s),
            (greatest(%(since)s::timestamptz, %(recent)s::timestamptz), %(until)s::timestamptz,
             plan.every)
        ) AS s(lo, hi, spacing)
        WHERE s.hi > s.lo
    )
    INSERT INTO public.jobs_queue (org_id, project_id, job_type, payload, status, attempts,
                                   trace_id, available_at, created_at, updated_at)
    SELECT st.org_id, st.project_id, st.kind, '{}'::jsonb, 'completed', 1,
           md5(st.kind || i || random()), t.at, t.at, t.at + (2 + 20 * random()) * interval '1 second'
    FROM stretch st
    CROSS JOIN LATERAL generate_series(
        0, floor(extract(epoch FROM st.hi - st.lo) / st.spacing)::int - 1) AS i
    CROSS JOIN LATERAL (SELECT st.hi - (i + random()) * make_interval(secs => st.spacing) AS at) t
"""

# What the queue and the consistency engine remember: two sync jobs that gave up today (a
# provider's API timed out three times), and anomalies, the critical ones resolved long ago.
PAST_INCIDENTS = """
    WITH dead AS (
        INSERT INTO public.jobs_queue (org_id, project_id, job_type, payload, status, attempts,
                                       last_error, trace_id, available_at, created_at, updated_at)
        SELECT %(org)s, %(project)s, 'sync_provider', '{"provider": "asaas"}', 'dead', 3,
               'asaas API: 504 Gateway Timeout', md5(random()::text), at, at, at + interval '7 minutes'
        FROM (VALUES (now() - interval '9 hours'), (now() - interval '9 hours 20 minutes')) v(at)
    )
    INSERT INTO public.state_anomalies (org_id, provider, entity_type, external_id, anomaly_type,
                                        details, detected_at, resolved_at, severity, status)
    VALUES (%(org)s, 'asaas', 'payment', 'pay_7f3c91aa', 'payment_without_order',
            '{"note": "order arrived later"}', now() - interval '3 days', NULL, 'warning', 'open'),
           (%(org)s, 'stripe', 'payout', 'po_1Q2w3e', 'payout_unmatched',
            '{"amount_cents": 129000}', now() - interval '20 hours', NULL, 'info', 'open'),
           (%(org)s, 'stripe', 'payment', 'pi_3Nx8aa', 'version_mismatch',
            '{"note": "replayed"}', now() - interval '12 days', now() - interval '11 days',
            'critical', 'resolved')
"""


def ensure_tenants(conn: db.Connection, secret_key: str) -> None:
    orgs, users, members, projects, integrations, keys = TENANT_ROWS
    with conn.cursor() as cur:
        cur.executemany(orgs, [(o.id, o.name, o.key) for o in tenants.ORGS])
        cur.executemany(users, [(o.owner_id, f"owner@{o.key}.example") for o in tenants.ORGS])
        cur.executemany(members, [(o.id, o.owner_id) for o in tenants.ORGS])
        cur.executemany(projects, [(p.id, p.org.id, p.name) for p in tenants.PROJECTS])
        cur.executemany(integrations, [
            (i.id, i.org.id, i.provider.name, "active" if i.active else "disconnected",
             tenants.webhook_secret(secret_key, i)) for i in tenants.INTEGRATIONS])
        cur.executemany(keys, [(i.org.id, i.project.id, i.provider.name, i.webhook_key, i.active)
                               for i in tenants.INTEGRATIONS])


def fill(conn: db.Connection, stretches: Sequence[Stretch]) -> int:
    """Insert the deliveries of these stretches and all the pipeline made of them."""
    stretches = [s for s in stretches if s.until > s.since]
    if not stretches:
        return 0
    columns = raw.column_set(conn)
    extra = columns == raw.DATA_TRUTH
    query = sql.SQL(FILL).format(
        event_id=columns.ident("event_id"), payload=columns.ident("payload"),
        headers=columns.ident("headers"), error=columns.ident("error"),
        extra_columns=sql.SQL(", project_id, signature_valid" if extra else ""),
        extra_values=sql.SQL(", d.project_id, NOT d.ignored" if extra else ""))
    params = {
        "providers": [s.provider.name for s in stretches],
        "every": [s.provider.every for s in stretches],
        "since": [s.since for s in stretches], "until": [s.until for s in stretches],
        "types": [",".join(s.provider.event_types) for s in stretches],
        "canonical": [s.provider.canonical_type for s in stretches],
        "targets": [",".join(f"{i.org.id}/{i.project.id}" for i in tenants.of(s.provider))
                    for s in stretches],
        "recent": kit.db_now(conn) - RECENT, "thin": THIN, "ignored": IGNORED_SHARE,
    }
    with conn.transaction():
        # A bulk load of rows consistent by construction: skip the per-row FK checks, as
        # pg_restore does. Live traffic always goes through them. Needs the superuser.
        conn.execute("SET LOCAL session_replication_role = replica")
        count = conn.execute(query, params).fetchone()
    return int(count[0]) if count else 0


def periodic(conn: db.Connection, since: datetime, until: datetime) -> None:
    """The scheduler's completed jobs in (since, until]."""
    plan: list[tuple[str, uuid.UUID, uuid.UUID | None, float]] = [
        ("sync_provider", i.org.id, i.project.id, SYNC_EVERY) for i in tenants.ACTIVE]
    plan += [("consistency_run", o.id, None, CONSISTENCY_EVERY) for o in tenants.ORGS]
    conn.execute(PERIODIC, {
        "kinds": [p[0] for p in plan], "orgs": [p[1] for p in plan],
        "projects": [p[2] for p in plan], "every": [p[3] for p in plan],
        "since": since, "until": until, "recent": kit.db_now(conn) - RECENT, "thin": THIN})


def history(conn: db.Connection) -> int:
    """A fresh database's week."""
    now = kit.db_now(conn)
    added = fill(conn, [Stretch(p, now - HISTORY, now) for p in tenants.PROVIDERS])
    periodic(conn, now - HISTORY, now)
    conn.execute(PAST_INCIDENTS, {"org": tenants.ORBITA.id, "project": tenants.ORBITA_PLANS.id})
    return added


def newest(conn: db.Connection, providers: Iterable[Provider],
           before: timedelta = timedelta(0)) -> Mapping[Provider, datetime]:
    """Each provider's newest delivery older than `before` (within HISTORY; else its start)."""
    chosen = list(providers)
    rows = conn.execute(
        """SELECT p.name, coalesce(max(r.received_at), now() - %(history)s)
           FROM unnest(%(names)s::text[]) AS p(name)
           LEFT JOIN public.external_events_raw r ON r.provider = p.name
                AND r.received_at >= now() - %(history)s AND r.received_at < now() - %(before)s
           GROUP BY p.name""",
        {"names": [p.name for p in chosen], "history": HISTORY, "before": before}).fetchall()
    by_name = {p.name: p for p in chosen}
    return {by_name[r[0]]: r[1] for r in rows}


def catch_up(conn: db.Connection, providers: Iterable[Provider], until: datetime,
             before: timedelta = timedelta(0)) -> int:
    """Fill each provider from its newest delivery (older than `before`) to `until`."""
    return fill(conn, [Stretch(p, since, until) for p, since in newest(conn, providers, before).items()])


def catch_up_periodic(conn: db.Connection, until: datetime) -> None:
    row = conn.execute("""SELECT coalesce(max(created_at), now() - %s) FROM public.jobs_queue
                          WHERE job_type = 'sync_provider'""", (HISTORY,)).fetchone()
    assert row is not None
    periodic(conn, row[0], until)

