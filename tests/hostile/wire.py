"""HTTP/1.1 on a raw socket: enough parsing to record a request, and a writer that can stop or
misbehave mid-response on purpose (which is why no HTTP library is used on the server side)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
# A client gets this long to send a whole request; then its connection is dropped.
REQUEST_DEADLINE_S = 10.0
# A client that reads nothing of a response for this long is given up on.
SEND_STALL_S = 10.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. Header names are lower-case; repeated ones are joined."""

    method: str
    path: str  # with the query string, exactly as sent
    headers: dict[str, str]
    body: bytes

    @property
    def route(self) -> str:
        return self.path.split("?", 1)[0]


class ClientGone(Exception):
    """The client hung up, was too slow to send its request, or the server is closing."""


class BadRequest(Exception):
    """The bytes received are not an HTTP/1.1 request this server understands."""


class _Reader:
    """Buffered reads that give up when the peer closes, the deadline passes, or `stop` is set."""

    def __init__(self, conn: socket.socket, stop: threading.Event, deadline: float) -> None:
        self._conn = conn
        self._stop = stop
        self._deadline = deadline
        self._buf = bytearray()

    def until(self, delimiter: bytes, limit: int) -> bytes:
        while (end := self._buf.find(delimiter)) < 0:
            if len(self._buf) > limit:
                raise BadRequest("line or header block too long")
            self._fill()
        data = bytes(self._buf[:end])
        del self._buf[: end + len(delimiter)]
        return data

    def exact(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._fill()
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def _fill(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                data = self._conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            self._buf += data
            return
        raise ClientGone


def read_request(conn: socket.socket, stop: threading.Event) -> RecordedRequest:
    """Reads one request (head plus a Content-Length or chunked body)."""
    reader = _Reader(conn, stop, time.monotonic() + REQUEST_DEADLINE_S)
    head = reader.until(b"\r\n\r\n", MAX_HEAD_BYTES).decode("latin-1").lstrip("\r\n")
    request_line, *header_lines = head.split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {request_line[:80]!r}")
    headers = _parse_headers(header_lines)
    return RecordedRequest(parts[0], parts[1], headers, _read_body(reader, headers))


def _parse_headers(lines: Iterable[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(f"bad header line {line[:80]!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _read_body(reader: _Reader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _read_chunked(reader)
    raw_length = headers.get("content-length", "0")
    if not (raw_length.isascii() and raw_length.isdigit()) or int(raw_length) > MAX_BODY_BYTES:
        raise BadRequest(f"unusable Content-Length {raw_length[:20]!r}")
    return reader.exact(int(raw_length))


def _read_chunked(reader: _Reader) -> bytes:
    body = bytearray()
    while True:
        size_field = reader.until(b"\r\n", 1024).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise BadRequest(f"bad chunk size {size_field[:20]!r}") from None
        if size == 0:
            break
        if size < 0 or len(body) + size > MAX_BODY_BYTES:
            raise BadRequest("chunked body too large")
        body += reader.exact(size)
        reader.exact(2)  # the CRLF after each chunk
    while reader.until(b"\r\n", MAX_HEAD_BYTES):
        pass  # trailer fields, up to the blank line
    return bytes(body)


def response_head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    """Status line and headers; every response closes its connection."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += ["Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def send_all(conn: socket.socket, data: bytes, stop: threading.Event) -> bool:
    """Sends everything unless the client goes away, stops reading, or `stop` is set.

    Returns whether all of `data` was sent. A send that times out sent nothing (for TLS, OpenSSL
    requires the very same buffer again), so retrying with the same view is correct for both.
    """
    view = memoryview(data)
    last_progress = time.monotonic()
    while view:
        if stop.is_set() or time.monotonic() - last_progress > SEND_STALL_S:
            return False
        try:
            sent = conn.send(view)
        except TimeoutError:
            continue
        except OSError:
            return False
        view = view[sent:]
        last_progress = time.monotonic()
    return True
