"""The database part of the faults on deliveries, keys, indexes and access: apply and heal.

Rows a fault adds or changes carry its name in raw_ref_json.sandbox_fault, so that heal finds
exactly those.
"""

from __future__ import annotations

from datetime import timedelta

from psycopg.types.json import Jsonb

from sandbox import kit
from sandbox.launchsin import seed, tenants
from sandbox.launchsin.incidents import (
    DEACTIVATED,
    DUPLICATE_GUARD_DROPPED,
    DUPLICATED,
    FUTURE,
    FUTURE_EVENTS,
    LAGGING,
    LAGS,
    RESUME_MARGIN,
    STOP_WINDOW,
    WITHOUT_HOTTOK,
    stopped,
)
from sandbox.launchsin.tenants import Connection
from sandbox.system import Context, Step


def resume(ctx: Context, connections: list[Connection]) -> int:
    """Fill the gap each connection's silence left, up to now, so it is healthy at once."""
    keep_quiet = stopped(ctx.active_faults())
    with ctx.superuser() as conn:
        now = kit.db_now(conn)
        gaps = seed.newest(conn, [c for c in connections if c not in keep_quiet], RESUME_MARGIN)
        return seed.fill(conn, [seed.Stretch(c, since, now) for c, since in gaps.items()])


# Lag, silence, death -------------------------------------------------------------------------

def lag_apply(name: str) -> Step:
    # What traffic wrote since the fault began is held back already (and marked).
    return kit.statement(
        """UPDATE public.canonical_events
           SET event_time = event_time - %(lag)s,
               raw_ref_json = raw_ref_json || jsonb_build_object('sandbox_fault', %(name)s::text)
           WHERE source_connection_id = %(id)s AND event_time > now() - %(lag)s
             AND NOT raw_ref_json ? 'sandbox_fault'""",
        {"lag": LAGS[name], "name": name, "id": LAGGING.id})


def lag_heal(name: str) -> Step:
    return kit.statement(
        """UPDATE public.canonical_events
           SET event_time = event_time + %(lag)s, raw_ref_json = raw_ref_json - 'sandbox_fault'
           WHERE source_connection_id = %(id)s AND raw_ref_json ->> 'sandbox_fault' = %(name)s""",
        {"lag": LAGS[name], "name": name, "id": LAGGING.id})


def forget(connection: Connection, window: timedelta) -> Step:
    return kit.statement("""DELETE FROM public.canonical_events
                            WHERE source_connection_id = %s AND ingested_at >= now() - %s""",
                         (connection.id, window))


def resume_after(*connections: Connection) -> Step:
    def heal(ctx: Context) -> None:
        resume(ctx, list(connections))
    return heal


def stop_all(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        # The event_time bound keeps the delete on an index (events are dated before ingest).
        conn.execute("""DELETE FROM public.canonical_events
                        WHERE ingested_at >= now() - %(w)s AND event_time >= now() - %(w)s * 2""",
                     {"w": STOP_WINDOW})
        conn.execute("DELETE FROM public.dlq_events WHERE created_at >= now() - %s", (STOP_WINDOW,))


deactivate = kit.statement("""UPDATE public.source_connections
                              SET is_active = false, updated_at = now() WHERE id = %s""",
                           (DEACTIVATED.id,))


_activate = kit.statement("""UPDATE public.source_connections
                             SET is_active = true, updated_at = now() WHERE id = %s""",
                          (DEACTIVATED.id,))


def reactivate(ctx: Context) -> None:
    _activate(ctx)
    resume(ctx, [DEACTIVATED])


# Keys, indexes, clocks and access ------------------------------------------------------------

def drop_guard(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        conn.execute("ALTER TABLE public.canonical_events "
                     "DROP CONSTRAINT IF EXISTS unique_event_per_source")
        # The runbook's "force re-ingest" gone wrong: one recent event stored a second time.
        conn.execute(
            """INSERT INTO public.canonical_events (org_id, project_id, source_connection_id,
                   event_type, event_time, idempotency_key, actor_json, entities_json, value_json,
                   raw_ref_json)
               SELECT org_id, project_id, source_connection_id, event_type, event_time,
                      idempotency_key, actor_json, entities_json, value_json,
                      raw_ref_json || jsonb_build_object('sandbox_fault', %s::text)
               FROM public.canonical_events
               WHERE source_connection_id = %s AND event_time >= now() - interval '1 hour'
               ORDER BY event_time DESC LIMIT 1""",
            (DUPLICATE_GUARD_DROPPED, DUPLICATED.id))


def restore_guard(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        conn.execute("DELETE FROM public.canonical_events WHERE raw_ref_json ->> 'sandbox_fault' = %s"
                     " AND source_connection_id = %s", (DUPLICATE_GUARD_DROPPED, DUPLICATED.id))
        kit.run_script(conn, __package__, "indexes.sql")


reindex = kit.script(__package__, "indexes.sql")
drop_project_index = kit.statement("DROP INDEX IF EXISTS public.idx_canonical_events_project_time")

# A source whose clock runs an hour ahead: three deliveries dated in the future.
future = kit.statement(
    """INSERT INTO public.canonical_events (org_id, project_id, source_connection_id,
           event_type, event_time, idempotency_key, actor_json, entities_json, value_json,
           raw_ref_json)
       SELECT e.org_id, e.project_id, e.source_connection_id, e.event_type,
              now() + interval '1 hour' + n * interval '1 minute',
              e.idempotency_key || '_clock' || n, e.actor_json, e.entities_json,
              e.value_json, e.raw_ref_json || jsonb_build_object('sandbox_fault', %s::text)
       FROM (SELECT * FROM public.canonical_events WHERE source_connection_id = %s
             ORDER BY event_time DESC LIMIT 1) e
       CROSS JOIN generate_series(1, 3) AS n""",
    (FUTURE_EVENTS, FUTURE.id))
forget_future = kit.statement(
    "DELETE FROM public.canonical_events WHERE raw_ref_json ->> 'sandbox_fault' = %s"
    " AND source_connection_id = %s", (FUTURE_EVENTS, FUTURE.id))


def deny_members(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        # A migration meant to tighten the policy that locks everyone out instead.
        conn.execute("DROP POLICY IF EXISTS canonical_events_select_member ON public.canonical_events")
        conn.execute("""CREATE POLICY canonical_events_select_member ON public.canonical_events
                        FOR SELECT TO authenticated USING (false)""")


def restore_policies(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        kit.run_script(conn, __package__, "policies.sql")


remove_member = kit.statement("DELETE FROM public.org_members WHERE org_id = %s AND user_id = %s",
                              (tenants.CHECK_ORG.id, tenants.CHECK_USER.id))
restore_member = kit.statement("""INSERT INTO public.org_members (org_id, user_id, role)
                                  VALUES (%s, %s, %s) ON CONFLICT DO NOTHING""",
                               (tenants.CHECK_ORG.id, tenants.CHECK_USER.id,
                                tenants.CHECK_USER.role))
remove_hottok = kit.statement("""UPDATE public.source_connections
                                 SET config_json = config_json - 'hotmart_secret',
                                     updated_at = now()
                                 WHERE id = %s""", (WITHOUT_HOTTOK.id,))


def restore_hottok(ctx: Context) -> None:
    secret = tenants.hotmart_secret(ctx.settings["hotmart_key"], WITHOUT_HOTTOK.id)
    with ctx.superuser() as conn:
        conn.execute("""UPDATE public.source_connections
                        SET config_json = config_json || %s, updated_at = now() WHERE id = %s""",
                     (Jsonb({"hotmart_secret": secret}), WITHOUT_HOTTOK.id))


