"""TrendSpark's backend (`trend_spark_ai.api:app`, port 8000 upstream): the routes runbook 004
touches, with upstream's auth and answer shapes (RUNBOOK-ITEMS 4.2).

- `GET /health` (public, always 200): database, worker (its `/health` with the service token)
  and Telegram (a live getMe) under `services`, plus the growth profile and `stream_enabled`.
- `GET /live`; `GET /metrics` (any token).
- `GET /ingest/audit?limit=&source=&cycle_id=`, `GET /stream/rules`, `GET /posts/top`: any token.
- `GET /scheduler/jobs`, `POST /scheduler/run`, `POST /scheduler/toggle`: admin, proxied to the
  worker (`/scheduler/run` answers 200, not the worker's 202; a 422 comes back nested).
- The API error alert: 5 responses >= 500 within 300 s send an `api_alert` on Telegram (30 min
  cooldown, kept in memory).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox.kit import SERVICE_PASSWORD
from sandbox.system import Context
from sandbox.trendspark import telegram
from sandbox.trendspark.incidents import API_5XX_SPIKE
from sandbox.trendspark.runtime import runtime_of
from sandbox.trendspark.settings import SERVICE_ROLE, SERVICE_TOKEN, STREAM_ENABLED, api_tokens
from sandbox.trendspark.web import Instrumented, TokenAuth, json_body, metrics_response, require_admin

WORKER_TIMEOUT = 10.0
UNAVAILABLE = {"detail": "Worker service unavailable"}
PROFILE = """
    SELECT id, name, is_default, is_active, keywords, niche, watchlist FROM public.growth_config
    WHERE is_active ORDER BY is_default DESC, id LIMIT 1
"""
AUDIT = """
    SELECT id, cycle_id, source, platform, post_id, author, fetched_at, item_created_at, summary
    FROM public.ingest_audit
    WHERE (%(source)s::text IS NULL OR source = %(source)s)
      AND (%(cycle)s::text IS NULL OR cycle_id = %(cycle)s)
    ORDER BY fetched_at DESC, id DESC LIMIT %(limit)s
"""
TOP_POSTS = """
    SELECT platform, post_id, author, virality_score, collected_at FROM public.posts
    WHERE collected_at >= timezone('utc', now()) - interval '1 day'
    ORDER BY virality_score DESC NULLS LAST, id DESC LIMIT 20
