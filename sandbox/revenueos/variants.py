"""Another shape production may have, under which every item of runbook 003 must still pass: not
a fault (it turns nothing red), so it is not in the fault table; tests/test_sandbox_revenueos.py
applies it and runs the checks.

raw_columns_data_truth: external_events_raw in the data truth layer's column set (`payload`,
`headers`, `idempotency_key`, `error_message`, plus `project_id`, `environment`,
`signature_valid`, unique on org, provider and idempotency key), the shape that migration meant
and half of the code writes. Renames keep the data; the writers find the new names themselves.
"""

from __future__ import annotations

from psycopg import sql

from sandbox import db
from sandbox.revenueos import raw
from sandbox.revenueos.raw import ColumnSet
from sandbox.system import Context

UNIQUE = "external_events_raw_org_id_provider_{}_key"
EXTRA = (
    "project_id uuid REFERENCES public.projects (id) ON DELETE SET NULL",
    "environment text NOT NULL DEFAULT 'sandbox'",
    "signature_valid boolean DEFAULT false",
)


def _rename(conn: db.Connection, source: ColumnSet, target: ColumnSet) -> None:
    for old, new in source.renames_to(target):
        conn.execute(sql.SQL("ALTER TABLE public.external_events_raw RENAME COLUMN {} TO {}")
                     .format(sql.Identifier(old), sql.Identifier(new)))
    conn.execute(sql.SQL("ALTER TABLE public.external_events_raw RENAME CONSTRAINT {} TO {}").format(
        sql.Identifier(UNIQUE.format(source.event_id)), sql.Identifier(UNIQUE.format(target.event_id))))


def to_data_truth(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        if raw.column_set(conn) == raw.DATA_TRUTH:
            return
        _rename(conn, raw.REPLAY, raw.DATA_TRUTH)
        for column in EXTRA:
            conn.execute(f"ALTER TABLE public.external_events_raw ADD COLUMN {column}")


def to_replay(ctx: Context) -> None:
    with ctx.superuser() as conn, conn.transaction():
        if raw.column_set(conn) == raw.REPLAY:
            return
        for column in raw.DATA_TRUTH.extra:
            conn.execute(sql.SQL("ALTER TABLE public.external_events_raw DROP COLUMN {}").format(
                sql.Identifier(column)))
        _rename(conn, raw.DATA_TRUTH, raw.REPLAY)
