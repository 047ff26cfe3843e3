"""`GET /metrics`: the request-duration histogram upstream's prom-client serves, written by hand
in the Prometheus text format (0.0.4) so the sandbox needs no client library."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

APP_LABEL = 'app="launchsin-server"'  # prom-client's default label upstream
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WEBHOOK_PREFIX = "/api/webhooks/hotmart/"


@dataclass
class Series:
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0


class Metrics:
    """Collected in the event loop only (the ASGI wrapper below), so no lock is needed."""

    def __init__(self) -> None:
        self.started = time.time()
        self.series: dict[tuple[str, str, str], Series] = defaultdict(Series)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self.series[(method, route, str(status))]
        series.total += seconds
        series.count += 1
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                series.buckets[index] += 1

    def render(self) -> str:
        name = "http_request_duration_seconds"
        lines = [f"# HELP {name} Duration of HTTP requests in seconds", f"# TYPE {name} histogram"]
        for (method, route, status), series in sorted(self.series.items()):
            labels = f'{APP_LABEL},method="{method}",route="{route}",status_code="{status}"'
            for bound, count in zip(BUCKETS, series.buckets, strict=True):
                lines.append(f'{name}_bucket{{{labels},le="{bound:g}"}} {count}')
            lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {series.count}')
            lines.append(f"{name}_sum{{{labels}}} {series.total:.6f}")
            lines.append(f"{name}_count{{{labels}}} {series.count}")
        lines += ["# HELP process_start_time_seconds Start time of the process since unix epoch.",
                  "# TYPE process_start_time_seconds gauge",
                  f"process_start_time_seconds{{{APP_LABEL}}} {self.started:.0f}"]
        return "\n".join(lines) + "\n"


def route_of(path: str) -> str:
    """The route template, so that connection ids do not each make a series."""
    return WEBHOOK_PREFIX + ":connectionId" if path.startswith(WEBHOOK_PREFIX) else path


class Timed:
    """Observe every request's duration and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.observe(scope["method"], route_of(scope["path"]), status,
                                 time.perf_counter() - started)
