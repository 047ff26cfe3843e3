"""RevenueOS's HTTP app (RUNBOOK-ITEMS.md 3.2), served by the daemon: the routes runbook 003
touches. There is no health endpoint upstream, and none here.

- The four cron routes, behind `requireInternalAuth` (Bearer INTERNAL_API_SECRET), with its
  answers: 401 "Missing Authorization header", 401 for another scheme, 500 "Configuration
  error" when the variable is unset, 401 "Unauthorized" for a wrong token. With the valid secret
  they do their work: GET /api/cron/sync runs a sync engine batch, POST /api/cron/worker a queue
  worker pass, POST /api/cron/retention deletes old finished jobs, POST /api/cron/consistency
  runs the detectors.
- POST /api/webhooks/{provider}?key=...: the project's webhook key, then the body's signature
  (`x-webhook-signature`: hex HMAC-SHA256 with the integration's secret; upstream each connector
  verifies its provider's own scheme). A bad signature is kept as `ignored`; a repeat is a
  duplicate.
- /ops/lineage, the Lineage Explorer: a client-side mock upstream; anonymous users are sent to
  the login page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox.kit import SERVICE_PASSWORD
from sandbox.revenueos import incidents, pipeline
from sandbox.revenueos.pipeline import Delivery, RawWriter
from sandbox.revenueos.provision import CURRENT_SECRET, PREVIOUS_SECRET, SERVICE_ROLE
from sandbox.system import Context

SYNC_BATCH = 20  # processPendingBatch(20), as /api/cron/sync calls it
RETENTION_DAYS = 30
WEBHOOK_KEY = """
    SELECT k.org_id, k.project_id, i.webhook_secret
    FROM public.project_webhook_keys k
    JOIN public.integrations i ON i.org_id = k.org_id AND i.provider = k.provider
                              AND i.status = 'active'
    WHERE k.webhook_key = %s AND k.provider = %s AND k.active
    LIMIT 1
"""
RETENTION = """
    DELETE FROM public.jobs_queue
    WHERE status IN ('completed', 'dead') AND created_at < now() - make_interval(days => %s)
