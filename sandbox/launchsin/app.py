"""LaunchSin's HTTP API (RUNBOOK-ITEMS.md 2.2), served by the daemon: the endpoints runbook 001
touches.

- `GET /api/health`, behind upstream's auth middleware, which accepts any bearer token (its
  validation is mocked upstream too).
- `POST /api/webhooks/hotmart/{connection_id}`, public: `x-hotmart-hottok` must be the hex
  HMAC-SHA256 of the body with the connection's `hotmart_secret`, as upstream's connector checks.
- `GET /metrics`, public, Prometheus text.
"""

from __future__ import annotations

import hmac
import json
import uuid
from hashlib import sha256
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.kit import SERVICE_PASSWORD, iso_now
from sandbox.launchsin import incidents, ingest
from sandbox.launchsin.events import from_hotmart
from sandbox.launchsin.metrics import Metrics, Timed
from sandbox.launchsin.provision import SERVICE_ROLE
from sandbox.system import Context

NOT_FOUND = {"error": "Connection not found"}
CONNECTION = """
    SELECT org_id, project_id, config_json FROM public.source_connections
    WHERE id = %s AND type = 'hotmart' AND is_active
"""
Reply = tuple[int, dict[str, Any]]


def hottok_of(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, sha256).hexdigest()


class BearerAuth:
    """Upstream's authMiddleware on /api (the webhooks excepted): any `Bearer <token>` passes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/api/") \
                and not path.startswith("/api/webhooks/"):
            scheme, _, token = Request(scope).headers.get("authorization", "").partition(" ")
            if scheme != "Bearer" or not token.strip():
                await JSONResponse({"error": "Unauthorized"}, status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class LaunchSinApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.metrics = Metrics()

    async def health(self, request: Request) -> Response:
        if incidents.API_HEALTH_FAILING in self.ctx.active_faults():
            return JSONResponse({"status": "unavailable", "timestamp": iso_now()}, status_code=503)
        return JSONResponse({"status": "ok", "timestamp": iso_now()})

    async def prometheus(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def hotmart(self, request: Request) -> Response:
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "Invalid JSON body"}, status_code=400)
        status, reply = await run_in_threadpool(
            self._hotmart, request.path_params["connection_id"], body, payload,
            request.headers.get("x-hotmart-hottok", ""))
        return JSONResponse(reply, status_code=status)

    def _hotmart(self, connection_id: str, body: bytes, payload: Any, hottok: str) -> Reply:
        try:
            cid = uuid.UUID(connection_id)
        except ValueError:
            return 404, NOT_FOUND
        as_migrated = incidents.DLQ_SCHEMA_DRIFT in self.ctx.active_faults()
        with self.ctx.connect_as(SERVICE_ROLE, self.ctx.settings[SERVICE_PASSWORD]) as conn:
            row = conn.execute(CONNECTION, (cid,)).fetchone()
            if row is None:
                return 404, NOT_FOUND
            org_id, project_id, config = row
            secret = config.get("hotmart_secret") if isinstance(config, dict) else None
            if not secret:
                # Acknowledged so Hotmart does not retry; the letter waits for a secret.
                ingest.dead_letter(conn, ingest.DeadLetter(
                    cid, payload, ingest.MISSING_SECRET, "Hotmart secret not configured"),
                    as_migrated=as_migrated)
                return 200, {"received": True}
            if not hmac.compare_digest(hottok.encode(), hottok_of(body, str(secret)).encode()):
                return 401, {"error": "Invalid signature"}  # no write, as upstream
            try:
                if not isinstance(payload, dict):
                    raise TypeError("payload is not an object")
                events = from_hotmart(payload, cid, org_id, project_id)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                ingest.dead_letter(conn, ingest.DeadLetter(
                    cid, payload, ingest.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}"),
                    as_migrated=as_migrated)
                return 200, {"received": True, "error": "Internal error, event queued for retry"}
            if not events:
                return 200, {"received": True}  # an event type upstream does not map
            result = ingest.insert_events(conn, events)
            if result.failure:
                ingest.dead_letter(conn, ingest.DeadLetter(
                    cid, payload, ingest.INSERT_FAILED, result.failure), as_migrated=as_migrated)
        return 200, {"received": True, "processed": result.processed,
                     "duplicates": result.duplicates}


def create_app(ctx: Context) -> ASGIApp:
    api = LaunchSinApi(ctx)
    routes = [
        Route("/api/health", api.health, methods=["GET"]),
        Route("/api/webhooks/hotmart/{connection_id}", api.hotmart, methods=["POST"]),
        Route("/metrics", api.prometheus, methods=["GET"]),
    ]
    return Timed(BearerAuth(Starlette(routes=routes)), api.metrics)
