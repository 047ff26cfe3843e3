"""OpsMantik's HTTP API in its runbook-era shape (RUNBOOK-ITEMS.md 1.5), served by the daemon.

Only the endpoints the runbooks and checks touch. The QStash signature is a plain HMAC here:
`Upstash-Signature: v1=<hex HMAC-SHA256 of the body with the signing key in state.json>`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import uuid
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg.rows import TupleRow
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox.asgi import RequestId
from sandbox.files import append_private
from sandbox.kit import SERVICE_PASSWORD, iso_now
from sandbox.opsmantik import visitors
from sandbox.opsmantik.incidents import (
    CORS_REJECT,
    DIAG_DISABLED,
    HEALTH_DB_DOWN,
    WATCHTOWER_SECRET_ROTATED,
    WORKER_SIGNING_OFF,
)
from sandbox.opsmantik.ingest import ingest
from sandbox.opsmantik.provision import SERVICE_ROLE
from sandbox.procs import LOOPBACK
from sandbox.system import Context

VERSION = "2.1.0-upstash"
# The build the sandbox imitates (the runbook era), so version-aware checks expect its shapes.
GIT_SHA = "fe0d0a15ce627498056dc70f7b12d5cffbea81b7"
# What the allowed list holds after the bad deploy of the cors_reject fault.
BAD_DEPLOY_ORIGINS = ("https://preview.sandbox-shop.example",)
NOT_ALLOWED = {"error": "Method not allowed. Use POST.",
               "diag": "Add ?diag=1 for header diagnostics."}

WATCHTOWER_COUNTS = """
    SELECT count(*) FILTER (WHERE created_at >= now() - interval '1 hour'),
           count(*) FILTER (WHERE gclid IS NOT NULL)
    FROM public.sessions
    WHERE created_at >= now() - interval '3 hours'
      AND created_month >= date_trunc('month', (now() - interval '3 hours') AT TIME ZONE 'utc')
                           ::date
