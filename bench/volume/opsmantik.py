"""OpsMantik at production volume: 2 M sessions and about 10 M events over 90 days.

The runbooks' own figures: a site network of this size records a session every few seconds
around the clock; 90 days of it is 2 M sessions with five events each on average. The rows are
the sandbox's own visits (`sandbox.opsmantik.seed.fill`: the same sites, pages, devices and
attribution mix, a processed signal per session), only denser and older, with the monthly
partitions of both tables created by the sandbox's own partition upkeep.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from bench.volume import HISTORY_DAYS, LIVE_HOURS, table_rows
from sandbox.opsmantik import partitions, seed

SESSIONS = 2_000_000
MOST_EVENTS = 9  # 1 to 9 events a session: five on average, 10 M events in all


def load(conn: psycopg.Connection[Any], scale: float, seed_value: int) -> dict[str, int]:
    now = _now(conn)
    since, until = now - timedelta(days=HISTORY_DAYS), now - timedelta(hours=LIVE_HOURS)
    month = partitions.first_month(conn, timedelta(days=HISTORY_DAYS))
    while month <= partitions.current_month(conn):
        partitions.ensure(conn, month)
        month = partitions.add_months(month, 1)
    spacing = (until - since) / max(1, round(SESSIONS * scale))
    conn.execute("SELECT setseed(%s)", (_unit(seed_value),))
    seed.fill(conn, since, until, spacing=spacing, most_events=MOST_EVENTS)
    conn.execute("ANALYZE public.sessions, public.events, public.processed_signals")
    return table_rows(conn, "sessions", "events", "processed_signals")


def _now(conn: psycopg.Connection[Any]) -> Any:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


def _unit(seed_value: int) -> float:
    """setseed() takes a number in [-1, 1]."""
    return (seed_value % 2001) / 1000.0 - 1.0

