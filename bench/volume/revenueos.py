"""RevenueOS at production volume: ninety days of the sandbox tenants' webhook traffic and of
everything the pipeline, the scheduler, the consistency engine and the dunning cron made of it.

Figures at scale 1.0, and why. Runbook 003's Sev1 reads `external_events_raw` "for newest rows";
its checks look back 60 minutes to 7 days. The sandbox's live traffic already runs at a paying
SaaS's pace (Stripe every 6 s, Hotmart every 12 s, Asaas every 45 s, Belvo every 75 minutes: about
23,500 deliveries a day over nine active integrations), so production volume is that pace kept
up for the 89 days before the live day, all of it healthy and processed:

    external_events_raw         2.09 M  one per delivery (0.5 % ignored: a bad signature)
    external_events_normalized  2.08 M  one per processed delivery
    external_events             2.09 M  the legacy twin integration_freshness_view reads
    jobs_queue                  2.23 M  apply_event per delivery, sync_provider per integration
                                        every 10 min, consistency_run per organisation every 15
    dunning_logs                 44 k   the dunning cadence's sends (dunning.py's pace)
    state_anomalies               1 k   anomalies the consistency engine found and resolved

About 8.5 M rows, 2.7 GB with indexes: the "10 M rows" of SAFETY.md's P23. `scale` multiplies
the pace; the dates stay. The tables keep exactly the sandbox's indexes.

A production table lies in arrival order: its newest rows are in its last pages. Appending ninety
days behind the sandbox's own rows would leave the live rows at the start of the heap, where no
production table has them; so the event, job and dunning tables are rewritten in one
transaction (the sandbox's traffic waits on the lock): the history first, then the sandbox's own
rows in their order, then their indexes built again. About two minutes on two cores.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from bench.volume import HISTORY_DAYS, LIVE_HOURS
from sandbox.revenueos import dunning, raw, tenants
from sandbox.revenueos.seed import CONSISTENCY_EVERY, IGNORED_SHARE, SYNC_EVERY
from sandbox.revenueos.traffic import PREFIXES

# Rewritten in this order (each referenced table before the tables that reference it).
REWRITTEN = ("external_events_raw", "external_events_normalized", "external_events",
             "jobs_queue", "dunning_logs")
ORDER_BY = {"external_events_raw": "received_at", "external_events_normalized": "normalized_at",
            "external_events": "received_at", "jobs_queue": "created_at",
            "dunning_logs": "sent_at"}
ANOMALY_EVERY = 8 * 3600.0  # seconds between anomalies of one organisation, all resolved


def draw(k: int) -> str:
    """The k-th value in [0, 1) drawn from the row's hash `h` (eight per hash)."""
    return f"(('x' || substr(h, {4 * k + 1}, 4))::bit(16)::int / 65536.0::float8)"


