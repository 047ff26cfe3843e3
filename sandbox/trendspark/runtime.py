"""TrendSpark's two processes as the daemon runs them: the backend and the worker, each with its
own prometheus-client registry (the metrics, names and labels of trend_spark_ai/metrics.py and
of prometheus-fastapi-instrumentator) and its own start time.

Both live in the daemon's one Python process; a restart is emulated: fresh registries (counters
back to zero, labelled series gone until their first increment, as after a real restart) and a
new start time. The sandbox's command line asks for one by bumping the generation in
DIR/trendspark/restart, as a deploy or a `docker compose restart` would; the apps and the worker
take it up on their next request or step and write their start times to
DIR/trendspark/started.json, which the Prometheus history (prometheus.py) follows.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sandbox.files import write_private
from sandbox.paths import Home
from sandbox.system import Context

DIRECTORY = "trendspark"
JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
HTTP_BUCKETS = (0.1, 0.5, 1.0)  # the instrumentator's defaults
API_ERROR_WINDOW = 300.0  # seconds: 5 responses >= 500 in this window raise the api_alert
API_ERROR_COUNT = 5
ALERT_COOLDOWN = 1800.0  # seconds between two alerts of one kind (job or API)


def files(home: Home) -> Path:
    """TrendSpark's own files in the home: Prometheus's config and data, the restart signal."""
    return home.root / DIRECTORY


class Process:
    """One emulated process: its registry, start time and the gauge saying so."""

    def __init__(self) -> None:
        self.started = time.time()
        self.registry = CollectorRegistry()
        Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
              registry=self.registry).set(self.started)
        self.requests = Counter("http_requests", "Total number of requests by method, status and "
                                "handler.", ["method", "status", "handler"], registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "Latency with only few buckets "
                                 "by handler.", ["method", "handler"], buckets=HTTP_BUCKETS,
                                 registry=self.registry)
        # metrics.py is imported by both processes: each counts the alerts it sends itself.
        self.deliveries = Counter("trendspark_alert_delivery", "Alert deliveries",
                                  ["channel", "category", "status"], registry=self.registry)

    def observe(self, method: str, handler: str, status: int, seconds: float) -> None:
        """What the instrumentator records: status grouped by its first digit ("5xx")."""
        self.requests.labels(method, f"{status // 100}xx", handler).inc()
        self.latency.labels(method, handler).observe(seconds)


class Worker(Process):
    """The worker: ingest, jobs and alert delivery happen here (RUNBOOK-ITEMS 4.2)."""

    def __init__(self) -> None:
        super().__init__()
        registry = self.registry
        self.ingest_items = Counter("trendspark_ingest_items", "Items ingested per source",
                                    ["source"], registry=registry)
        self.ingest_cycles = Counter("trendspark_ingest_cycles", "Ingest cycles completed",
                                     registry=registry)
        self.openai_requests = Counter("trendspark_openai_requests", "OpenAI requests", ["kind"],
                                       registry=registry)
        self.job_duration = Histogram("trendspark_job_duration_seconds", "Job duration",
                                      ["job"], buckets=JOB_BUCKETS, registry=registry)
        self.job_runs = Counter("trendspark_job_runs", "Job runs by outcome", ["job", "status"],
                                registry=registry)
        self.backlog = Gauge("trendspark_queue_backlog", "Pending work", ["type"], registry=registry)
        self.outcome: dict[str, str] = {}  # the outcome label each job last had
        self.failures: dict[str, int] = {}  # consecutive errors per job
        self.alerted: dict[str, float] = {}  # when each job last raised its failure alert


class Backend(Process):
    """The backend: the API error alert's window lives in its memory only, as upstream's."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: deque[float] = deque()
        self.alerted_at = 0.0

    def server_error(self, now: float) -> bool:
        """Note a response >= 500; True when it completes 5 in 300 s outside the cooldown."""
        self.errors.append(now)
        while self.errors and self.errors[0] < now - API_ERROR_WINDOW:
            self.errors.popleft()
        if len(self.errors) >= API_ERROR_COUNT and now - self.alerted_at > ALERT_COOLDOWN:
            self.alerted_at = now
            return True
        return False


class Runtime:
    """TrendSpark's processes in this daemon, restarted on request."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._generation = -1
        self.backend = Backend()
        self.worker = Worker()
        self.manual_runs: deque[int] = deque()  # config ids queued by POST /scheduler/run

    def current(self) -> Runtime:
        """Take up a requested restart first; every request and worker step goes through here."""
        generation = requested_generation(self.home)
        if generation != self._generation:
            with self._lock:
                if generation != self._generation:
                    self.backend, self.worker = Backend(), Worker()
                    self._generation = generation
                    write_private(files(self.home) / "started.json", json.dumps({
                        "generation": generation, "backend": self.backend.started,
                        "worker": self.worker.started}) + "\n")
        return self


_RUNTIMES: dict[Path, Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def runtime_of(ctx: Context) -> Runtime:
    """The daemon's one Runtime per sandbox home (apps and worker share it)."""
    with _RUNTIMES_LOCK:
        found = _RUNTIMES.get(ctx.home.root)
        if found is None:
            found = _RUNTIMES[ctx.home.root] = Runtime(ctx.home)
    return found.current()


def requested_generation(home: Home) -> int:
    try:
        return int((files(home) / "restart").read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def request_restart(home: Home) -> int:
    """Ask the daemon to restart TrendSpark's processes; the generation to wait for."""
    generation = requested_generation(home) + 1
    write_private(files(home) / "restart", f"{generation}\n")
    return generation


def started(home: Home) -> dict[str, float]:
    """The processes' start times and their generation, as the daemon last wrote them."""
    try:
        value = json.loads((files(home) / "started.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else {}
