"""Every phase inside its deadline (SAFETY.md P2, P7, P25, P27): name resolution and every address of
a database, a client deadline during a query, the HTTP reachability probe's connect and headers;
and a connection left in doubt is replaced, never handed on. A deadline is a promise measured in
wall-clock time, so these tests assert elapsed times against the deadline + 1 s, and nothing
faster than that."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fixtures.connecting import APPLICATION_NAME, connect
from fixtures.errors import DatabaseUnavailable, DeadlineExceeded
from fixtures.evidence import Evidence
from fixtures.postgres import Connections, ReadOnlyDB, open_guarded_transaction
from fixtures.settings import Budget, load_target
from fixtures.waiting import Deadline
from tests.conftest import ChecksPytester
from tests.hostile import silent_listener
from tests.hostile.tcp import TcpServer
from tests.loopback import not_accepting, unanswering
from tests.sandbox_handle import Sandbox

PASSWORD = "deadline-canary-pw-31"
MARGIN_S = 1.0  # SAFETY.md: "within X" means measured wall-clock time with a margin of 1 s


def unknown_checks(run) -> dict[str, tuple[str, float]]:
    return {c["item"]: (c["message"], c["duration_s"]) for c in run.results["checks"]
            if c["state"] == "UNKNOWN"}


def test_several_silent_addresses_cost_one_connect_timeout(checks_pytester: ChecksPytester):
    """Two hosts that accept and never answer: libpq would spend connect_timeout on each."""
    connect_timeout = 4
    with unanswering("127.0.0.2", "127.0.0.3") as port:
        checks_pytester.env_file("silent", f"OPSMANTIK_DATABASE_URL=postgresql://checks_ro:{PASSWORD}"
                                           f"@127.0.0.2,127.0.0.3/opsmantik?port={port}\n")
        run = checks_pytester.run("--target", "silent", "-m", "partition_drift",
                                  f"--checks-connect-timeout={connect_timeout}")
    checks = unknown_checks(run)
    assert set(checks) == set(run.states()) and checks, run.messages()
    messages = {message for message, _ in checks.values()}
    assert len(messages) == 1, messages  # the first check's reason, not a longer one each time
    message = messages.pop()
    assert "(stage connect)" in message and "\n" not in message
    assert f"127.0.0.2:{port}: connection timeout expired" in message
    assert f"127.0.0.3:{port}: connection timeout expired" in message
    assert sum(duration for _, duration in checks.values()) < connect_timeout + MARGIN_S


@pytest.fixture
def hanging_resolver(monkeypatch) -> Iterator[None]:
    """A resolver that does not answer for a minute (getaddrinfo has no timeout of its own)."""
    answer = threading.Event()
    real = socket.getaddrinfo

    def slow(*args, **kwargs):
        answer.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    yield
    answer.set()


def test_name_resolution_counts_against_the_connect_timeout(hanging_resolver):
    budget = Budget(connect_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match=r"\(stage resolve\): the host name was not resolved"):
        connect(f"postgresql://checks_ro:{PASSWORD}@db.example.internal/opsmantik", budget)
    assert time.monotonic() - started < budget.connect_timeout_in_force + MARGIN_S


def drip_headers(conn: socket.socket, stop: threading.Event) -> None:
    """Starts an answer and never finishes its headers: a byte at a time, each before any
    per-read timeout."""
    while not stop.is_set():
        try:
            if not conn.recv(65536):
                return  # the client hung up before asking
            break
        except TimeoutError:
            continue
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
    while not stop.wait(0.3):
        conn.sendall(b"x")


@contextlib.contextmanager
def dripping_headers() -> Iterator[int]:
    server = TcpServer(drip_headers, name="hostile-drip")
    _, port = server.start()
    try:
        yield port
    finally:
        server.close()


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    with silent_listener() as (_, port):
        yield port


# endpoint, the stage the reason must name
HTTP_ENDPOINTS = [
    pytest.param(silent_port, "stage headers", id="accepts and never answers"),
    pytest.param(dripping_headers, "stage headers", id="drips its headers"),
    pytest.param(not_accepting, "stage connect", id="never accepts"),
]


@pytest.mark.parametrize(("endpoint", "stage"), HTTP_ENDPOINTS)
def test_the_reachability_probe_keeps_the_http_deadline(checks_pytester: ChecksPytester, endpoint, stage):
    """Each operation's timeout (5 s) is longer than the whole request's deadline (2 s)."""
    deadline = 2.0
    with endpoint() as port:
        checks_pytester.env_file("web", f"OPSMANTIK_BASE_URL=http://127.0.0.1:{port}\n")
        run = checks_pytester.run("--target", "web", "-m", "ingest_stalled", "-k", "test_is1_",
                                  "--checks-http-timeout=5", f"--checks-http-deadline={deadline:g}")
    assert run.states() == {"IS-1": "UNKNOWN"}, run.messages()
    message, duration = unknown_checks(run)["IS-1"]
    assert stage in message and "\n" not in message, message
    assert duration < deadline + MARGIN_S


@pytest.mark.sandbox
def test_a_client_deadline_cancels_the_query_on_the_server(sandbox: Sandbox):
    """The server's statement_timeout is longer than the check has left: the client's deadline
    cancels the query (no row of this run stays active) and closes the connection."""
    budget = Budget(statement_timeout=30.0)
    conn = connect(sandbox.checks_ro_url("opsmantik"), budget)
    open_guarded_transaction(conn, budget)
    check = Deadline.after(1.0)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="stage query: .*cancelled on the server"):
        ReadOnlyDB(conn, Evidence("t"), budget, check).rows("select pg_sleep(10) as slept")
    assert time.monotonic() - started < check.seconds + MARGIN_S
    assert conn.closed
    with psycopg.connect(sandbox.superuser_url("opsmantik"), autocommit=True) as admin:
        active = admin.execute("select count(*) from pg_stat_activity where application_name = %s "
                               "and state = 'active'", (APPLICATION_NAME,)).fetchone()
    assert active == (0,)


@pytest.mark.sandbox
def test_a_connection_that_cannot_roll_back_is_replaced(sandbox: Sandbox, tmp_path: Path):
    """The server ends the session during a check (a restart, an administrator): the rollback
    fails, the check keeps what it saw, and the system's next check gets a new connection."""
    (tmp_path / "direct.env").write_text(f"OPSMANTIK_DATABASE_URL={sandbox.checks_ro_url('opsmantik')}\n")
    budget = Budget()
    connections = Connections(load_target(tmp_path, "direct", {}), budget)
    try:
        ended = connections.get("opsmantik")
        open_guarded_transaction(ended, budget)
        with sandbox.superuser("opsmantik") as admin:
            admin.execute("select pg_terminate_backend(%s)", (ended.info.backend_pid,))
        evidence = Evidence("t")
        connections.finish("opsmantik", evidence)
        assert any("could not be rolled back" in e.get("text", "") for e in evidence.entries)
        fresh = connections.get("opsmantik")
        assert fresh is not ended
        assert open_guarded_transaction(fresh, budget)["role"] == "checks_ro"
    finally:
        connections.close()
