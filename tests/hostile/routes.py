"""The hostile target's routes: each one a way a production endpoint misbehaves.

A route gets an `Exchange` (the parsed request plus the socket) and writes its own response, so
it can lie about Content-Length, stall, drip, or never answer.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from tests.hostile.tcp import wait_for_hangup
from tests.hostile.wire import RecordedRequest, response_head, send_all

JSON = "application/json"
HTML = "text/html; charset=utf-8"
OK_PAYLOAD = {"ok": True, "db_ok": True}
TRUNCATED_JSON = b'{"ok": true, "items": [1,2,'
SHORT_BODY_DECLARED = 100
SHORT_BODY_SENT = b'{"ok": true, "db_ok"'  # 20 bytes of the 100 announced
DRIP_CHUNK_BYTES = 2
HUGE_CHUNK_BYTES = 64 * 1024
HUGE_CHUNKS = 800  # 800 x 64 KiB = 50 MiB
GZIP_BOMB_MIB = 20
NESTED_BOMB_MIB = 512  # inflates 1 : ~250 000 through two gzip layers
CROSS_ORIGIN_TARGET = "http://other-origin.invalid/collect"

Headers = Iterable[tuple[str, str]]


@dataclass(frozen=True)
class Exchange:
    """One request being answered, with what a route needs to misbehave in a controlled way."""

    conn: socket.socket
    request: RecordedRequest
    stop: threading.Event
    hits: int  # requests to this route since the last reset, this one included
    flaky_failures: int
    drip_interval: float
    drip_total: float

    def wait(self, seconds: float) -> bool:
        """Sleeps unless the server is closing; returns whether to carry on."""
        return not self.stop.wait(max(0.0, seconds))

    def send(self, data: bytes) -> bool:
        return send_all(self.conn, data, self.stop)

    def start(self, status: int, content_type: str, length: int, extra: Headers = ()) -> bool:
        """Sends the head; returns whether a body should follow (not for HEAD, not if it failed)."""
        head = [("Content-Type", content_type), ("Content-Length", str(length)), *extra]
        return self.send(response_head(status, head)) and self.request.method != "HEAD"

    def reply(self, status: int, body: bytes, content_type: str, extra: Headers = ()) -> None:
        if self.start(status, content_type, len(body), extra):
            self.send(body)

    def json(self, status: int, payload: object, extra: Headers = ()) -> None:
        self.reply(status, json.dumps(payload).encode(), JSON, extra)


Route = Callable[[Exchange], None]


def _json(status: int, payload: object, extra: Headers = ()) -> Route:
    return lambda ex: ex.json(status, payload, extra)


def _page(html: str) -> Route:
    return lambda ex: ex.reply(200, html.encode(), HTML)


def _redirect(location: str) -> Route:
    return lambda ex: ex.reply(302, b"", HTML, [("Location", location)])


def _padded_json(size: int) -> bytes:
    """A valid JSON document of exactly `size` (>= 2) bytes, padded with whitespace."""
    core = b'{"ok":true}' if size >= 11 else b"[]"
    return core[:-1] + b" " * (size - len(core)) + core[-1:]


def _short_body(ex: Exchange) -> None:
    # Announces 100 bytes, sends 20, then the connection closes: the client sees EOF mid-body.
    if ex.start(200, JSON, SHORT_BODY_DECLARED):
        ex.send(SHORT_BODY_SENT)


def _flaky(ex: Exchange) -> None:
    if ex.hits <= ex.flaky_failures:
        ex.json(503, {"error": "Service Unavailable"})
    else:
        ex.json(200, OK_PAYLOAD)


def _slowdrip(ex: Exchange) -> None:
    # Each chunk comes well within a per-read timeout; only a total deadline catches this.
    chunks = max(1, round(ex.drip_total / ex.drip_interval))
    body = _padded_json(chunks * DRIP_CHUNK_BYTES)
    if not ex.start(200, JSON, len(body)):
        return
    started = time.monotonic()
    for index in range(chunks):
        # Scheduled from the start, so sleeps do not accumulate drift.
        if not ex.wait(started + (index + 1) * ex.drip_interval - time.monotonic()):
            return
        offset = index * DRIP_CHUNK_BYTES
        if not ex.send(body[offset : offset + DRIP_CHUNK_BYTES]):
            return


def _silent(ex: Exchange) -> None:
    wait_for_hangup(ex.conn, ex.stop)


def _huge(ex: Exchange) -> None:
    # One reused chunk: the server never holds the 50 MiB body in memory.
    filler = b" " * HUGE_CHUNK_BYTES
    if not ex.start(200, JSON, HUGE_CHUNK_BYTES * HUGE_CHUNKS):
        return
    for _ in range(HUGE_CHUNKS - 1):
        if not ex.send(filler):
            return
    ex.send(_padded_json(HUGE_CHUNK_BYTES))


@functools.cache
def gzip_bomb_body() -> bytes:
    """About 20 KiB of gzip that inflates to 20 MiB of JSON whitespace plus `{"ok":true}`."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    block = b" " * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(GZIP_BOMB_MIB)]
    parts += [compressor.compress(b'{"ok":true}'), compressor.flush()]
    return b"".join(parts)


def _gzip_bomb(ex: Exchange) -> None:
    ex.reply(200, gzip_bomb_body(), JSON, [("Content-Encoding", "gzip")])