# The deliveries of the history, one row each, in arrival order. `h` is the row's hash (seed,
# provider, row number): the raw event's id, its event id and every value drawn derive from it.
DELIVERIES = f"""
    CREATE TEMP TABLE delivery ON COMMIT DROP AS
    WITH plan AS MATERIALIZED (  -- the lists split once, not once per row
        SELECT provider, every, canonical, prefix, string_to_array(types, ',') AS types,
               string_to_array(targets, ',') AS targets
        FROM unnest(%(providers)s::text[], %(every)s::float8[], %(types)s::text[],
                    %(canonical)s::text[], %(targets)s::text[], %(prefixes)s::text[])
             AS p(provider, every, types, canonical, targets, prefix)
    ), hashed AS (
        SELECT p.*, i, h
        FROM plan p
        CROSS JOIN LATERAL generate_series(0, floor(%(span)s / p.every)::int - 1) AS i
        -- OFFSET 0 keeps the subquery whole: the hash is computed once, not once per value
        -- drawn from it
        CROSS JOIN LATERAL (SELECT md5(%(seed)s || ':' || p.provider || ':' || i) AS h OFFSET 0) x
    ), drawn AS (
        SELECT h, provider, canonical, prefix || left(h, 24) AS event_id,
               %(start)s::timestamptz
                   + make_interval(secs => (i + 0.2::float8 + 0.6 * {draw(0)}) * every) AS received_at,
               make_interval(secs => 1 + 3 * {draw(1)}) AS took, {draw(2)} < %(ignored)s AS ignored,
               targets[1 + floor({draw(3)} * cardinality(targets))::int] AS target,
               types[1 + floor({draw(4)} * cardinality(types))::int] AS event_type,
               1990 + 500 * floor(40 * {draw(5)})::int AS amount_cents
        FROM hashed
    )
    SELECT h::uuid AS id, split_part(target, '/', 1)::uuid AS org_id,
           split_part(target, '/', 2)::uuid AS project_id, provider, canonical, event_id,
           event_type, received_at, took, ignored, amount_cents, h
    FROM drawn
    ORDER BY received_at
"""
RAW_HISTORY = """
    INSERT INTO public.external_events_raw (id, org_id, provider, {event_id}, event_type,
                                            {payload}, {headers}, status, {error}, received_at,
                                            processed_at {extra_columns})
    SELECT d.id, d.org_id, d.provider, d.event_id, d.event_type,
           jsonb_build_object('id', d.event_id, 'type', d.event_type, 'amount', d.amount_cents,
                              'currency', 'BRL'),
           '{{"content-type": "application/json"}}'::jsonb,
           CASE WHEN d.ignored THEN 'ignored' ELSE 'processed' END,
           CASE WHEN d.ignored THEN 'Invalid Signature' END,
           d.received_at, CASE WHEN NOT d.ignored THEN d.received_at + d.took END {extra_values}
    FROM delivery d ORDER BY d.received_at
"""
NORMALIZED_HISTORY = """
    INSERT INTO public.external_events_normalized (id, org_id, raw_event_id, provider,
                                                   canonical_type, canonical_payload, normalized_at)
    SELECT md5('normalized:' || d.h)::uuid, d.org_id, d.id, d.provider, d.canonical,
           jsonb_build_object('provider_object_id', d.event_id, 'amount_cents', d.amount_cents,
                              'currency', 'BRL'),
           d.received_at + d.took
    FROM delivery d WHERE NOT d.ignored ORDER BY d.received_at
"""
LEGACY_HISTORY = """
    INSERT INTO public.external_events (id, org_id, provider, external_event_id, event_type,
                                        payload_json, status, received_at, processed_at)
    SELECT md5('legacy:' || d.h)::uuid, d.org_id, d.provider, d.event_id, d.event_type,
           jsonb_build_object('id', d.event_id, 'type', d.event_type), 'processed',
           d.received_at, d.received_at + d.took
    FROM delivery d ORDER BY d.received_at
"""
# apply_event for each processed delivery, and the scheduler's periodic jobs, all completed.
JOBS_HISTORY = """
    INSERT INTO public.jobs_queue (id, org_id, project_id, job_type, payload, status, attempts,
                                   trace_id, available_at, created_at, updated_at)
    SELECT id, org_id, project_id, job_type, payload, 'completed', 1, trace_id, at, at,
           at + took
    FROM (
        SELECT md5('job:' || d.h)::uuid AS id, d.org_id, d.project_id, 'apply_event' AS job_type,
               jsonb_build_object('raw_event_id', d.id) AS payload, d.event_id AS trace_id,
               d.received_at + d.took AS at, interval '1 second' AS took
        FROM delivery d WHERE NOT d.ignored
        UNION ALL
        SELECT h::uuid, p.org_id, p.project_id, p.kind, p.payload, h,
               %(start)s::timestamptz + make_interval(secs => (i + {jitter}) * p.every),
               make_interval(secs => 2 + 20 * {took})
        FROM unnest(%(kinds)s::text[], %(orgs)s::uuid[], %(projects)s::uuid[],
                    %(payloads)s::jsonb[], %(periods)s::float8[])
             AS p(kind, org_id, project_id, payload, every)
        CROSS JOIN LATERAL generate_series(0, floor(%(span)s / p.every)::int - 1) AS i
        CROSS JOIN LATERAL (SELECT md5(concat_ws(':', %(seed)s::text, p.kind, p.org_id, p.project_id,
                                                 p.payload, i)) AS h OFFSET 0) hashed
    ) jobs
    ORDER BY at
"""
# Payment k of a project falls due every `every` seconds and gets steps 1 .. 1 + (its hash mod 4)
# of the project's cadence, as dunning.py sends them; ids from the seed, so none is a live one.
DUNNING_HISTORY = """
    INSERT INTO public.dunning_logs (id, project_id, rule_id, payment_id, customer_id, channel,
                                     status, provider_message_id, sent_at)
    SELECT md5('dunning:' || h || step)::uuid, project_id, rule_id, md5('payment:' || h)::uuid,
           'cus_' || substr(h, 7, 12), channel,
           CASE WHEN {status} < 0.02 THEN 'failed' WHEN {status} < 0.16 THEN 'sent'
                WHEN {status} < 0.6 THEN 'delivered' ELSE 'read' END,
           CASE channel WHEN 'whatsapp' THEN 'wamid.' ELSE 'msg_' END || substr(md5(h || step), 1, 24),
           sent_at
    FROM (
        SELECT c.*, h, %(start)s::timestamptz + make_interval(days => c.days,
                                                              secs => k * c.every + 50 * {jitter})
                           AS sent_at
        FROM unnest(%(projects)s::uuid[], %(every)s::float8[], %(rules)s::uuid[],
                    %(steps)s::int[], %(days)s::int[], %(channels)s::text[])
             AS c(project_id, every, rule_id, step, days, channel)
        CROSS JOIN LATERAL generate_series(0, floor(%(span)s / c.every)::int) AS k
        CROSS JOIN LATERAL (SELECT md5(%(seed)s || ':' || c.project_id || ':' || k) AS h OFFSET 0) x
        WHERE c.step <= 1 + ('x' || substr(h, 31, 2))::bit(8)::int %% 4
    ) sends
    WHERE sent_at > %(start)s AND sent_at < %(until)s
    ORDER BY sent_at
"""
ANOMALIES_HISTORY = """
    INSERT INTO public.state_anomalies (id, org_id, provider, entity_type, external_id,
                                        anomaly_type, details, detected_at, resolved_at, severity,
                                        status)
    SELECT md5('anomaly:' || h)::uuid, o.org_id,
           (ARRAY['stripe', 'hotmart', 'asaas'])[1 + floor({a} * 3)::int],
           (ARRAY['payment', 'order', 'payout'])[1 + floor({b} * 3)::int], 'ext_' || left(h, 12),
           (ARRAY['payment_without_order', 'payout_unmatched', 'version_mismatch'])[1 + floor({c} * 3)::int],
           '{{"note": "resolved by the consistency engine"}}'::jsonb, at,
           at + (1 + 30 * {d}) * interval '1 hour',
           (ARRAY['info', 'warning', 'critical'])[1 + floor({e} * 3)::int], 'resolved'
    FROM unnest(%(orgs)s::uuid[]) AS o(org_id)
    CROSS JOIN LATERAL generate_series(0, floor(%(span)s / %(every)s)::int - 1) AS i
    CROSS JOIN LATERAL (SELECT md5(%(seed)s || ':anomaly:' || o.org_id || ':' || i) AS h OFFSET 0) x
    CROSS JOIN LATERAL (SELECT %(start)s::timestamptz
                               + make_interval(secs => (i + {jitter}) * %(every)s) AS at) t
    WHERE at + interval '31 hours' < %(until)s
"""


