"""Production volume for each sandbox system, loaded by `bench/scale.py`.

One module per system, each with

    def load(conn: psycopg.Connection[Any], scale: float, seed: int) -> dict[str, int]

`conn` is an autocommit connection to the system's own database as the sandbox's superuser.
`load` inserts history set-based (INSERT ... SELECT over generate_series, values derived from
hashes of the row number and the seed, so the same seed gives the same rows), creates partitions
the way the system does, leaves the indexes exactly as the sandbox defines them (no index the
real system lacks) and runs ANALYZE; it returns the rows each table it loaded holds afterwards
(`table_rows`). `scale` 1.0 is
production volume, 0.1 a tenth.

The history is dated from 90 days ago up to 24 hours ago: the last 24 hours stay the sandbox's
live, healthy traffic, so every check's window of a day or less sees what it sees at default
volume and only cost that follows the table (or a longer window) grows. Loaded rows describe a
healthy past: nothing in them may turn a check red on the healthy sandbox.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import psycopg

Loader = Callable[[psycopg.Connection[Any], float, int], dict[str, int]]

HISTORY_DAYS = 90
LIVE_HOURS = 24


def table_rows(conn: psycopg.Connection[Any], *tables: str) -> dict[str, int]:
    """Each table's row count (public schema), for the benchmark's record of what it measured."""
    counts = {}
    for table in tables:
        row = conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()  # noqa: S608 - our names
        counts[table] = int(row[0]) if row else 0
    return counts


def loader(system: str) -> Loader:
    """The load function of a system's module (bench/volume/<system>.py)."""
    module = importlib.import_module(f"bench.volume.{system}")
    return module.load  # type: ignore[no-any-return]