"""


def _same(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


class ServiceDB:
    """The app's own connection as opsmantik_service (Supabase's service_role stand-in)."""

    def __init__(self, ctx: Context) -> None:
        self._params: dict[str, Any] = {
            "host": LOOPBACK, "port": ctx.state.pg_port, "dbname": ctx.system.database,
            "user": SERVICE_ROLE, "password": ctx.settings[SERVICE_PASSWORD],
            "autocommit": True, "application_name": "opsmantik-app",
        }
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._lock = asyncio.Lock()

    async def fetchone(self, query: str, timeout: float = 5.0) -> TupleRow | None:
        async with self._lock:
            try:
                return await asyncio.wait_for(self._fetchone(query), timeout)
            except BaseException:
                # A timed-out or failed statement leaves the connection in doubt: start afresh.
                await self._discard()
                raise

    async def _fetchone(self, query: str) -> TupleRow | None:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(**self._params)
        cursor = await self._conn.execute(query.encode())
        return await cursor.fetchone()

    async def _discard(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class OpsMantikApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ServiceDB(ctx)
        self.rotated_secret = secrets.token_urlsafe(24)

    def faults(self) -> frozenset[str]:
        return self.ctx.active_faults()

    def allowed_origins(self) -> tuple[str, ...]:
        if CORS_REJECT in self.faults():
            return BAD_DEPLOY_ORIGINS
        return tuple(o for o in self.ctx.settings["allowed_origins"].split(",") if o)

    def watchtower_secret(self) -> str:
        if WATCHTOWER_SECRET_ROTATED in self.faults():
            return self.rotated_secret
        return self.ctx.settings["watchtower_secret"]

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "ts": iso_now(), "git_sha": GIT_SHA,
                             "db_ok": await self._db_ok()})

    async def _db_ok(self) -> bool:
        if HEALTH_DB_DOWN in self.faults():
            return False  # as upstream when the Supabase URL or anon key env is missing
        try:
            row = await self.db.fetchone("SELECT public.ping()", timeout=2.0)
        except (psycopg.Error, OSError, TimeoutError):
            return False
        return row is not None and row[0] == 1

    async def sync(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._preflight(request.headers.get("origin", ""))
        # Newer builds refuse diag mode in production, as DIAG_DISABLED makes this one do.
        if request.query_params.get("diag") != "1" or DIAG_DISABLED in self.faults():
            return JSONResponse(NOT_ALLOWED, status_code=405, headers={"Allow": "POST, OPTIONS"})
        return JSONResponse(_diagnostics(request.headers), headers={"Cache-Control": "no-store"})

    def _preflight(self, origin: str) -> Response:
        headers = {"Vary": "Origin", "X-OpsMantik-Version": VERSION}
        if origin not in self.allowed_origins():
            return Response(status_code=403, headers=headers)
        headers |= {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
        }
        return Response(status_code=200, headers=headers)

    async def worker(self, request: Request) -> Response:
        body = await request.body()
        key = self.ctx.settings["signing_key"].encode()
        expected = "v1=" + hmac.new(key, body, sha256).hexdigest()
        # Upstream verifies only when both QStash signing keys are set; WORKER_SIGNING_OFF is
        # a deploy that lost them.
        verifying = WORKER_SIGNING_OFF not in self.faults()
        if verifying and not _same(request.headers.get("upstash-signature", ""), expected):
            return JSONResponse({"error": "Invalid signature"}, status_code=401)
        visit = _visit_from_job(body)
        if visit is None:
            return JSONResponse({"ok": True})  # an invalid job is acknowledged and dropped
        outcome = await run_in_threadpool(self._ingest, visit)
        if outcome == "processed":
            return JSONResponse({"success": True, "score": 10})
        return JSONResponse({"ok": True, outcome: True})

    def _ingest(self, visit: visitors.Visit) -> str:
        with self.ctx.connect_as(SERVICE_ROLE, self.ctx.settings[SERVICE_PASSWORD]) as conn:
            return ingest(conn, visit)

    async def partition_drift(self, request: Request) -> Response:
        if not _watchtower_authorized(request.headers, self.watchtower_secret()):
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        try:
            row = await self.db.fetchone("SELECT public.watchtower_partition_drift_check_v1()")
        except (psycopg.Error, OSError, TimeoutError):
            return JSONResponse({"ok": False, "error": "Failed to run check"}, status_code=500)
        return JSONResponse(row[0] if row else None)  # ok:false is still a 200, as upstream

    async def cron_watchtower(self, request: Request) -> Response:
        expected = f"Bearer {self.ctx.settings['cron_secret']}"
        if not _same(request.headers.get("authorization", ""), expected):
            return PlainTextResponse("Unauthorized", status_code=401)
        try:
            row = await self.db.fetchone(WATCHTOWER_COUNTS)
            sessions, gclid = (int(row[0]), int(row[1])) if row else (-1, -1)
        except (psycopg.Error, OSError, TimeoutError):
            sessions, gclid = -1, -1
        checks = {"sessionsLastHour": _verdict(sessions), "gclidLast3Hours": _verdict(gclid)}
        status = "ok" if all(c["status"] == "ok" for c in checks.values()) else "alarm"
        if status == "alarm":
            self._send_telegram(f"Watchtower alarm: {json.dumps(checks)}")
        return JSONResponse({"status": status, "checks": checks,
                             "details": {"timestamp": iso_now(), "environment": "sandbox"}})

    def _send_telegram(self, text: str) -> None:
        # Telegram is a third-party service that cannot run here: the alarm the real cron would
        # send is appended to DIR/telegram.jsonl instead.
        line = json.dumps({"ts": iso_now(), "chat": "sandbox-oncall", "text": text})
        append_private(self.ctx.home.telegram_log, line + "\n")

    async def test_throw(self, request: Request) -> Response:
        return JSONResponse({"error": "Watchtower test error"}, status_code=500)


def _verdict(count: int) -> dict[str, Any]:
    return {"status": "ok" if count > 0 else "alarm", "count": count}


def _watchtower_authorized(headers: Headers, secret: str) -> bool:
    authorization = headers.get("authorization", "")
    candidates = (authorization.removeprefix("Bearer "), authorization,
                  headers.get("x-watchtower-secret", ""))
    return any(_same(candidate, secret) for candidate in candidates if candidate)


def _diagnostics(headers: Headers) -> dict[str, Any]:
    def get(name: str) -> str | None:
        value = headers.get(name)
        return unquote(value) if value else None

    cf = {"city": get("cf-ipcity"), "district": get("cf-ipdistrict"),
          "country": get("cf-ipcountry"), "timezone": get("cf-timezone"),
          "asn": get("cf-asn"), "org": get("cf-asorganization"), "ray": get("cf-ray")}
    vercel = {"city": get("x-vercel-ip-city"), "country": get("x-vercel-ip-country"),
              "asn": get("x-vercel-ip-as-number"), "id": get("x-vercel-id")}
    chosen = {"city": cf["city"] or vercel["city"], "district": cf["district"],
              "country": cf["country"] or vercel["country"],
              "timezone": cf["timezone"] or get("x-vercel-ip-timezone")}
    present = {key: name in headers for key, name in (
        ("cf_ipcity", "cf-ipcity"), ("cf_ipdistrict", "cf-ipdistrict"),
        ("cf_ipcountry", "cf-ipcountry"), ("x_vercel_ip_city", "x-vercel-ip-city"),
        ("x_vercel_ip_country", "x-vercel-ip-country"))}
    return {"ok": True, "v": VERSION, "headers_present": present, "chosen": chosen,
            "cf": cf, "vercel": vercel}


def _visit_from_job(body: bytes) -> visitors.Visit | None:
    """A queued job: {"ingest_id", "site" (public id), "session_id", "ts", "page"}."""
    try:
        job = json.loads(body)
        site = next(s for s in visitors.SITES if s.public_id == job["site"])
        at = datetime.fromisoformat(job["ts"])
        if at.tzinfo is None:
            return None  # a client time without an offset cannot be placed in a UTC month
        return visitors.Visit(uuid.UUID(job["ingest_id"]), site, uuid.UUID(job["session_id"]),
                              at.astimezone(UTC), {"entry_page": str(job["page"])}, ("page_view",))
    except (ValueError, KeyError, TypeError, StopIteration, AttributeError):
        return None


def create_app(ctx: Context) -> ASGIApp:
    api = OpsMantikApi(ctx)
    routes = [
        Route("/api/health", api.health, methods=["GET"]),
        Route("/api/sync", api.sync, methods=["GET", "OPTIONS"]),
        Route("/api/sync/worker", api.worker, methods=["POST"]),
        Route("/api/watchtower/partition-drift", api.partition_drift, methods=["POST"]),
        Route("/api/watchtower/test-throw", api.test_throw, methods=["GET"]),
        Route("/api/cron/watchtower", api.cron_watchtower, methods=["GET"]),
    ]
    # Outermost, so that even Starlette's own error responses carry the id, as upstream's do.
    return RequestId(Starlette(routes=routes))
