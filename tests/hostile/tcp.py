"""Loopback TCP plumbing for the hostile target: a threaded listener, a silent server, a dead port.

Every blocking call here polls with a short socket timeout and checks a stop event, so `close()`
can end every thread promptly without reaching into another thread's socket.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import socket
import threading
import time
from collections.abc import Callable, Iterator

HOST = "127.0.0.1"
# Granularity of every wait: how late a thread may notice that its server is closing.
POLL_S = 0.1
# A backstop: a server nobody closes stops on its own after this long (an hour, so that a
# session-scoped server is never cut short; close() is still what normally ends it).
DEFAULT_LIFETIME_S = 3600.0
# Beyond this many open connections new ones are dropped, so a runaway client cannot spawn
# hundreds of threads on a 2-core runner.
MAX_CONNECTIONS = 64

Handler = Callable[[socket.socket, threading.Event], None]


class TcpServer:
    """Accepts loopback connections and serves each in its own thread with `handler(conn, stop)`.

    The handler must return soon after `stop` is set; connections come with a POLL_S timeout, so
    any recv/send returns often enough to check it. The connection is closed after the handler.
    """

    def __init__(
        self, handler: Handler, *, name: str, lifetime: float = DEFAULT_LIFETIME_S
    ) -> None:
        self._handler = handler
        self._name = name
        self._lifetime = lifetime
        self.stop = threading.Event()
        self._listener: socket.socket | None = None
        self._address: tuple[str, int] | None = None
        self._acceptor: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError(f"{self._name} is not started")
        return self._address

    def start(self) -> tuple[str, int]:
        listener = socket.create_server((HOST, 0), backlog=MAX_CONNECTIONS)
        listener.settimeout(POLL_S)
        self._listener = listener
        host, port = listener.getsockname()[:2]
        self._address = (str(host), int(port))
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"{self._name}-accept", daemon=True
        )
        self._acceptor.start()
        return self.address

    def close(self, timeout: float = 1.0) -> None:
        """Stops accepting, ends every connection thread, and fails loudly if one is stuck."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        threads = [self._acceptor] if self._acceptor is not None else []
        if self._listener is not None:
            # Wakes the acceptor at once instead of at its next poll (Linux ends accept()).
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
        if self._acceptor is not None:
            # First the acceptor, so that no connection thread can be added after the snapshot.
            self._acceptor.join(timeout)
        with self._lock:
            threads += self._workers
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.close()  # normally closed by the acceptor already; idempotent
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            raise RuntimeError(f"{self._name}: threads still running after close(): {stuck}")

    def active_connections(self) -> int:
        with self._lock:
            return sum(1 for t in self._workers if t.is_alive())

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        ends_at = time.monotonic() + self._lifetime
        try:
            while not self.stop.is_set() and time.monotonic() < ends_at:
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break  # shut down by close()
                self._spawn(conn)
        finally:
            # Past its lifetime the server winds down as if close() had been called, and new
            # connections are refused rather than left waiting in the backlog.
            self.stop.set()
            listener.close()

    def _spawn(self, conn: socket.socket) -> None:
        conn.settimeout(POLL_S)
        with self._lock:
            self._workers = [t for t in self._workers if t.is_alive()]
            if len(self._workers) >= MAX_CONNECTIONS:
                conn.close()
                return
            worker = threading.Thread(
                target=self._serve, args=(conn,), name=f"{self._name}-conn", daemon=True
            )
            self._workers.append(worker)
        worker.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self._handler(conn, self.stop)
            except OSError:
                pass  # the client went away or broke TLS: normal for a hostile target


def wait_for_hangup(conn: socket.socket, stop: threading.Event) -> None:
    """Reads and discards whatever the peer sends, never answering, until it hangs up or `stop`."""
    while not stop.is_set():
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue


@contextlib.contextmanager
def silent_listener(lifetime: float = DEFAULT_LIFETIME_S) -> Iterator[tuple[str, int]]:
    """A TCP server that accepts connections and never sends a byte, until the block exits.

    Stands in for a database that never answers the startup handshake, or an HTTP server that
    never answers a request: the client connects fine and then waits for its read timeout.
    """
    server = TcpServer(wait_for_hangup, name="hostile-silent", lifetime=lifetime)
    server.start()
    try:
        yield server.address
    finally:
        server.close()


@functools.cache
def _reserved_socket() -> socket.socket:
    # A socket that is bound but never listens: the kernel answers SYNs to its port with RST, and
    # while it stays bound no other process can start listening there by accident.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    atexit.register(sock.close)
    return sock


def refused_port() -> int:
    """A loopback port on which nothing listens: connecting to it is refused at once."""
    return int(_reserved_socket().getsockname()[1])
