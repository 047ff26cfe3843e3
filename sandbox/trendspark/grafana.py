"""Grafana, which is in none of the package registries here: a STUB with Grafana's answer shapes
for the three endpoints runbook 004's checks read. It says it is one (`version: "sandbox-stub"`
and an `x-sandbox-stub` header).

- `GET /api/health` (public): `{"database": "ok", ...}`.
- `GET /api/search` and `GET /api/v1/provisioning/alert-rules`: a service account token (Bearer)
  or 401; the dashboards and alert rules TrendSpark's monitoring provisions.

The stub accepts no password at all, the default admin/admin included: the checks never log in.
Under `grafana_unprovisioned` it answers as a Grafana started without its provisioning files.
"""

from __future__ import annotations

import hmac

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox.system import Context
from sandbox.trendspark.incidents import GRAFANA_UNPROVISIONED
from sandbox.trendspark.settings import GRAFANA_TOKEN

STUB_HEADER = {"x-sandbox-stub": "grafana"}
DASHBOARDS = ("Ingest overview", "Alert delivery", "OpenAI usage", "Job duration")
ALERT_RULES = (("Ingestion stalled", "increase(trendspark_ingest_items_total[1h]) == 0"),
               ("Alert delivery errors", "increase(trendspark_alert_delivery_total"
                                         "{status=\"error\"}[15m]) > 0"),
               ("Queue backlog", "trendspark_queue_backlog > 100"))


def create_stub(ctx: Context) -> ASGIApp:
    def authorized(request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expected = ctx.settings[GRAFANA_TOKEN]
        return scheme == "Bearer" and hmac.compare_digest(token.encode(), expected.encode())

    def provisioned() -> bool:
        return GRAFANA_UNPROVISIONED not in ctx.active_faults()

    async def health(request: Request) -> Response:
        return JSONResponse({"commit": "sandbox-stub", "database": "ok",
                             "version": "sandbox-stub"}, headers=STUB_HEADER)

    async def search(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"message": "Unauthorized"}, status_code=401, headers=STUB_HEADER)
        found = [{"id": n, "uid": f"trendspark-{n}", "title": title, "type": "dash-db",
                  "tags": ["trendspark"], "url": f"/d/trendspark-{n}"}
                 for n, title in enumerate(DASHBOARDS, start=1)] if provisioned() else []
        return JSONResponse(found, headers=STUB_HEADER)

    async def alert_rules(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"message": "Unauthorized"}, status_code=401, headers=STUB_HEADER)
        rules = [{"uid": f"ts-rule-{n}", "title": title, "folderUID": "trendspark",
                  "ruleGroup": "trendspark", "condition": "C", "for": "5m",
                  "data": [{"refId": "A", "model": {"expr": expr}}]}
                 for n, (title, expr) in enumerate(ALERT_RULES, start=1)] if provisioned() else []
        return JSONResponse(rules, headers=STUB_HEADER)

    return Starlette(routes=[
        Route("/api/health", health, methods=["GET"]),
        Route("/api/search", search, methods=["GET"]),
        Route("/api/v1/provisioning/alert-rules", alert_rules, methods=["GET"]),
    ])
