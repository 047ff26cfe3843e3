"""The hostile target behaves as specified, so the suite's robustness tests can rely on it.

Every client here has explicit small timeouts and ignores the runner's proxy settings; the whole
file runs in well under 30 s (the slow drip alone takes its 6 s on purpose).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.hostile import (
    TLS_MODES,
    HostileHttp,
    TlsMode,
    refused_port,
    silent_listener,
)
from tests.hostile.routes import CROSS_ORIGIN_TARGET, TRUNCATED_JSON, gzip_bomb_body

TIMEOUT = httpx.Timeout(2.0)
SHORT_READ = httpx.Timeout(2.0, read=0.5)
CLOSE_BUDGET_S = 1.0


def client(
    timeout: httpx.Timeout = TIMEOUT,
    *,
    verify: ssl.SSLContext | bool = True,
    follow_redirects: bool = False,
    max_redirects: int = 20,
) -> httpx.Client:
    # trust_env=False: a proxy variable on the runner must not reroute loopback traffic.
    return httpx.Client(
        timeout=timeout,
        verify=verify,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        trust_env=False,
    )


def hostile_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hostile-")]


def wait_until(condition: Callable[[], bool], seconds: float = 1.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture(autouse=True)
def no_thread_survives() -> Iterator[None]:
    yield
    assert hostile_threads() == []


@pytest.fixture
def target() -> Iterator[HostileHttp]:
    with HostileHttp() as server:
        yield server


# -- TCP helpers ---------------------------------------------------------------------------------


def test_refused_port_refuses_at_once() -> None:
    port = refused_port()
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1.0)
    with client() as http, pytest.raises(httpx.ConnectError):
        http.get(f"http://127.0.0.1:{port}/ok")
    assert time.monotonic() - started < 0.5
    assert refused_port() == port


def test_silent_listener_accepts_and_never_answers() -> None:
    with silent_listener() as address, socket.create_connection(address, timeout=0.5) as sock:
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            sock.recv(1)
        assert 0.4 < time.monotonic() - started < 1.0


def test_silent_listener_fires_an_http_read_timeout() -> None:
    with silent_listener() as (host, port), client(SHORT_READ) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            http.get(f"http://{host}:{port}/ok")
        assert 0.4 < time.monotonic() - started < 1.0


def test_silent_listener_hangs_a_postgres_handshake_until_connect_timeout() -> None:
    # 2 s is psycopg's floor for connect_timeout; SSL and GSS negotiation off, so one attempt.
    with silent_listener() as (host, port):
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(
                host=host, port=port, user="u", dbname="d", connect_timeout=2,
                sslmode="disable", gssencmode="disable",
            )
        assert 1.8 < time.monotonic() - started < 3.0


def test_listeners_stop_by_themselves_after_their_lifetime() -> None:
    with silent_listener(lifetime=0.2) as address, HostileHttp(lifetime=0.2) as target:
        time.sleep(0.5)
        assert hostile_threads() == []
        for port in (address[1], target.port):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=1.0)


def test_silent_listener_closes_promptly_with_clients_connected() -> None:
    with silent_listener() as address:
        socks = [socket.create_connection(address, timeout=1.0) for _ in range(3)]
        time.sleep(0.1)
        started = time.monotonic()
    assert time.monotonic() - started < CLOSE_BUDGET_S
    for sock in socks:
        with sock:
            assert sock.recv(1) == b""  # closed by the server, still without a byte


# -- plain routes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "payload"),
    [
        ("/ok", 200, {"ok": True, "db_ok": True}),
        ("/ok-string", 200, {"ok": "false"}),
        ("/ok-null", 200, {"ok": None}),
        ("/ok-missing", 200, {"db_ok": True}),
        ("/db-down", 200, {"ok": True, "db_ok": False}),
        ("/array", 200, [1, 2]),
        ("/extra-fields", 200, {"ok": True, "db_ok": True, "added_later": 1}),
        ("/unauthorized", 401, {"error": "Unauthorized"}),
        ("/forbidden", 403, {"error": "Forbidden"}),
        ("/unavailable", 503, {"error": "Service Unavailable"}),
        ("/rate-limited", 429, {"error": "Too Many Requests"}),
        ("/no-such-route", 404, {"error": "Not Found"}),
        ("/ok?probe=1", 200, {"ok": True, "db_ok": True}),
    ],
)
def test_json_routes(target: HostileHttp, path: str, status: int, payload: object) -> None:
    with client() as http:
        response = http.get(target.url(path))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    assert response.json() == payload


def test_unavailable_stays_unavailable(target: HostileHttp) -> None:
    with client() as http:
        assert [http.get(target.url("/unavailable")).status_code for _ in range(4)] == [503] * 4


def test_rate_limited_asks_for_an_hour(target: HostileHttp) -> None:
    with client() as http:
        response = http.get(target.url("/rate-limited"))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3600"


def test_html_is_a_cdn_error_page(target: HostileHttp) -> None:
    with client() as http:
        response = http.get(target.url("/html"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 2_000 < len(response.content) < 10_000
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_truncated_json_is_complete_per_content_length(target: HostileHttp) -> None:
    with client() as http:
        response = http.get(target.url("/truncated-json"))
    assert response.content == TRUNCATED_JSON
    assert int(response.headers["content-length"]) == len(TRUNCATED_JSON) == 27
    with pytest.raises(json.JSONDecodeError) as error:
        response.json()
    assert error.value.pos == 27


def test_short_body_is_a_protocol_error(target: HostileHttp) -> None:
    with client() as http, pytest.raises(httpx.RemoteProtocolError):
        http.get(target.url("/short-body"))


def test_short_body_on_the_wire(target: HostileHttp) -> None:
    with socket.create_connection((target.host, target.port), timeout=2.0) as sock:
        sock.sendall(b"GET /short-body HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"Content-Length: 100" in head
    assert len(body) == 20


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/redirect-login", "/login"),
        ("/redirect-cross", CROSS_ORIGIN_TARGET),
        ("/loop-a", "/loop-b"),
        ("/loop-b", "/loop-a"),
    ],
)
def test_redirects_are_302(target: HostileHttp, path: str, location: str) -> None:
    with client() as http:
        response = http.get(target.url(path))
    assert response.status_code == 302
    assert response.headers["location"] == location


def test_login_redirect_leads_to_an_html_page(target: HostileHttp) -> None:
    with client(follow_redirects=True) as http:
        response = http.get(target.url("/redirect-login"))
    assert response.status_code == 200
    assert response.url.path == "/login"
    assert response.headers["content-type"].startswith("text/html")
    assert b"<form" in response.content


def test_redirect_loop_never_ends(target: HostileHttp) -> None:
    with client(follow_redirects=True, max_redirects=5) as http, pytest.raises(
        httpx.TooManyRedirects
    ):
        http.get(target.url("/loop-a"))
    assert [r.path for r in target.requests] == ["/loop-a", "/loop-b"] * 3


def test_flaky_fails_then_succeeds_and_reset_rearms_it() -> None:
    with HostileHttp(flaky_failures=2) as target, client() as http:
        statuses = [http.get(target.url("/flaky")).status_code for _ in range(4)]
        assert statuses == [503, 503, 200, 200]
        target.reset()
        assert http.get(target.url("/flaky")).status_code == 503


def test_flaky_fails_once_by_default(target: HostileHttp) -> None:
    with client() as http:
        assert [http.get(target.url("/flaky")).status_code for _ in range(2)] == [503, 200]


def test_echo_returns_the_request(target: HostileHttp) -> None:
    with client() as http:
        response = http.post(
            target.url("/echo?x=1"), content=b"hello", headers={"X-Probe": "yes"}
        )
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/echo?x=1"
    assert echoed["headers"]["x-probe"] == "yes"
    assert echoed["body"] == "hello"


def test_requests_records_every_method(target: HostileHttp) -> None:
    methods = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
    with client() as http:
        for method in methods:
            body = b"payload" if method in {"POST", "PUT", "PATCH"} else None
            response = http.request(method, target.url("/ok?n=1"), content=body)
            assert response.status_code == 200
            assert response.content == (b"" if method == "HEAD" else b'{"ok": true, "db_ok": true}')
    recorded = target.requests
    assert [r.method for r in recorded] == methods
    assert {r.path for r in recorded} == {"/ok?n=1"}
    assert [r.body for r in recorded if r.method == "PUT"] == [b"payload"]
    assert all(name == name.lower() for r in recorded for name in r.headers)
    assert recorded[0].headers["host"] == f"{target.host}:{target.port}"
    target.reset()
    assert target.requests == []


def test_chunked_request_body_is_recorded(target: HostileHttp) -> None:
    with client() as http:
        http.post(target.url("/echo"), content=iter([b"ab", b"cd"]))
    (request,) = target.requests
    assert request.headers["transfer-encoding"] == "chunked"
    assert request.body == b"abcd"


def test_malformed_request_gets_400_and_is_not_recorded(target: HostileHttp) -> None:
    with socket.create_connection((target.host, target.port), timeout=2.0) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert target.requests == []


# -- slow, silent and oversized bodies ------------------------------------------------------------


def test_slowdrip_beats_a_per_read_timeout(target: HostileHttp) -> None:
    arrivals: list[float] = []
    body = b""
    with client(httpx.Timeout(1.0)) as http:
        started = time.monotonic()
        with http.stream("GET", target.url("/slowdrip")) as response:
            arrivals.append(time.monotonic())
            for chunk in response.iter_raw():
                arrivals.append(time.monotonic())
                body += chunk
    total = time.monotonic() - started
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    assert target.drip_total - 0.3 < total < target.drip_total + 1.0
    # The margin stays under the 1 s read timeout, which is what the drip must never trip.
    assert max(gaps) < target.drip_interval + 0.35
    assert len(body) == int(response.headers["content-length"]) == 20
    assert json.loads(body) == {"ok": True}


def test_silent_route_fires_a_read_timeout(target: HostileHttp) -> None:
    with client(SHORT_READ) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            http.get(target.url("/silent"))
        assert 0.4 < time.monotonic() - started < 1.0
    assert [r.path for r in target.requests] == ["/silent"]


def test_huge_streams_50_mib_exactly(target: HostileHttp) -> None:
    received = 0
    with client() as http, http.stream("GET", target.url("/huge")) as response:
        declared = int(response.headers["content-length"])
        for chunk in response.iter_raw():
            received += len(chunk)
    assert declared == received == 50 * 1024 * 1024


def test_huge_stops_when_the_client_leaves(target: HostileHttp) -> None:
    with client() as http, http.stream("GET", target.url("/huge")) as response:
        for _ in response.iter_raw(1024 * 1024):
            break
    assert wait_until(lambda: target.active_connections() == 0)


def test_gzip_bomb_inflates_to_20_mib(target: HostileHttp) -> None:
    with client() as http, http.stream("GET", target.url("/gzip-bomb")) as response:
        assert response.headers["content-encoding"] == "gzip"
        inflated = 0
        tail = b""
        for chunk in response.iter_bytes():
            inflated += len(chunk)
            tail = (tail + chunk)[-32:]
        wire = response.num_bytes_downloaded
    assert wire < 100_000
    assert inflated > 20 * 1024 * 1024
    assert tail.endswith(b'{"ok":true}')


def test_gzip_bomb_is_valid_gzip() -> None:
    assert zlib.decompress(gzip_bomb_body(), 31).lstrip() == b'{"ok":true}'


# -- TLS ------------------------------------------------------------------------------------------


def trusting(ca_path: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_path))


@pytest.mark.parametrize("mode", TLS_MODES)
def test_tls_is_rejected_by_the_usual_trust_store(mode: TlsMode) -> None:
    with HostileHttp(tls=mode) as target, client() as http:
        assert target.base_url.startswith("https://")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            http.get(target.url("/ok"))
        assert target.requests == []


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("wrong_host", "mismatch"), ("expired", "certificate has expired")],
)
def test_tls_is_rejected_for_its_own_reason_even_with_the_ca_trusted(
    mode: TlsMode, reason: str
) -> None:
    with HostileHttp(tls=mode) as target:
        with client(verify=trusting(target.ca_path)) as http, pytest.raises(
            httpx.ConnectError, match=reason
        ):
            http.get(target.url("/ok"))
        assert target.requests == []


def test_tls_positive_control_succeeds_with_the_ca_trusted() -> None:
    with HostileHttp(tls="self_signed") as target:
        ca_path = target.ca_path
        with client(verify=trusting(ca_path)) as http:
            assert http.get(target.url("/ok")).json() == {"ok": True, "db_ok": True}
            assert http.post(target.url("/echo"), content=b"x").json()["body"] == "x"
            assert http.get(target.url("/flaky")).status_code == 503
    assert not ca_path.exists()  # certificates live only as long as the server


def test_ca_path_exists_only_for_tls(target: HostileHttp) -> None:
    with pytest.raises(RuntimeError, match="TLS"):
        _ = target.ca_path


# -- close() --------------------------------------------------------------------------------------


def request_line(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


# name: (TLS mode, what the client sends and then stays connected; None = not even a TLS hello)
STUCK_CLIENTS: dict[str, tuple[TlsMode | None, bytes | None]] = {
    "idle": (None, b""),
    "half-request": (None, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc"),
    "silent": (None, request_line("/silent")),
    "slowdrip": (None, request_line("/slowdrip")),
    "huge-unread": (None, request_line("/huge")),
    "tls-no-hello": ("self_signed", None),
    "tls-silent": ("self_signed", request_line("/silent")),
    "tls-huge-unread": ("self_signed", request_line("/huge")),
}


def connect_stuck_client(target: HostileHttp, sends: bytes | None) -> socket.socket:
    sock = socket.create_connection((target.host, target.port), timeout=2.0)
    if target.tls_mode is not None and sends is not None:
        sock = trusting(target.ca_path).wrap_socket(sock, server_hostname=target.host)
    sock.sendall(sends or b"")
    return sock


@pytest.mark.parametrize("stuck", list(STUCK_CLIENTS))
def test_close_is_prompt_with_a_stuck_client(stuck: str) -> None:
    tls, sends = STUCK_CLIENTS[stuck]
    target = HostileHttp(tls=tls).start()
    try:
        with connect_stuck_client(target, sends):
            assert wait_until(lambda: target.active_connections() == 1)
            if sends and sends.startswith(b"GET"):
                assert wait_until(lambda: len(target.requests) == 1)
            if "huge" in stuck:
                time.sleep(0.2)  # lets /huge fill the socket buffers and block in send
            started = time.monotonic()
            target.close()
            assert time.monotonic() - started < CLOSE_BUDGET_S
    finally:
        target.close()


def test_close_unblocks_an_httpx_client_stuck_on_silent(target: HostileHttp) -> None:
    outcome: list[BaseException] = []

    def stuck_client() -> None:
        with client(httpx.Timeout(5.0)) as http:
            try:
                http.get(target.url("/silent"))
            except httpx.HTTPError as error:
                outcome.append(error)

    thread = threading.Thread(target=stuck_client)
    thread.start()
    assert wait_until(lambda: len(target.requests) == 1)
    started = time.monotonic()
    target.close()
    assert time.monotonic() - started < CLOSE_BUDGET_S
    thread.join(2.0)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.RemoteProtocolError)
