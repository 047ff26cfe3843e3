"""Read-only in layers, proven against the sandbox's real PostgreSQL with the suite's own code.

Each escape is tried past the lint (straight to the server) and must fail, and afterwards no row
in any table and no large object has changed. The time guards are proven the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from fixtures.connecting import APPLICATION_NAME, Connection, connect
from fixtures.errors import (
    CheckerLacksPrivilege,
    DatabaseUnavailable,
    GuardNotInEffect,
    RefusedAsUser,
    UnsafeOperation,
)
from fixtures.evidence import Evidence
from fixtures.postgres import ReadOnlyDB, _assert_guards, open_guarded_transaction
from fixtures.settings import Budget
from tests.sandbox_handle import Sandbox

pytestmark = pytest.mark.sandbox

BUDGET = Budget(statement_timeout=1.0, lock_timeout=1.0)
# The tables the escapes aim at, none of which the sandbox's traffic writes, plus large objects.
FINGERPRINT = """
select (select md5(string_agg(id::text || name, ',' order by id)) from public.sites) as sites,
       (select count(*) from public.watchtower_checks) as watchtower_checks,
       (select count(*) from public.sync_dlq) as sync_dlq,
       (select count(*) from pg_class where relname like 'sessions_%') as partitions,
       (select count(*) from pg_largeobject_metadata) as large_objects
