"""Loopback stand-ins for what a canary reports to: a Healthchecks.io-style ping receiver (an
in-test HTTP server) and the real Prometheus Pushgateway (the distribution's binary, started on a
free loopback port with its data in a temporary directory)."""

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
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from fixtures.metrics import series

PING_KEY = "8f3c2d1e-hb-canary-key-5a7b9c0d1e2f"  # the secret part of a ping URL
PUSHGATEWAY = "prometheus-pushgateway"


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


def pushgateway_binary() -> str:
    found = shutil.which(PUSHGATEWAY)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{PUSHGATEWAY} is missing: .ci/run installs it (apt-get install {PUSHGATEWAY})")
        pytest.skip(f"{PUSHGATEWAY} is not installed: `make test` as root installs it, "
                    f"or apt-get install {PUSHGATEWAY}")
    return found


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
