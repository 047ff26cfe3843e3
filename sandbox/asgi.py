"""ASGI wrappers shared by the systems' apps."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.files import append_private


class RequestId:
    """Give every response an `x-request-id` UUID (the caller's, when it sent a valid one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _valid_uuid(Headers(scope=scope).get("x-request-id")) or str(uuid.uuid4())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def _valid_uuid(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


class RequestLog:
    """Append one JSON line per request to DIR/requests.jsonl.

    The suite's self-tests read it to prove that, by default, the checks only send GET and HEAD.
    """

    def __init__(self, app: ASGIApp, system: str, path: Path) -> None:
        self.app = app
        self.system = system
        self.path = path
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self._record(scope["method"], scope["path"])
        await self.app(scope, receive, send)

    def _record(self, method: str, path: str) -> None:
        line = json.dumps({"ts": datetime.now(UTC).isoformat(), "system": self.system,
                           "method": method, "path": path})
        with self._lock:
            append_private(self.path, line + "\n")
