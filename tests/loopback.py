"""Loopback stand-ins: what a canary reports to, a Healthchecks.io-style ping receiver (an in-test
HTTP server) and the real Prometheus Pushgateway (the distribution's binary, started on a free
loopback port with its data in a temporary directory); a real pgbouncer in front of the sandbox's
PostgreSQL; and listeners that never answer, or never accept, on any loopback address."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from fixtures.metrics import series
from sandbox.postgres import Account

PING_KEY = "8f3c2d1e-hb-canary-key-5a7b9c0d1e2f"  # the secret part of a ping URL
PUSHGATEWAY = "prometheus-pushgateway"
PGBOUNCER = "pgbouncer"
# Debian installs it in /usr/sbin, which is not on every user's PATH.
PGBOUNCER_PATH = "/usr/sbin/pgbouncer"
POOLER_ADMIN = "pooler_admin"
STARTUP_S = 15


@dataclass
class Receiver:
    """Records every ping: (path after the key, rid, body). `status` and `delay` misbehave."""

    url: str = ""
    pings: list[tuple[str, str, str]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.pings]


@contextlib.contextmanager
def ping_receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            parts = urlsplit(self.path)
            ping = parts.path.removeprefix(f"/ping/{PING_KEY}") or "/"
            state.pings.append((ping, parse_qs(parts.query).get("rid", [""])[0], body))
            time.sleep(state.delay)
            self.send_response(state.status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/ping/{PING_KEY}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def system_binary(package: str, found: str | None) -> str:
    """The distribution's binary, or a skip (a failure in CI) with the one command that installs it."""
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{package} is missing: .ci/run installs it (apt-get install {package})")
        pytest.skip(f"{package} is not installed: `make test` as root installs it, "
                    f"or apt-get install {package}")
    return found


def pushgateway_binary() -> str:
    return system_binary(PUSHGATEWAY, shutil.which(PUSHGATEWAY))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def pushgateway() -> Iterator[str]:
    """A real Pushgateway on loopback; yields its URL."""
    binary = pushgateway_binary()
    with tempfile.TemporaryDirectory(prefix="runbook-pushgateway-") as home:
        port = _free_port()
        log = Path(home) / "log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [binary, f"--web.listen-address=127.0.0.1:{port}",
                 f"--persistence.file={Path(home) / 'metrics'}"], stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, f"{PUSHGATEWAY} exited: {log.read_text()}"
                assert time.monotonic() < deadline, f"{PUSHGATEWAY} not ready: {log.read_text()}"
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def pushed(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every series the Pushgateway serves now, read back from its /metrics."""
    return series(httpx.get(f"{url}/metrics", timeout=5).text)


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float | None:
    """The one series of `name` whose labels include `labels`, if any."""
    matching = [v for (n, have), v in found.items() if n == name and set(labels.items()) <= set(have)]
    assert len(matching) <= 1, f"{len(matching)} series of {name} match {labels}"
    return matching[0] if matching else None


def _accepting(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until a freshly started server accepts connections on `port`."""
    deadline = time.monotonic() + STARTUP_S
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        assert process.poll() is None, f"exited: {log.read_text()}"
        assert time.monotonic() < deadline, f"not accepting after {STARTUP_S} s: {log.read_text()}"
        time.sleep(0.05)


@dataclass(frozen=True)
class Pooler:
    """A running pgbouncer: where it listens, and its admin console."""

    port: int
    admin_password: str

    def url(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{quote(user)}:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"

    def clients(self) -> list[dict[str, Any]]:
        """SHOW CLIENTS from the admin console (which speaks the simple query protocol only)."""
        with psycopg.connect(self.url(POOLER_ADMIN, self.admin_password, "pgbouncer"), autocommit=True,
                             prepare_threshold=None, row_factory=dict_row) as admin:
            return admin.execute("SHOW CLIENTS").fetchall()


def _pooler_ini(home: Path, port: int, server_port: int, server_login: str, settings: dict[str, str]) -> str:
    pooler = {
        "listen_addr": "127.0.0.1", "listen_port": str(port), "unix_socket_dir": "",
        "auth_type": "scram-sha-256", "auth_file": str(home / "userlist.txt"),
        "admin_users": POOLER_ADMIN,
        # psycopg sends no options; a client that does would have them refused otherwise.
        "ignore_startup_parameters": "options", **settings,
    }
    return (f"[databases]\n* = host=127.0.0.1 port={server_port}{server_login}\n[pgbouncer]\n"
            + "".join(f"{key} = {value}\n" for key, value in pooler.items()))


@contextlib.contextmanager
def pgbouncer(
    server_port: int, logins: dict[str, str], *, server_user: tuple[str, str] | None = None,
    **settings: str,
) -> Iterator[Pooler]:
    """The distribution's pgbouncer on a free loopback port in front of the PostgreSQL on
    `server_port`. `logins` are the users (and passwords) clients may log in as; each logs in to
    the server as itself, or every one as `server_user` (user, password). `settings` go to the
    [pgbouncer] section (pool_mode, default_pool_size, ...). It does not run as root: as root it
    runs as the sandbox's PostgreSQL system user."""
    binary = system_binary(PGBOUNCER, shutil.which(PGBOUNCER) or
                           (PGBOUNCER_PATH if os.access(PGBOUNCER_PATH, os.X_OK) else None))
    account = Account.for_current_process()
    admin_password = f"admin-{os.urandom(8).hex()}"
    server_login = f" user={server_user[0]} password={server_user[1]}" if server_user else ""
    users = {**logins, POOLER_ADMIN: admin_password}
    with tempfile.TemporaryDirectory(prefix="runbook-pgbouncer-") as name:
        home, port = Path(name), _free_port()
        (home / "userlist.txt").write_text("".join(f'"{u}" "{p}"\n' for u, p in users.items()))
        (home / "pgbouncer.ini").write_text(_pooler_ini(home, port, server_port, server_login, settings))
        for path in (home, home / "userlist.txt", home / "pgbouncer.ini"):
            account.own(path)
        identity = ["-u", account.user] if account.user else []
        log = home / "pgbouncer.log"
        with log.open("w") as out:
            process = subprocess.Popen([binary, *identity, str(home / "pgbouncer.ini")],
                                       stdout=out, stderr=out)
        try:
            _accepting(port, process, log)
            yield Pooler(port, admin_password)
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextlib.contextmanager
def unanswering(*hosts: str) -> Iterator[int]:
    """Listeners on one free port of every loopback address in `hosts` that never accept: the
    kernel completes each TCP handshake (up to the backlog), and then nothing is ever said, as
    with a hung server."""
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(socket.create_server((hosts[0], 0), backlog=16))
        port = int(first.getsockname()[1])
        for host in hosts[1:]:
            stack.enter_context(socket.create_server((host, port), backlog=16))
        yield port


@contextlib.contextmanager
def not_accepting() -> Iterator[int]:
    """A loopback port whose accept queue is full: a new connection is not even accepted (its SYN
    goes unanswered), as with a server too busy to accept."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=1):  # takes the one place
            yield port
