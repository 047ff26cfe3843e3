"""Time windows at a month boundary (SAFETY.md P17, matrix row 43), with the checks' own SQL.

The database's now() cannot be moved, so each query is run with now() replaced by a fixed
instant, 2026-02-01 00:30Z, against a scratch database whose sessions are split over January's
and February's partitions the way OpsMantik's are. The answers must count both partitions and
must not depend on the session's or the runner's time zone.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.sandbox_handle import Sandbox

pytestmark = pytest.mark.sandbox

AT = "'2026-02-01 00:30:00+00'::timestamptz"
SCRATCH = "runbook_checks_time_windows"
SCHEMA = """
create table public.sessions (id int, created_month date not null, created_at timestamptz)
    partition by range (created_month);
create table public.sessions_2026_01 partition of public.sessions
    for values from ('2026-01-01') to ('2026-02-01');
create table public.sessions_2026_02 partition of public.sessions
    for values from ('2026-02-01') to ('2026-03-01');
-- 23:50Z and 00:10Z around midnight UTC of the 1st, and one two hours before.
insert into public.sessions values
    (1, '2026-01-01', '2026-01-31 23:50:00+00'),
    (2, '2026-02-01', '2026-02-01 00:10:00+00'),
    (3, '2026-01-01', '2026-01-31 22:30:00+00');
"""


def check_sql(module: str, name: str) -> str:
    import ast
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "checks" / f"{module}.py"
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == name:
            return str(node.value.value)  # type: ignore[attr-defined]
    raise LookupError(name)


@pytest.fixture(scope="module")
def scratch(sandbox: Sandbox) -> Iterator[str]:
    admin_dsn = sandbox.superuser_url("postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"drop database if exists {SCRATCH}")
        admin.execute(f"create database {SCRATCH}")
    dsn = sandbox.superuser_url(SCRATCH)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
    yield dsn
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"drop database {SCRATCH}")


def at_boundary(dsn: str, sql: str, params: dict[str, object], timezone: str) -> object:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"set timezone = '{timezone}'")
        row = conn.execute(sql.replace("now()", AT), params).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("timezone", ["UTC", "America/Sao_Paulo", "Asia/Tokyo"])
def test_last_hour_counts_both_partitions_in_any_time_zone(scratch: str, timezone: str):
    sql = check_sql("opsmantik", "SESSIONS_SINCE")
    assert at_boundary(scratch, sql, {"minutes": 60}, timezone) == 2


@pytest.mark.parametrize("timezone", ["UTC", "America/Sao_Paulo"])
def test_newest_session_is_found_across_the_boundary(scratch: str, timezone: str):
    sql = check_sql("test_000_ingest_stalled", "NEWEST_SESSION")
    assert at_boundary(scratch, sql, {}, timezone) is not None


def test_month_key_drift_uses_the_utc_month(scratch: str):
    sql = check_sql("test_002_partition_drift", "SESSION_MONTH_DRIFT")
    # Sao Paulo is UTC-3: 23:50Z on the 31st is still January there, 00:10Z on the 1st is
    # January 31st 21:10 local. Both rows carry their UTC month, so neither has drifted.
    assert at_boundary(scratch, sql, {}, "America/Sao_Paulo") == 3
    with psycopg.connect(scratch, autocommit=True) as conn:
        drifted = conn.execute(
            sql.replace("now()", AT).replace("count(*) as sessions,", "")).fetchone()
    assert drifted == (0,)