# The keys and indexes of the rewritten tables (and the foreign keys into them), as statements
# that drop them and create them again: the rows go into bare tables and each index is then
# built in one sorted pass, as pg_restore does, several times faster than millions of random
# inserts. Same names, same definitions. Foreign keys drop first and come back last.
KEYS = """
    SELECT format('ALTER TABLE %%s DROP CONSTRAINT %%I', conrelid::regclass, conname),
           format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', conrelid::regclass, conname,
                  pg_get_constraintdef(oid)),
           contype = 'f' AS foreign_key
    FROM pg_constraint
    WHERE contype IN ('p', 'u', 'f')
      AND (conrelid = ANY(%(tables)s::regclass[]) OR confrelid = ANY(%(tables)s::regclass[]))
    ORDER BY contype = 'f' DESC
"""
INDEXES = """
    SELECT format('DROP INDEX %%s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
    FROM pg_index i
    WHERE i.indrelid = ANY(%(tables)s::regclass[])
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


def load(conn: psycopg.Connection[Any], scale: float, seed: int) -> dict[str, int]:
    """Ninety days of healthy history at `scale` times production's pace; rows added per table."""
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    window = {"seed": str(seed), "start": now - timedelta(days=HISTORY_DAYS),
              "until": now - timedelta(hours=LIVE_HOURS),
              "span": (HISTORY_DAYS * 24 - LIVE_HOURS) * 3600.0}
    has_dunning = conn.execute("SELECT to_regclass('public.dunning_logs')").fetchone()[0]  # type: ignore[index]
    tables = [t for t in REWRITTEN if has_dunning or t != "dunning_logs"]
    names = sql.SQL(", ").join(sql.Identifier("public", t) for t in tables)
    added: dict[str, int] = {}
    with conn.transaction():
        # A bulk load consistent by construction: no per-row foreign key checks, as pg_restore
        # (and the sandbox's own seed) loads. Needs the superuser.
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("SET LOCAL work_mem = '256MB'")  # the sorts into arrival order in memory
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")  # and the index builds
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(names))
        for table in tables:
            conn.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT * FROM {}").format(
                sql.Identifier(f"kept_{table}"), sql.Identifier("public", table)))
        conn.execute(sql.SQL("TRUNCATE {}").format(names))
        qualified = [f"public.{t}" for t in tables]
        keys = conn.execute(KEYS, {"tables": qualified}).fetchall()
        indexes = conn.execute(INDEXES, {"tables": qualified}).fetchall()
        for drop, *_ in [*keys, *indexes]:
            conn.execute(drop)
        conn.execute(DELIVERIES, {**window, **_providers(scale), "ignored": IGNORED_SHARE})
        added["external_events_raw"] = conn.execute(_raw_history(conn)).rowcount
        added["external_events_normalized"] = conn.execute(NORMALIZED_HISTORY).rowcount
        added["external_events"] = conn.execute(LEGACY_HISTORY).rowcount
        added["jobs_queue"] = conn.execute(JOBS_HISTORY.format(jitter=draw(0), took=draw(1)),
                                           {**window, **_periodic(scale)}).rowcount
        if has_dunning:
            added["dunning_logs"] = conn.execute(
                DUNNING_HISTORY.format(status=draw(1), jitter=draw(2)),
                {**window, **_cadence(scale)}).rowcount
        for table in tables:  # the sandbox's own rows after the history, in their order
            conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {} ORDER BY {}").format(
                sql.Identifier("public", table), sql.Identifier(f"kept_{table}"),
                sql.Identifier(ORDER_BY[table])))
        for _, create, *_ in [*[k for k in keys if not k[2]], *indexes, *[k for k in keys if k[2]]]:
            conn.execute(create)
        added["state_anomalies"] = conn.execute(ANOMALIES_HISTORY.format(
            a=draw(0), b=draw(1), c=draw(2), d=draw(3), e=draw(4), jitter=draw(5)),
            {**window, "orgs": [o.id for o in tenants.ORGS], "every": ANOMALY_EVERY / scale}).rowcount
    for table in [*tables, "state_anomalies"]:
        # VACUUM as production's autovacuum would have: the visibility map set, the statistics
        # fresh (and the maintenance items still see a recent vacuum).
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier("public", table)))
    return added