"""
LOGIN_PAGE = "<!doctype html><title>RevenueOS · Entrar</title><form>E-mail, senha</form>"
LINEAGE_PAGE = ("<!doctype html><title>Lineage Explorer</title>"
                "<p>evt_… ou e-mail do cliente</p>")  # the mock's shell: its steps are hard-coded


def signature_of(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class RevenueOsApp:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.writer = RawWriter()

    # requireInternalAuth ------------------------------------------------------------------------

    def _secret(self) -> str | None:
        active = self.ctx.active_faults()
        if incidents.INTERNAL_SECRET_UNSET in active:
            return None
        # A rotation that did not reach the deployment: it still holds the old secret.
        rotated = incidents.SECRET_ROTATION_NOT_APPLIED not in active
        return self.ctx.settings[CURRENT_SECRET if rotated else PREVIOUS_SECRET]

    def refused(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if not header:
            return JSONResponse({"error": "Missing Authorization header"}, status_code=401)
        scheme, token = (header.split(" ") + [""])[:2]
        if scheme != "Bearer" or not token:
            return JSONResponse(
                {"error": "Invalid Authorization format. Expected: Bearer <token>"},
                status_code=401)
        secret = self._secret()
        if not secret:
            return JSONResponse({"error": "Configuration error"}, status_code=500)
        if not hmac.compare_digest(token.encode(), secret.encode()):
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        return None

    # Cron routes --------------------------------------------------------------------------------

    async def cron_sync(self, request: Request) -> Response:
        if refusal := self.refused(request):
            return refusal
        processed = await run_in_threadpool(self._with_conn, self.writer.process_pending,
                                            SYNC_BATCH)
        return JSONResponse({"processed": processed, "errors": 0})

    async def cron_worker(self, request: Request) -> Response:
        if refusal := self.refused(request):
            return refusal
        processed = await run_in_threadpool(self._with_conn, pipeline.run_jobs)
        return JSONResponse({"success": True, "processed": processed})

    async def cron_retention(self, request: Request) -> Response:
        if refusal := self.refused(request):
            return refusal
        deleted = await run_in_threadpool(self._with_conn, self._retention)
        return JSONResponse({"success": True, "deleted_count": deleted,
                             "message": f"Cleaned jobs older than {RETENTION_DAYS} days"})

    async def cron_consistency(self, request: Request) -> Response:
        if refusal := self.refused(request):
            return refusal
        # The two detectors find nothing in the sandbox's consistent data.
        return JSONResponse({"success": True, "results": {"checked": 2, "errors": []}})

    # Webhooks and pages -------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        provider = request.path_params["provider"]
        key = request.query_params.get("key")
        if not key:
            return JSONResponse({"error": "Missing webhook key"}, status_code=400)
        if incidents.WEBHOOKS_DOWN in self.ctx.active_faults():
            # The deployment is down: the request never reaches the route.
            return JSONResponse({"error": {"code": "DEPLOYMENT_NOT_FOUND"}}, status_code=404)
        body = await request.body()
        status, reply = await run_in_threadpool(
            self._receive, provider, key, body, request.headers.get("x-webhook-signature", ""))
        return JSONResponse(reply, status_code=status)

    async def lineage(self, request: Request) -> Response:
        if "sb-access-token" not in request.cookies:
            return RedirectResponse("/login?next=%2Fops%2Flineage", status_code=307)
        return HTMLResponse(LINEAGE_PAGE)

    async def login(self, request: Request) -> Response:
        return HTMLResponse(LOGIN_PAGE)

    # Their database work, in a worker thread ----------------------------------------------------

    def _with_conn(self, work: Any, *args: Any) -> Any:
        with self.ctx.connect_as(SERVICE_ROLE, self.ctx.settings[SERVICE_PASSWORD]) as conn:
            return work(conn, *args)

    @staticmethod
    def _retention(conn: Any) -> int:
        return int(conn.execute(RETENTION, (RETENTION_DAYS,)).rowcount)

    def _receive(self, provider: str, key: str, body: bytes,
                 signature: str) -> tuple[int, dict[str, Any]]:
        with self.ctx.connect_as(SERVICE_ROLE, self.ctx.settings[SERVICE_PASSWORD]) as conn:
            route = conn.execute(WEBHOOK_KEY, (key, provider)).fetchone()
            if route is None:
                return 404, {"error": "Invalid or inactive webhook key"}
            org_id, project_id, secret = route
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {}
            payload = payload if isinstance(payload, dict) else {"body": payload}
            valid = bool(secret) and hmac.compare_digest(
                signature.encode(), signature_of(body, str(secret)).encode())
            event_type = next((str(payload[k]) for k in ("event", "topic", "type") if k in payload),
                              "unknown")
            received = self.writer.receive(conn, Delivery(
                org_id, project_id, provider, f"{provider}:{hashlib.sha256(body).hexdigest()}",
                event_type, payload, {"content-type": "application/json"}, valid,
                None if valid else "Invalid Signature"))
        if received is None:
            return 200, {"received": True, "status": "duplicate"}
        return 200, {"received": True}


def create_app(ctx: Context) -> ASGIApp:
    app = RevenueOsApp(ctx)
    return Starlette(routes=[
        Route("/api/cron/sync", app.cron_sync, methods=["GET"]),
        Route("/api/cron/worker", app.cron_worker, methods=["POST"]),
        Route("/api/cron/retention", app.cron_retention, methods=["POST"]),
        Route("/api/cron/consistency", app.cron_consistency, methods=["POST"]),
        Route("/api/webhooks/{provider}", app.webhook, methods=["POST"]),
        Route("/ops/lineage", app.lineage, methods=["GET"]),
        Route("/login", app.login, methods=["GET"]),
    ])
