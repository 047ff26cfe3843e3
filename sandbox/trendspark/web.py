"""What the backend and the worker share over HTTP (RUNBOOK-ITEMS 4.2): upstream's
ApiTokenMiddleware and role check, the instrumentator's request metrics, and FastAPI's answer
shapes (401, 403, 422).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.trendspark.runtime import Process

PUBLIC = ("/health", "/live", "/docs", "/openapi.json")
UNAUTHORIZED = {"detail": "Unauthorized"}
FORBIDDEN = {"detail": "Forbidden"}
ROLE = "trendspark.role"  # where the middleware leaves the caller's role in the scope


def token_of(header: str) -> str:
    """`Bearer <t>`, `Token <t>` or the raw token, as upstream accepts them."""
    scheme, _, rest = header.strip().partition(" ")
    return rest.strip() if scheme.lower() in ("bearer", "token") and rest else header.strip()


class TokenAuth:
    """Every route but PUBLIC needs a known token; the caller's role goes into the scope."""

    def __init__(self, app: ASGIApp, tokens: Callable[[], Mapping[str, str]]) -> None:
        self.app = app
        self.tokens = tokens  # token -> role, from the API_TOKENS the app was started with

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC:
            await self.app(scope, receive, send)
            return
        given = token_of(Request(scope).headers.get("authorization", ""))
        role = next((r for t, r in self.tokens().items()
                     if given and hmac.compare_digest(given.encode(), t.encode())), None)
        if role is None:
            await JSONResponse(UNAUTHORIZED, status_code=401)(scope, receive, send)
            return
        scope[ROLE] = role
        await self.app(scope, receive, send)


def require_admin(handler: Callable[[Request], Awaitable[Response]]
                  ) -> Callable[[Request], Awaitable[Response]]:
    """require_roles("admin"): the backend's service token counts as admin on the worker."""
    async def guarded(request: Request) -> Response:
        if request.scope.get(ROLE) not in ("admin", "service"):
            return JSONResponse(FORBIDDEN, status_code=403)
        return await handler(request)
    return guarded


class Instrumented:
    """prometheus-fastapi-instrumentator: each request counted by route template and status
    group, into the process current at the time (a restart starts from zero)."""

    def __init__(self, app: ASGIApp, routes: list[Route], process: Callable[[], Process],
                 on_server_error: Callable[[], None] | None = None) -> None:
        self.app = app
        self.routes = routes
        self.process = process
        self.on_server_error = on_server_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            handler = next((r.path for r in self.routes if r.matches(scope)[0] == Match.FULL),
                           "none")
            self.process().observe(scope["method"], handler, status, time.perf_counter() - started)
            if status >= 500 and self.on_server_error is not None:
                self.on_server_error()


def metrics_response(process: Process) -> Response:
    return Response(generate_latest(process.registry), media_type=CONTENT_TYPE_LATEST)


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None


def missing_field(body: Any, name: str) -> JSONResponse:
    """FastAPI's 422 for a body without a required field (pydantic 2's error shape)."""
    detail = [{"type": "missing", "loc": ["body", name], "msg": "Field required", "input": body}]
    return JSONResponse({"detail": detail}, status_code=422)


def int_field(body: Any, name: str) -> int | JSONResponse:
    """The body's integer field, or the 422 FastAPI would give."""
    if not isinstance(body, dict) or name not in body:
        return missing_field(body, name)
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        detail = [{"type": "int_parsing", "loc": ["body", name],
                   "msg": "Input should be a valid integer", "input": value}]
        return JSONResponse({"detail": detail}, status_code=422)
    return value
