"""TrendSpark's worker (`trend_spark_ai.worker_app:app`, port 9000 upstream): the scheduler's
HTTP side. Its jobs run in traffic.py, in the daemon's worker thread, against the same Runtime.

- `GET /health` (public): `{ok, jobs, stream_enabled}`; `GET /live`.
- `GET /metrics` (any token): the worker's registry.
- `GET /scheduler/jobs`, `POST /scheduler/run` `{"config_id": n}` (202 queued),
  `POST /scheduler/toggle` `{"config_id": n, "action": "pause"|"resume"}`, `POST /stream/refresh`:
  admin (or the backend's service token).

While `worker_down` is active the worker is gone: whatever sits in front of it answers 503.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.kit import SERVICE_PASSWORD
from sandbox.system import Context
from sandbox.trendspark.incidents import WORKER_DOWN
from sandbox.trendspark.jobs import BY_ID
from sandbox.trendspark.runtime import runtime_of
from sandbox.trendspark.settings import SERVICE_ROLE, STREAM_ENABLED, api_tokens
from sandbox.trendspark.web import (
    Instrumented,
    TokenAuth,
    int_field,
    json_body,
    metrics_response,
    require_admin,
)

CONFIGS = """
    SELECT c.id, c.job_id, c.name, c.cron, c.enabled, c.priority, c.concurrency_limit,
           c.lock_timeout_seconds, c.parameters, c.created_at, c.updated_at, c.growth_profile_id,
           g.id, g.name, g.is_default, g.is_active
    FROM public.scheduler_configs c LEFT JOIN public.growth_config g ON g.id = c.growth_profile_id
    ORDER BY c.priority, c.id
"""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class WorkerApi:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _connect(self) -> Any:
        return self.ctx.connect_as(SERVICE_ROLE, self.ctx.settings[SERVICE_PASSWORD])

    async def health(self, request: Request) -> Response:
        jobs = await run_in_threadpool(self._scheduled)
        return JSONResponse({"ok": True, "jobs": jobs, "stream_enabled": STREAM_ENABLED})

    async def live(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def metrics(self, request: Request) -> Response:
        return metrics_response(runtime_of(self.ctx).worker)

    async def jobs(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self._jobs))

    async def run(self, request: Request) -> Response:
        body = await json_body(request)
        config_id = int_field(body, "config_id")
        if isinstance(config_id, Response):
            return config_id
        if not await run_in_threadpool(self._exists, config_id):
            return JSONResponse({"detail": "Config not found"}, status_code=404)
        runtime_of(self.ctx).manual_runs.append(config_id)
        return JSONResponse({"queued": True, "config_id": config_id}, status_code=202)

    async def toggle(self, request: Request) -> Response:
        body = await json_body(request)
        config_id = int_field(body, "config_id")
        if isinstance(config_id, Response):
            return config_id
        action = body.get("action") if isinstance(body, dict) else None
        if action not in ("pause", "resume"):
            detail = [{"type": "literal_error", "loc": ["body", "action"],
                       "msg": "Input should be 'pause' or 'resume'", "input": action}]
            return JSONResponse({"detail": detail}, status_code=422)
        if not await run_in_threadpool(self._set_enabled, config_id, action == "resume"):
            return JSONResponse({"detail": "Config not found"}, status_code=404)
        return JSONResponse({"config_id": config_id, "enabled": action == "resume",
                             "paused": action == "pause"})

    async def refresh_stream(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "stream_enabled": STREAM_ENABLED})

    def _scheduled(self) -> int:
        with self._connect() as conn:
            row = conn.execute("SELECT count(*) FROM public.scheduler_configs WHERE enabled"
                               ).fetchone()
        return int(row[0]) if row else 0

    def _exists(self, config_id: int) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM public.scheduler_configs WHERE id = %s",
                                (config_id,)).fetchone() is not None

    def _set_enabled(self, config_id: int, enabled: bool) -> bool:  # noqa: FBT001
        with self._connect() as conn:
            return bool(conn.execute(
                "UPDATE public.scheduler_configs SET enabled = %s, updated_at = timezone('utc', now())"
                " WHERE id = %s", (enabled, config_id)).rowcount)

    def _jobs(self) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute(CONFIGS).fetchall()
        now = datetime.now(UTC).replace(tzinfo=None)
        listed = []
        for (cid, job_id, name, cron, enabled, priority, limit, lock, params, created, updated,
             profile_id, g_id, g_name, g_default, g_active) in rows:
            job = BY_ID.get(job_id)
            # APScheduler's next fire time carries its time zone, unlike the naive columns.
            due = job.next(now).replace(tzinfo=UTC) if job and enabled else None
            listed.append({
                "config_id": cid, "job_id": job_id, "name": name, "cron": cron, "enabled": enabled,
                "priority": priority, "concurrency_limit": limit, "lock_timeout_seconds": lock,
                "parameters": params, "created_at": _iso(created), "updated_at": _iso(updated),
                "growth_profile_id": profile_id,
                "growth_profile": {"id": g_id, "name": g_name, "is_default": g_default,
                                   "is_active": g_active} if g_id else None,
                "next_run": _iso(due), "paused": not enabled,
            })
        return listed


class Down:
    """While worker_down is active, nothing behind the port answers but its proxy."""

    def __init__(self, app: ASGIApp, ctx: Context) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime_of(self.ctx)  # a restart asked for meanwhile is taken up all the same
        if scope["type"] == "http" and WORKER_DOWN in self.ctx.active_faults():
            await PlainTextResponse("Service Unavailable", status_code=503)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_worker(ctx: Context) -> ASGIApp:
    api = WorkerApi(ctx)
    routes = [
        Route("/health", api.health, methods=["GET"]),
        Route("/live", api.live, methods=["GET"]),
        Route("/metrics", api.metrics, methods=["GET"]),
        Route("/scheduler/jobs", require_admin(api.jobs), methods=["GET"]),
        Route("/scheduler/run", require_admin(api.run), methods=["POST"]),
        Route("/scheduler/toggle", require_admin(api.toggle), methods=["POST"]),
        Route("/stream/refresh", require_admin(api.refresh_stream), methods=["POST"]),
    ]
    app = TokenAuth(Starlette(routes=routes), lambda: api_tokens(ctx))
    return Down(Instrumented(app, routes, lambda: runtime_of(ctx).worker), ctx)
