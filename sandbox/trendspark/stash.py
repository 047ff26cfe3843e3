"""The schema sandbox_stash, which the checks cannot read: what a TrendSpark fault takes away
or must remember (when its outage began) until its heal."""

from __future__ import annotations

from datetime import datetime

from sandbox import db
from sandbox.trendspark.incidents import STASH

SINCE = f"{STASH}.since"


def schema(conn: db.Connection) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {STASH}")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {SINCE} (fault text PRIMARY KEY, at timestamp)")


def exists(conn: db.Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone() == (True,)


def remember(conn: db.Connection, fault: str, at: datetime) -> None:
    schema(conn)
    conn.execute(f"INSERT INTO {SINCE} VALUES (%s, %s) ON CONFLICT (fault) DO UPDATE"
                 " SET at = excluded.at", (fault, at))


def recall(conn: db.Connection, fault: str) -> datetime | None:
    """When the fault's outage began; None if it never was applied."""
    if not exists(conn, SINCE):
        return None
    row = conn.execute(f"DELETE FROM {SINCE} WHERE fault = %s RETURNING at", (fault,)).fetchone()
    return row[0] if row else None


def drop_if_empty(conn: db.Connection) -> None:
    """The stash goes when the last fault using it is healed."""
    if conn.execute("SELECT to_regnamespace(%s) IS NULL", (STASH,)).fetchone() == (True,):
        return
    tables = [name for (name,) in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s", (STASH,))]
    since = conn.execute(f"SELECT count(*) FROM {SINCE}").fetchone() if "since" in tables else (0,)
    if tables in ([], ["since"]) and since == (0,):
        conn.execute(f"DROP SCHEMA {STASH} CASCADE")