def _raw_history(conn: psycopg.Connection[Any]) -> sql.Composed:
    """The raw rows in whichever column set the table has (as seed.fill writes them)."""
    return raw.insert(RAW_HISTORY, raw.column_set(conn), ", d.project_id, NOT d.ignored")


def _providers(scale: float) -> dict[str, list[Any]]:
    return {
        "providers": [p.name for p in tenants.PROVIDERS],
        "every": [p.every / scale for p in tenants.PROVIDERS],
        "types": [",".join(p.event_types) for p in tenants.PROVIDERS],
        "canonical": [p.canonical_type for p in tenants.PROVIDERS],
        "targets": [",".join(f"{i.org.id}/{i.project.id}" for i in tenants.of(p))
                    for p in tenants.PROVIDERS],
        "prefixes": [PREFIXES[p.name] for p in tenants.PROVIDERS],
    }


def _periodic(scale: float) -> dict[str, list[Any]]:
    plan: list[tuple[Any, ...]] = [
        ("sync_provider", i.org.id, i.project.id, {"provider": i.provider.name}, SYNC_EVERY)
        for i in tenants.ACTIVE]
    plan += [("consistency_run", o.id, None, {}, CONSISTENCY_EVERY) for o in tenants.ORGS]
    return {"kinds": [p[0] for p in plan], "orgs": [p[1] for p in plan],
            "projects": [p[2] for p in plan], "payloads": [Jsonb(p[3]) for p in plan],
            "periods": [p[4] / scale for p in plan]}


def _cadence(scale: float) -> dict[str, list[Any]]:
    steps = [(project, every, step, days, channel)
             for project, every in dunning.EVERY.items()
             for step, (days, channel, _) in enumerate(sorted(dunning.CADENCE), start=1)]
    return {"projects": [s[0].id for s in steps], "every": [s[1] / scale for s in steps],
            "rules": [dunning.rule_id(s[0], s[3], s[4]) for s in steps],
            "steps": [s[2] for s in steps], "days": [s[3] for s in steps],
            "channels": [s[4] for s in steps]}

