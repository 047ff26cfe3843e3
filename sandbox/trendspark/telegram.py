"""Telegram, which cannot run here: a STUB of the Bot API on a loopback port (`getMe`,
`sendMessage`), and the app's side of it (trend_spark_ai/notifier.py: send_telegram_message).

The stub knows one bot (the sandbox's token) in one chat. Every message it accepts is appended to
DIR/telegram.jsonl. Under `alert_delivery_errors` the bot has been removed from the chat:
`getMe` still answers (the app's health looks fine) and `sendMessage` is refused with 403.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
from psycopg.types.json import Json
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox.files import append_private
from sandbox.kit import SERVICE_PASSWORD
from sandbox.system import Context
from sandbox.trendspark.incidents import (
    ALERT_DELIVERY_ERRORS,
    KICKED,
    TELEGRAM_MISSING,
    TELEGRAM_UNCONFIGURED,
)
from sandbox.trendspark.runtime import runtime_of
from sandbox.trendspark.settings import SERVICE_ROLE, TELEGRAM_CHAT, TELEGRAM_TOKEN

TIMEOUT = 5.0  # the app's getMe and sendMessage timeout
STUB_HEADER = {"x-sandbox-stub": "telegram"}


def create_stub(ctx: Context) -> ASGIApp:
    async def method(request: Request) -> Response:
        if request.path_params["token"] != ctx.settings[TELEGRAM_TOKEN]:
            return _refusal(401, "Unauthorized")
        name = request.path_params["method"]
        if name == "getMe":
            bot_id = int(ctx.settings[TELEGRAM_TOKEN].split(":", 1)[0])
            return JSONResponse({"ok": True, "result": {
                "id": bot_id, "is_bot": True, "first_name": "TrendSpark (sandbox stub)",
                "username": "trendspark_sandbox_bot"}}, headers=STUB_HEADER)
        if name != "sendMessage":
            return _refusal(404, "Not Found")
        body = await _params(request)
        if str(body.get("chat_id")) != ctx.settings[TELEGRAM_CHAT]:
            return _refusal(400, "Bad Request: chat not found")
        if ALERT_DELIVERY_ERRORS in ctx.active_faults():
            return _refusal(403, KICKED)
        line = {"ts": datetime.now(UTC).isoformat(), "system": "trendspark",
                "chat_id": body.get("chat_id"), "text": str(body.get("text", ""))[:500]}
        append_private(ctx.home.telegram_log, json.dumps(line) + "\n")
        return JSONResponse({"ok": True, "result": {"message_id": 1, "chat": {
            "id": int(ctx.settings[TELEGRAM_CHAT])}, "text": body.get("text")}}, headers=STUB_HEADER)

    return Starlette(routes=[Route("/bot{token}/{method}", method, methods=["GET", "POST"])])



async def _params(request: Request) -> dict[str, Any]:
    if request.method == "GET":
        return dict(request.query_params)
    try:
        value = json.loads(await request.body() or b"{}")
    except ValueError:
        return dict(await request.form())
    return value if isinstance(value, dict) else {}


def _refusal(code: int, description: str) -> Response:
    return JSONResponse({"ok": False, "error_code": code, "description": description},
                        status_code=code, headers=STUB_HEADER)


def configured(ctx: Context) -> tuple[str, str] | None:
    """TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID as the app sees them (gone under the fault)."""
    if TELEGRAM_UNCONFIGURED in ctx.active_faults():
        return None
    return ctx.settings[TELEGRAM_TOKEN], ctx.settings[TELEGRAM_CHAT]


async def get_me(ctx: Context) -> tuple[bool, str]:
    """The backend's health check of Telegram: a live getMe, no message sent."""
    config = configured(ctx)
    if config is None:
        return False, TELEGRAM_MISSING
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as client:
            reply = await client.get(f"{ctx.url('telegram')}/bot{config[0]}/getMe")
        data = reply.json()
    except (httpx.HTTPError, ValueError) as exc:
        return False, f"getMe failed: {type(exc).__name__}"
    if reply.status_code == 200 and data.get("ok") is True:
        return True, f"bot @{data['result'].get('username')}"
    return False, f"getMe failed: {data.get('description', reply.status_code)}"


def send(ctx: Context, category: str, text: str, *, from_backend: bool = False) -> str:
    """send_telegram_message: deliver, store a notification when Telegram accepted it, count the
    delivery by its status (sent, error, skipped) in the sending process; the status."""
    config = configured(ctx)
    status = "skipped"
    if config is not None:
        try:
            # The Bot API takes GET as well as POST; GET keeps the sandbox's request log free of
            # writes the checks did not make (the self-tests read it to prove the default run
            # sends only safe methods).
            with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
                reply = client.get(f"{ctx.url('telegram')}/bot{config[0]}/sendMessage",
                                   params={"chat_id": config[1], "text": text})
            status = "sent" if reply.status_code == 200 else "error"
        except httpx.HTTPError:
            status = "error"
    if status == "sent":
        with ctx.connect_as(SERVICE_ROLE, ctx.settings[SERVICE_PASSWORD]) as conn:
            conn.execute("INSERT INTO public.notifications (created_at, channel, category, message,"
                         " payload) VALUES (timezone('utc', now()), 'telegram', %s, %s, %s)",
                         (category, text, Json({"live": True})))
    runtime = runtime_of(ctx)
    process = runtime.backend if from_backend else runtime.worker
    process.deliveries.labels("telegram", category, status).inc()
    return status