"""
ESCAPES = [
    "insert into public.sites (id, public_id, domain, name) values (gen_random_uuid(), 'x', 'x', 'x')",
    "select 1; commit; insert into public.watchtower_checks (check_name, ok) values ('x', true)",
    "set transaction read write",
    "select lo_create(0)",
    "lock table public.sites in access exclusive mode",
    "with gone as (delete from public.sync_dlq returning id) select count(*) from gone",
    "update public.sites set name = 'changed'",
]
# Functions that write: the lint cannot know a user-defined function writes; the role's missing
# EXECUTE grant and the READ ONLY transaction refuse them.
RPC_WRITES = [
    "select public.watchtower_partition_drift_check_v1()",
    "select public.create_next_month_partitions()",
]
# Not writes, so the server lets them through: the lint is the layer that refuses them.
LINT_ONLY = [
    "select set_config('default_transaction_read_only', 'off', false)",
    "select pg_advisory_lock(42)",
    "select pg_notify('channel', 'payload')",
]


@pytest.fixture
def conn(sandbox: Sandbox) -> Iterator[Connection]:
    connection = connect(sandbox.checks_ro_url("opsmantik"), BUDGET)
    yield connection
    connection.close()


@pytest.fixture
def ro(conn: Connection) -> Iterator[ReadOnlyDB]:
    open_guarded_transaction(conn, BUDGET)
    yield ReadOnlyDB(conn, Evidence("test"), BUDGET)
    conn.rollback()


def snapshot(sandbox: Sandbox) -> tuple[object, ...] | None:
    with psycopg.connect(sandbox.superuser_url("opsmantik"), autocommit=True) as admin:
        return admin.execute(FINGERPRINT).fetchone()


@pytest.mark.parametrize("sql", ESCAPES + LINT_ONLY)
def test_lint_refuses_the_escape(ro: ReadOnlyDB, sql: str):
    with pytest.raises(UnsafeOperation):
        ro.rows(sql)


@pytest.mark.parametrize("sql", ESCAPES + RPC_WRITES)
def test_the_server_refuses_it_too_and_nothing_changes(sandbox: Sandbox, conn: Connection, sql: str):
    before = snapshot(sandbox)
    open_guarded_transaction(conn, BUDGET)
    with pytest.raises((UnsafeOperation, DatabaseUnavailable, CheckerLacksPrivilege)):
        ReadOnlyDB(conn, Evidence("test"), BUDGET)._run(sql, {})
    conn.rollback()
    assert snapshot(sandbox) == before


def test_the_role_itself_has_no_write_grant(sandbox: Sandbox):
    with psycopg.connect(sandbox.checks_ro_url("opsmantik"), autocommit=True) as conn:
        conn.execute("set default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("insert into public.watchtower_checks (check_name, ok) values ('x', true)")


def test_guards_are_read_back_from_the_session(conn: Connection):
    guards = open_guarded_transaction(conn, BUDGET)
    assert guards["transaction_read_only"] == "on"
    assert guards["statement_timeout"] == "1000"
    assert guards["timezone"] == "UTC"
    assert guards["application_name"] == APPLICATION_NAME
    conn.rollback()


def test_a_guard_not_in_effect_is_refused():
    seen = {"transaction_read_only": "off", "statement_timeout": "0", "lock_timeout": "1000",
            "idle_in_transaction_session_timeout": "30000", "timezone": "UTC"}
    wanted = {"statement": "1000", "lock": "1000", "idle": "30000"}
    with pytest.raises(GuardNotInEffect, match="transaction_read_only is off.*statement_timeout is 0"):
        _assert_guards(seen, wanted)


def test_a_slow_query_is_cut_by_statement_timeout(ro: ReadOnlyDB):
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="query timed out after 1 s"):
        ro.rows("select pg_sleep(10) as slept")
    assert time.monotonic() - started < BUDGET.statement_timeout + 1


def test_no_query_of_the_suite_keeps_running_after_it_gives_up(sandbox: Sandbox, ro: ReadOnlyDB):
    with pytest.raises(DatabaseUnavailable):
        ro.rows("select pg_sleep(10) as slept")
    with psycopg.connect(sandbox.superuser_url("opsmantik"), autocommit=True) as admin:
        active = admin.execute(
            "select count(*) from pg_stat_activity where application_name = %s and state = 'active'",
            (APPLICATION_NAME,),
        ).fetchone()
    assert active == (0,)


def test_a_locked_table_is_a_lock_timeout_not_a_wait(sandbox: Sandbox, conn: Connection):
    budget = Budget(statement_timeout=5.0, lock_timeout=1.0)
    open_guarded_transaction(conn, budget)
    ro = ReadOnlyDB(conn, Evidence("test"), budget)
    locked, release = threading.Event(), threading.Event()

    def migration() -> None:
        with psycopg.connect(sandbox.superuser_url("opsmantik")) as admin:
            admin.execute("lock table public.sites in access exclusive mode")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=migration)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="lock timeout after 1 s"):
            ro.rows("select count(*) as sites from public.sites")
        assert time.monotonic() - started < budget.lock_timeout + 1
    finally:
        release.set()
        holder.join(10)
        conn.rollback()


KILLED_RUNNER = """
import sys, time
from fixtures.connecting import connect
from fixtures.postgres import open_guarded_transaction
from fixtures.settings import Budget
budget = Budget(idle_in_transaction_timeout=2.0)
conn = connect(sys.argv[1], budget)
open_guarded_transaction(conn, budget)
print("in transaction", flush=True)
time.sleep(60)
"""


def test_a_killed_runner_leaves_no_transaction_behind(sandbox: Sandbox):
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    with subprocess.Popen([sys.executable, "-c", KILLED_RUNNER, sandbox.checks_ro_url("opsmantik")], cwd=REPO,
                          stdout=subprocess.PIPE, text=True) as runner:
        assert runner.stdout is not None
        assert runner.stdout.readline().strip() == "in transaction"
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
    deadline = time.monotonic() + 2.0 + 1
    with psycopg.connect(sandbox.superuser_url("opsmantik"), autocommit=True) as admin:
        while True:
            left = admin.execute(
                "select count(*) from pg_stat_activity where application_name = %s "
                "and state like 'idle in transaction%%'", (APPLICATION_NAME,)).fetchone()
            if left == (0,) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert left == (0,)


@pytest.fixture
def as_user_db(sandbox: Sandbox) -> Iterator[ReadOnlyDB]:
    """A guarded transaction on LaunchSin, whose checks_ro may act as `authenticated`."""
    connection = connect(sandbox.checks_ro_url("launchsin"), BUDGET)
    open_guarded_transaction(connection, BUDGET)
    yield ReadOnlyDB(connection, Evidence("test"), BUDGET)
    connection.close()


def test_a_refusal_met_as_the_user_is_told_apart_from_a_timeout(as_user_db: ReadOnlyDB):
    """EI-13 reads a refusal as the user's experience (a finding); a timeout stays UNKNOWN."""
    claims = {"sub": "00000000-0000-0000-0000-000000000000", "role": "authenticated"}
    with pytest.raises(RefusedAsUser, match="as authenticated, PostgreSQL refuses: permission denied"):
        as_user_db.rows_as("authenticated", claims, "select count(*) as users from auth.users")


def test_a_timeout_as_the_user_is_not_a_refusal(as_user_db: ReadOnlyDB):
    claims = {"sub": "00000000-0000-0000-0000-000000000000", "role": "authenticated"}
    with pytest.raises(DatabaseUnavailable, match="query timed out") as raised:
        as_user_db.rows_as("authenticated", claims, "select pg_sleep(10) as slept")
    assert not isinstance(raised.value, RefusedAsUser)