@functools.cache
def nested_gzip_bomb_body() -> bytes:
    """A couple of KiB that inflate twice, to 512 MiB of JSON whitespace: the ratio a client
    decoding a whole chunk at once cannot survive."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1024 * 1024)
    layer = b"".join([inner.compress(block) for _ in range(NESTED_BOMB_MIB)] + [inner.flush()])
    outer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return outer.compress(layer) + outer.flush()


def _nested_gzip_bomb(ex: Exchange) -> None:
    ex.reply(200, nested_gzip_bomb_body(), JSON, [("Content-Encoding", "gzip, gzip")])


def _brotli(ex: Exchange) -> None:
    ex.reply(200, b"\x0b\x05\x80{}\x03", JSON, [("Content-Encoding", "br")])


ECHO_PAD = 590  # the echoed credential starts here in the error page: across the excerpt's cut


def _echo_everywhere(ex: Exchange) -> None:
    """Reflects the Authorization header the way careless servers do (?as=...): in a response
    header, HTML-escaped in an error page across the excerpt's cut, URL-encoded in a redirect,
    JSON-escaped, in plain text, and base64-encoded at an odd alignment."""
    token = ex.request.headers.get("authorization", "")
    kind = ex.request.path.partition("as=")[2]
    if kind == "header":
        ex.reply(200, b'{"ok": false}', JSON, [("X-Echo", token)])
    elif kind == "html":
        page = f"<html><body><pre>{'x' * ECHO_PAD}</pre><p>Authorization: {html.escape(token)}</p>"
        ex.reply(500, page.encode(), HTML)
    elif kind == "redirect":
        ex.reply(302, b"", HTML, [("Location", f"/login?next={quote(token, safe='')}")])
    elif kind == "json":
        ex.json(400, {"error": "bad token", "echo": token})
    elif kind == "base64":
        ex.json(403, {"debug": base64.b64encode(b"ab" + token.encode()).decode()})
    else:
        ex.reply(401, f"token {token} refused".encode(), "text/plain")


def _echo(ex: Exchange) -> None:
    request = ex.request
    ex.json(200, {
        "method": request.method,
        "path": request.path,
        "headers": request.headers,
        "body": request.body.decode("utf-8", "replace"),
    })


OLD_BUILD = "fe0d0a15ce627498056dc70f7b12d5cffbea81b7"
NEW_BUILD = "4f2a9c1e7b3d5a6c8e0f1a2b3c4d5e6f7a8b9c0d"
DEPLOY_OLD_ANSWERS = 3  # a rolling deploy: the old build answers the first polls


def _deploying_health(ex: Exchange) -> None:
    build = OLD_BUILD if ex.hits <= DEPLOY_OLD_ANSWERS else NEW_BUILD
    ex.json(200, {"ok": True, "db_ok": True, "git_sha": build})


def not_found(ex: Exchange) -> None:
    ex.json(404, {"error": "Not Found"})


def bad_request(conn: socket.socket, stop: threading.Event) -> None:
    body = json.dumps({"error": "Bad Request"}).encode()
    head = [("Content-Type", JSON), ("Content-Length", str(len(body)))]
    send_all(conn, response_head(400, head) + body, stop)


CDN_ERROR_PAGE = "\n".join([
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8"><title>502 Bad Gateway | edge</title>',
    "<style>body{font-family:sans-serif;margin:4em}.ray{color:#888}</style></head><body>",
    "<h1>Error 502: Bad gateway</h1><p>The origin web server returned an invalid response.</p>",
    "<h2>What can I do?</h2><ul>",
    *(f"<li>Edge node fra{n:03d}: upstream connect error or disconnect</li>" for n in range(60)),
    '</ul><p class="ray">Ray ID: 7d2f1c3b9a8e4f10 &bull; Performance &amp; security by edge</p>',
    "</body></html>",
])

LOGIN_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>'
    '<body><form method="post" action="/login"><input name="email" type="email">'
    '<input name="password" type="password"><button>Sign in</button></form></body></html>'
)

ROUTES: Mapping[str, Route] = {
    "/ok": _json(200, OK_PAYLOAD),
    "/html": _page(CDN_ERROR_PAGE),
    "/truncated-json": lambda ex: ex.reply(200, TRUNCATED_JSON, JSON),
    "/short-body": _short_body,
    "/ok-string": _json(200, {"ok": "false"}),
    "/ok-null": _json(200, {"ok": None}),
    "/ok-missing": _json(200, {"db_ok": True}),
    "/db-down": _json(200, {"ok": True, "db_ok": False}),
    "/array": _json(200, [1, 2]),
    "/duplicate-ok": lambda ex: ex.reply(200, b'{"ok": false, "ok": true}', JSON),
    "/deep-json": lambda ex: ex.reply(200, b'{"ok": true, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                                      JSON),
    "/nested-json": lambda ex: ex.reply(200, b'{"ok": true, "x": ' + b"[" * 80 + b"]" * 80 + b"}", JSON),
    "/extra-fields": _json(200, {"ok": True, "db_ok": True, "added_later": 1}),
    "/redirect-login": _redirect("/login"),
    "/login": _page(LOGIN_PAGE),
    "/redirect-cross": _redirect(CROSS_ORIGIN_TARGET),
    "/loop-a": _redirect("/loop-b"),
    "/loop-b": _redirect("/loop-a"),
    "/unauthorized": _json(401, {"error": "Unauthorized"}, [("WWW-Authenticate", "Bearer")]),
    "/forbidden": _json(403, {"error": "Forbidden"}),
    "/flaky": _flaky,
    "/unavailable": _json(503, {"error": "Service Unavailable"}),
    "/rate-limited": _json(429, {"error": "Too Many Requests"}, [("Retry-After", "3600")]),
    "/slowdrip": _slowdrip,
    "/silent": _silent,
    "/huge": _huge,
    "/gzip-bomb": _gzip_bomb,
    "/nested-gzip-bomb": _nested_gzip_bomb,
    "/brotli": _brotli,
    "/echo": _echo,
    "/echo-everywhere": _echo_everywhere,
    "/deploying-health": _deploying_health,
}