"""


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class BackendApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _rows(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.ctx.connect_as(SERVICE_ROLE, self.ctx.settings[SERVICE_PASSWORD]) as conn:
            cur = conn.execute(query, params)
            names = [c.name for c in cur.description or ()]
            return [{n: _iso(v) for n, v in zip(names, row, strict=True)} for row in cur]

    async def health(self, request: Request) -> Response:
        profile = (await run_in_threadpool(self._rows, PROFILE) or [{}])[0]
        try:
            await run_in_threadpool(self._rows, "SELECT 1 AS ok")
            database = {"ok": True, "detail": "connected"}
        except Exception as exc:  # upstream reports the database error in the body
            database = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:200]}
        worker_ok, worker_detail, info = await self._worker_health()
        telegram_ok, telegram_detail = await telegram.get_me(self.ctx)
        return JSONResponse({
            "ok": database["ok"] and worker_ok and telegram_ok,
            "services": {
                "database": database,
                "worker": {"ok": worker_ok, "detail": worker_detail, "info": info},
                "telegram": {"ok": telegram_ok, "detail": telegram_detail},
            },
            "stream_enabled": STREAM_ENABLED,
            "keywords": profile.get("keywords"), "niche": profile.get("niche"),
            "watchlist": profile.get("watchlist"),
            "growth_profile": {k: profile.get(k) for k in (
                "id", "name", "is_default", "is_active", "keywords", "niche", "watchlist")},
        })

    async def _worker_health(self) -> tuple[bool, str, dict[str, Any] | None]:
        reply = await self._worker("GET", "/health")
        if reply is None or reply.status_code != 200:
            return False, UNAVAILABLE["detail"], None
        info = reply.json()
        return bool(info.get("ok")), "reachable", info

    async def _worker(self, method: str, path: str, body: Any = None) -> httpx.Response | None:
        headers = {"Authorization": f"Bearer {self.ctx.settings[SERVICE_TOKEN]}"}
        try:
            async with httpx.AsyncClient(base_url=self.ctx.url("worker"), timeout=WORKER_TIMEOUT,
                                         trust_env=False) as client:
                reply = await client.request(method, path, headers=headers, json=body)
        except httpx.HTTPError:
            return None
        return None if reply.status_code in (502, 503, 504) else reply

    async def proxy(self, request: Request) -> Response:
        body = await json_body(request) if request.method == "POST" else None
        reply = await self._worker(request.method, request.url.path, body)
        if reply is None:
            return JSONResponse(UNAVAILABLE, status_code=503)
        if reply.status_code == 422:
            return JSONResponse({"detail": reply.json()}, status_code=422)
        status = 200 if reply.status_code == 202 else reply.status_code
        return JSONResponse(reply.json(), status_code=status)

    async def live(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def metrics(self, request: Request) -> Response:
        return metrics_response(runtime_of(self.ctx).backend)

    async def audit(self, request: Request) -> Response:
        query = request.query_params
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 500:
            detail = [{"type": "less_than_equal", "loc": ["query", "limit"],
                       "msg": "Input should be between 1 and 500", "input": query.get("limit")}]
            return JSONResponse({"detail": detail}, status_code=422)
        rows = await run_in_threadpool(self._rows, AUDIT, {
            "source": query.get("source"), "cycle": query.get("cycle_id"), "limit": limit})
        return JSONResponse(rows)

    async def stream_rules(self, request: Request) -> Response:
        rows = await run_in_threadpool(
            self._rows, "SELECT id, value, created_at FROM public.stream_rules ORDER BY id")
        return JSONResponse(rows)

    async def top_posts(self, request: Request) -> Response:
        if API_5XX_SPIKE in self.ctx.active_faults():
            return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
        return JSONResponse(await run_in_threadpool(self._rows, TOP_POSTS))

    def server_error(self) -> None:
        """Count a 5xx toward the API error alert; send the alert off the event loop."""
        runtime = runtime_of(self.ctx)
        if runtime.backend.server_error(asyncio.get_running_loop().time()):
            asyncio.get_running_loop().run_in_executor(
                None, lambda: telegram.send(self.ctx, "api_alert", "API errors spiking: 5 or more "
                                            "responses >= 500 in 5 minutes", from_backend=True))


def create_backend(ctx: Context) -> ASGIApp:
    api = BackendApi(ctx)
    routes = [
        Route("/health", api.health, methods=["GET"]),
        Route("/live", api.live, methods=["GET"]),
        Route("/metrics", api.metrics, methods=["GET"]),
        Route("/ingest/audit", api.audit, methods=["GET"]),
        Route("/stream/rules", api.stream_rules, methods=["GET"]),
        Route("/posts/top", api.top_posts, methods=["GET"]),
        Route("/scheduler/jobs", require_admin(api.proxy), methods=["GET"]),
        Route("/scheduler/run", require_admin(api.proxy), methods=["POST"]),
        Route("/scheduler/toggle", require_admin(api.proxy), methods=["POST"]),
    ]
    app = TokenAuth(Starlette(routes=routes), lambda: _backend_tokens(ctx))
    return Instrumented(app, routes, lambda: runtime_of(ctx).backend, api.server_error)


def _backend_tokens(ctx: Context) -> dict[str, str]:
    """The backend's API_TOKENS carry no service role: only admins use the scheduler routes."""
    return {token: role for token, role in api_tokens(ctx).items() if role != "service"}
