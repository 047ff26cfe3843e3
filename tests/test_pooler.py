"""The checks through a real pgbouncer in front of the sandbox's PostgreSQL (SAFETY.md P8, P25, P26;
matrix rows 32, 38, 39): transaction mode gives the results of a direct connection, guards in
effect; statement mode and a pooler logging in as the superuser are refused with a reason; and a
saturated pool costs the waiting check its deadline, not the run.

The checks run as a user runs them (a pytest subprocess, `run_as` from test_privileges.py); the
pooler is the distribution's binary (tests/loopback.py), skipped with the command that installs
it when missing."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fixtures.connecting import APPLICATION_NAME, check_deadline
from fixtures.errors import DeadlineExceeded
from fixtures.evidence import Evidence
from fixtures.postgres import Connections, open_guarded_transaction
from fixtures.settings import Budget, load_target
from fixtures.waiting import Deadline
from tests.conftest import ChecksPytester
from tests.loopback import Pooler, pgbouncer
from tests.sandbox_handle import Sandbox
from tests.test_privileges import run_as

pytestmark = pytest.mark.sandbox

MARGIN_S = 1.0  # SAFETY.md: "within X" means measured wall-clock time with a margin of 1 s
# Short limits for the saturated pool, passed the way a user would: a check's deadline of 6 s.
SHORT = Budget(connect_timeout=2.0, statement_timeout=2.0)
SHORT_ENV = {"CHECKS_CONNECT_TIMEOUT": "2", "CHECKS_STATEMENT_TIMEOUT": "2"}


def through(pooler: Pooler, sandbox: Sandbox) -> str:
    """The checks' login, through the pooler."""
    return pooler.url("checks_ro", sandbox.state.checks_ro_password, "opsmantik")


def pooler_for(sandbox: Sandbox, **settings: str) -> contextlib.AbstractContextManager[Pooler]:
    return pgbouncer(sandbox.state.pg_port, {"checks_ro": sandbox.state.checks_ro_password}, **settings)


@contextlib.contextmanager
def in_transaction(url: str) -> Iterator[psycopg.Connection]:
    """A client of the pooler inside a transaction, which holds a server connection until it ends."""
    with psycopg.connect(url, application_name="holder") as conn:
        conn.execute("select 1")
        yield conn


def session_notes(run) -> dict[str, str]:
    return {c["item"]: e["text"] for c in run.results["checks"] for e in c["evidence"]
            if e["kind"] == "note" and e["text"].startswith("session:")}


def test_transaction_mode_gives_the_results_of_a_direct_connection(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester
):
    direct = sandbox_pytester.run("-m", "partition_drift")
    with pooler_for(sandbox, pool_mode="transaction", default_pool_size="2",
                    server_round_robin="1") as pooler:
        url = through(pooler, sandbox)
        with in_transaction(url), in_transaction(url):
            pass  # two server connections now, which the checks' transactions take in turn
        pooled = run_as(sandbox, sandbox_pytester, url)
    assert set(direct.states().values()) == {"PASS"}, direct.messages()
    assert pooled.states() == direct.states(), pooled.messages()
    # Set per transaction in the same round trip and read back there: in effect through the pooler.
    notes = session_notes(pooled)
    assert set(notes) == set(pooled.states())
    assert all("role checks_ro, read-only on, statement_timeout 5000 ms" in n for n in notes.values())


def test_statement_mode_is_refused_with_the_remedy(sandbox: Sandbox, sandbox_pytester: ChecksPytester):
    with pooler_for(sandbox, pool_mode="statement") as pooler:
        run = run_as(sandbox, sandbox_pytester, through(pooler, sandbox))
    assert set(run.states().values()) == {"UNKNOWN"}
    assert all("the pooler runs in statement mode" in m and "use its session or transaction mode" in m
               for m in run.messages().values()), run.messages()


