"""Monthly partitions of sessions and events: `<parent>_YYYY_MM`, first of month to first of next.

Months are UTC months on the database's clock, as the drift guards compute them.
"""

from __future__ import annotations

from datetime import date, timedelta

from psycopg import sql

from sandbox import db

PARENTS = ("sessions", "events")
# Serialises partition DDL between the daemon's upkeep and a fault or heal running at once.
LOCK_KEY = 730_002
CREATE = sql.SQL("CREATE TABLE public.{} PARTITION OF public.{} FOR VALUES FROM ({}) TO ({})")
DETACH = sql.SQL("ALTER TABLE public.sessions DETACH PARTITION public.{}")


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def current_month(conn: db.Connection) -> date:
    row = conn.execute("SELECT date_trunc('month', now() AT TIME ZONE 'utc')::date").fetchone()
    assert row is not None
    month: date = row[0]
    return month


def first_month(conn: db.Connection, window: timedelta) -> date:
    """The oldest month a window reaching `window` back from now touches: a predicate on it
    lets the planner prune partitions from "last N minutes" queries."""
    row = conn.execute(
        "SELECT date_trunc('month', (now() - %s::interval) AT TIME ZONE 'utc')::date", (window,)
    ).fetchone()
    assert row is not None
    month: date = row[0]
    return month


def name(parent: str, month: date) -> str:
    return f"{parent}_{month:%Y_%m}"


def exists(conn: db.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)).fetchone()
    return bool(row and row[0])


def ensure(conn: db.Connection, month: date) -> list[str]:
    """Create the month's missing partitions; return the names created."""
    # Checked before locking: a CREATE on a partitioned parent takes a strong lock, and the
    # daemon runs this every few seconds next to the checks' reads.
    missing = [p for p in PARENTS if not exists(conn, name(p, month))]
    if not missing:
        return []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        created = [p for p in missing if not exists(conn, name(p, month))]
        for parent in created:
            conn.execute(CREATE.format(sql.Identifier(name(parent, month)), sql.Identifier(parent),
                                       sql.Literal(month), sql.Literal(add_months(month, 1))))
    return [name(p, month) for p in created]


def drop(conn: db.Connection, month: date) -> None:
    """Drop the month's pair. Events go first: sessions' partition is referenced by their FK,
    and detaching it first checks that no event points into it any more."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS public.{}").format(
            sql.Identifier(name("events", month))))
        if exists(conn, name("sessions", month)):
            table = sql.Identifier(name("sessions", month))
            conn.execute(DETACH.format(table))
            conn.execute(sql.SQL("DROP TABLE public.{}").format(table))
