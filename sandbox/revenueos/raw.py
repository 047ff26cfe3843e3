"""external_events_raw's two column sets, and how the sandbox's writers find which one the table
has.

A replay of the migrations gives the saas_core set (`payload_json`, `headers_json`,
`external_event_id`, `error_text`); the data truth layer's set (`payload`, `headers`,
`idempotency_key`, `error_message`, plus `project_id`, `environment`, `signature_valid`) is what
half of the code writes, and production may have it. Writers look at the table, not at a flag:
the fault raw_columns_data_truth changes it under them.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from sandbox import db


@dataclass(frozen=True)
class ColumnSet:
    name: str
    event_id: str
    payload: str
    headers: str
    error: str
    extra: tuple[str, ...] = ()  # columns only this set has

    def renames_to(self, other: ColumnSet) -> list[tuple[str, str]]:
        return [(getattr(self, f), getattr(other, f))
                for f in ("event_id", "payload", "headers", "error")]

    def ident(self, field: str) -> sql.Identifier:
        return sql.Identifier(getattr(self, field))


REPLAY = ColumnSet("replay", "external_event_id", "payload_json", "headers_json", "error_text")
DATA_TRUTH = ColumnSet("data truth", "idempotency_key", "payload", "headers", "error_message",
                       ("project_id", "environment", "signature_valid"))
SETS = (REPLAY, DATA_TRUTH)

COLUMNS = """
    SELECT array_agg(attname::text) FROM pg_attribute
    WHERE attrelid = 'public.external_events_raw'::regclass AND attnum > 0 AND NOT attisdropped
"""


def column_set(conn: db.Connection) -> ColumnSet:
    """The set the table has (the replay's when both are complete)."""
    row = conn.execute(COLUMNS).fetchone()
    present = set(row[0] if row and row[0] else ())
    for candidate in SETS:
        if {candidate.event_id, candidate.payload, candidate.error} <= present:
            return candidate
    raise RuntimeError(f"external_events_raw has neither column set: {sorted(present)}")


def marked(columns: ColumnSet) -> sql.Composed:
    """The condition for rows a fault wrote (their payload carries its name)."""
    return sql.SQL("{} ? 'sandbox_fault'").format(columns.ident("payload"))


def insert(query: str, columns: ColumnSet, extra_values: str) -> sql.Composed:
    """An INSERT into external_events_raw written with `{event_id}`, `{payload}`, `{headers}`,
    `{error}`, `{extra_columns}` and `{extra_values}`, in the table's own column set: the data
    truth layer's also has project_id and signature_valid, given by `extra_values`."""
    extra = columns == DATA_TRUTH
    return sql.SQL(query).format(
        event_id=columns.ident("event_id"), payload=columns.ident("payload"),
        headers=columns.ident("headers"), error=columns.ident("error"),
        extra_columns=sql.SQL(", project_id, signature_valid" if extra else ""),
        extra_values=sql.SQL(extra_values if extra else ""))