def test_a_pooler_logging_in_as_the_superuser_is_refused(sandbox: Sandbox, sandbox_pytester: ChecksPytester):
    superuser = ("postgres", sandbox.state.superuser_password)
    with pooler_for(sandbox, pool_mode="transaction", server_user=superuser) as pooler:
        run = run_as(sandbox, sandbox_pytester, through(pooler, sandbox))
    assert set(run.states().values()) == {"UNKNOWN"}
    assert all("session identity refused: the role in effect is postgres" in m
               and "postgres is a superuser" in m for m in run.messages().values()), run.messages()


def waiting_checks(pooler: Pooler) -> set[tuple[int, str]]:
    """The checks' clients the pooler holds in its queue, by port and time of connection."""
    return {(c["port"], c["connect_time"]) for c in pooler.clients()
            if c["state"] == "waiting" and c["application_name"] == APPLICATION_NAME}


def release_once_a_check_gave_up(pooler: Pooler, holder: psycopg.Connection, until: float) -> None:
    """End the holder's transaction once a second check waits: the first one gave up. (pgbouncer
    keeps a client that hung up while waiting in its queue, so the first may still be listed.)"""
    seen: set[tuple[int, str]] = set()
    try:
        while len(seen) < 2 and time.monotonic() < until:
            seen |= waiting_checks(pooler)
            time.sleep(0.05)
    finally:
        holder.close()


def test_a_saturated_pool_costs_one_check_its_deadline(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester, monkeypatch
):
    """pool_size 1 and its one server connection held by another client; pgbouncer would hold
    the checks' queries in its queue for query_wait_timeout."""
    for name, value in SHORT_ENV.items():
        monkeypatch.setenv(name, value)
    with pooler_for(sandbox, pool_mode="transaction", default_pool_size="1",
                    query_wait_timeout="120") as pooler:
        url = through(pooler, sandbox)
        with in_transaction(url) as holder:
            releaser = threading.Thread(target=release_once_a_check_gave_up,
                                        args=(pooler, holder, time.monotonic() + 120))
            releaser.start()
            run = run_as(sandbox, sandbox_pytester, url)
            releaser.join()
    checks = {c["item"]: c for c in run.results["checks"]}
    first, *later = checks.values()
    assert first["state"] == "UNKNOWN", run.messages()
    assert "waited for the pooler" in first["message"] and "\n" not in first["message"]
    assert first["duration_s"] < check_deadline(SHORT) + MARGIN_S
    # The next check opens a new connection and passes: no message repeated, none grown.
    assert {c["item"]: (c["state"], c["message"]) for c in later} == \
        {c["item"]: ("PASS", "") for c in later}


@pytest.fixture
def pooled_connections(sandbox: Sandbox, tmp_path: Path) -> Iterator[tuple[Connections, Pooler]]:
    """The suite's own connections to OpsMantik, through a pool of one server connection."""
    with pooler_for(sandbox, pool_mode="transaction", default_pool_size="1") as pooler:
        (tmp_path / "pooled.env").write_text(f"OPSMANTIK_DATABASE_URL={through(pooler, sandbox)}\n")
        connections = Connections(load_target(tmp_path, "pooled", {}), SHORT)
        yield connections, pooler
        connections.close()


def test_a_connection_that_hit_a_deadline_is_replaced(pooled_connections, sandbox: Sandbox):
    connections, pooler = pooled_connections
    worked = connections.get("opsmantik")
    open_guarded_transaction(worked, SHORT)
    connections.finish("opsmantik", Evidence("t"))
    with in_transaction(through(pooler, sandbox)) as holder:
        check = Deadline.after(check_deadline(SHORT))
        same = connections.get("opsmantik", check)
        with pytest.raises(DeadlineExceeded, match="stage guards: .*waited for the pooler"):
            open_guarded_transaction(same, SHORT, check)
        assert check.remaining() > 0  # ended inside the check's deadline
        holder.close()
    assert same is worked and worked.closed  # never handed on
    fresh = connections.get("opsmantik")
    assert fresh is not worked
    assert open_guarded_transaction(fresh, SHORT)["role"] == "checks_ro"
