"""HostileHttp: a loopback HTTP/1.1 (or HTTPS) server whose routes misbehave on purpose."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType

from tests.hostile.routes import ROUTES, Exchange, bad_request, not_found
from tests.hostile.tcp import DEFAULT_LIFETIME_S, TcpServer
from tests.hostile.tls import TlsMaterial, TlsMode, make_tls, server_handshake
from tests.hostile.wire import BadRequest, ClientGone, RecordedRequest, read_request


class HostileHttp:
    """One request per connection, every request recorded, routes as listed in `routes.ROUTES`.

    Use as a context manager, or call start() and close(). close() ends every connection thread,
    including ones parked in /silent, /slowdrip or /huge, within about a second.
    """

    def __init__(
        self,
        *,
        tls: TlsMode | None = None,
        flaky_failures: int = 1,
        drip_interval: float = 0.6,
        drip_total: float = 6.0,
        lifetime: float = DEFAULT_LIFETIME_S,
    ) -> None:
        if drip_interval <= 0 or drip_total <= 0:
            raise ValueError("drip_interval and drip_total must be positive")
        self.tls_mode = tls
        self.flaky_failures = flaky_failures
        self.drip_interval = drip_interval
        self.drip_total = drip_total
        self._server = TcpServer(self._handle, name="hostile-http", lifetime=lifetime)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._hits: Counter[str] = Counter()
        self._tls: TlsMaterial | None = None
        self._tmpdir: Path | None = None

    def __enter__(self) -> HostileHttp:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> HostileHttp:
        if self.tls_mode is not None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="hostile-tls-"))
            self._tls = make_tls(self.tls_mode, self._tmpdir)
        self._server.start()
        return self

    def close(self) -> None:
        try:
            self._server.close()
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)

    @property
    def host(self) -> str:
        return self._server.address[0]

    @property
    def port(self) -> int:
        return self._server.address[1]

    @property
    def base_url(self) -> str:
        scheme = "http" if self.tls_mode is None else "https"
        return f"{scheme}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def ca_path(self) -> Path:
        """PEM of the CA that issued this server's certificate (TLS modes only)."""
        if self._tls is None:
            raise RuntimeError("ca_path exists only for a TLS server (started, with tls=...)")
        return self._tls.ca_path

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received since start or the last reset(), in order."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forgets recorded requests and per-route counters (so /flaky fails again)."""
        with self._lock:
            self._requests.clear()
            self._hits.clear()

    def active_connections(self) -> int:
        return self._server.active_connections()

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self._requests.append(request)
            self._hits[request.route] += 1
            return self._hits[request.route]

    def _handle(self, conn: socket.socket, stop: threading.Event) -> None:
        if self._tls is not None:
            tls_conn = server_handshake(self._tls.context, conn, stop)
            if tls_conn is None:
                return
            with tls_conn:
                self._answer(tls_conn, stop)
        else:
            self._answer(conn, stop)

    def _answer(self, conn: socket.socket, stop: threading.Event) -> None:
        try:
            request = read_request(conn, stop)
        except ClientGone:
            return
        except BadRequest:
            bad_request(conn, stop)
            return
        hits = self._record(request)
        route = ROUTES.get(request.route, not_found)
        route(Exchange(
            conn=conn,
            request=request,
            stop=stop,
            hits=hits,
            flaky_failures=self.flaky_failures,
            drip_interval=self.drip_interval,
            drip_total=self.drip_total,
        ))
