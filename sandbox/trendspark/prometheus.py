"""TrendSpark's Prometheus: the distribution's real binary, one of the system's listeners, on
loopback, its config and data in DIR/trendspark/, scraping the backend and the worker every 2 s
with the bearer token a healthy deployment needs.

Found on PATH or at PROMETHEUS_BIN. Without it the sandbox says so once (in `up`'s summary),
runs no Prometheus and writes no TRENDSPARK_PROMETHEUS_URL.

History. A Prometheus started now would have seen none of the hour the checks' windows cover. At
every start the sandbox therefore rebuilds its data from the database: the worker's counters and
job-duration histogram, as its scrapes would have recorded them over the last two hours, are
written with promtool (`tsdb create-blocks-from openmetrics`) before the binary starts. The
history follows the worker's restarts (DIR/trendspark/started.json) and ends five minutes and
ten seconds before the start, so that an instant query sees only what Prometheus itself scraped.
Faults that rewrite history, and the heals of faults that moved counters, rebuild it the same
way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from sandbox import external, procs
from sandbox.errors import SandboxError
from sandbox.files import write_private
from sandbox.system import Context, Process
from sandbox.trendspark import runtime
from sandbox.trendspark.incidents import METRICS_UNSCRAPED
from sandbox.trendspark.jobs import OUTCOME_ON_ERROR
from sandbox.trendspark.settings import VIEWER_TOKEN

BIN_VARIABLE = "PROMETHEUS_BIN"
NAME = "prometheus"
SCRAPE_INTERVAL = 2  # seconds
RETENTION = "30d"  # the sandbox's --storage.tsdb.retention.time; the repo's compose sets none (15d)
JOBS_SCRAPED = {"app": "trendspark-backend", "worker": "trendspark-worker"}  # by listener
HISTORY = timedelta(hours=2)
HISTORY_STEP = 15  # seconds between the history's samples
LOOKBACK_GAP = timedelta(minutes=5, seconds=10)  # past Prometheus's 5-minute lookback
READY_TIMEOUT = 20.0
INSTALL_HINT = ("install the distribution's package (apt-get install prometheus) or set "
                f"{BIN_VARIABLE}")


def binary() -> str | None:
    """The prometheus binary: PROMETHEUS_BIN when set (and nothing else), else PATH's."""
    chosen = os.environ.get(BIN_VARIABLE)
    if chosen:
        return chosen if os.access(chosen, os.X_OK) and Path(chosen).is_file() else None
    return shutil.which(NAME)


def promtool() -> str | None:
    found = binary()
    beside = Path(found).with_name("promtool") if found else None
    return str(beside) if beside and os.access(beside, os.X_OK) else shutil.which("promtool")


def summary() -> str:
    """What `up` says about Prometheus, once."""
    found = binary()
    if found is None:
        where = f"{BIN_VARIABLE}={os.environ[BIN_VARIABLE]} is not an executable" \
            if os.environ.get(BIN_VARIABLE) else "prometheus is not on PATH"
        return (f"NO PROMETHEUS: {where}; {INSTALL_HINT}. TRENDSPARK_PROMETHEUS_URL is not written "
                "and the checks that need it will be UNKNOWN")
    history = "history rebuilt at each start" if promtool() else "no promtool: starts without history"
    return f"prometheus {found} ({history})"


def directory(ctx: Context) -> Path:
    return runtime.files(ctx.home) / NAME


def command(ctx: Context, port: int) -> Sequence[str]:
    """The command line `up` starts; first the config and the data rebuilt from the database."""
    found = binary()
    if found is None:
        raise SandboxError(f"prometheus is gone since the registry was read; {INSTALL_HINT}")
    base = directory(ctx)
    data = base / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True, mode=0o700)
    write_private(base / "prometheus.yml", config(ctx))
    # A viewer's token: /metrics accepts any valid token, on both apps.
    write_private(base / "token", ctx.settings[VIEWER_TOKEN])
    tool = promtool()
    if tool is not None:
        history = base / "history.om"
        write_private(history, openmetrics(ctx))
        done = subprocess.run([tool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                               str(history), str(data)], capture_output=True, text=True,
                              timeout=60, check=False)
        if done.returncode != 0:
            raise SandboxError(f"promtool could not write the history: {done.stderr.strip()}")
    line = [found, f"--config.file={base / 'prometheus.yml'}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    if METRICS_UNSCRAPED not in ctx.active_faults():
        line.append(f"--storage.tsdb.retention.time={RETENTION}")
    return line


def config(ctx: Context) -> str:
    """prometheus.yml: both apps, with the bearer token; as the repository's
    monitoring/prometheus.yml (no credentials) while metrics_unscraped is active."""
    credentials = METRICS_UNSCRAPED not in ctx.active_faults()
    lines = ["global:", f"  scrape_interval: {SCRAPE_INTERVAL}s", "  scrape_timeout: 2s",
             "scrape_configs:"]
    for listener, job in JOBS_SCRAPED.items():
        lines += [f"  - job_name: {job}", "    metrics_path: /metrics"]
        if credentials:
            lines += ["    authorization:", "      type: Bearer",
                      f"      credentials_file: {directory(ctx) / 'token'}"]
        lines += ["    static_configs:", f"      - targets: ['127.0.0.1:{ctx.port(listener)}']"]
    return "\n".join(lines) + "\n"


# The history ---------------------------------------------------------------------------------

INGEST = """
    SELECT fetched_at, source, count(*) FROM public.ingest_audit
    WHERE fetched_at >= %s AND fetched_at < %s GROUP BY fetched_at, source
"""
RUNS = """
    SELECT run_at + make_interval(secs => coalesce(duration_ms, 0) / 1000.0), job_id, status,
           split_part(detail, ':', 1), coalesce(duration_ms, 0) / 1000.0
    FROM public.job_runs WHERE run_at >= %s - interval '1 hour' AND run_at < %s
"""
SENT = """
    SELECT created_at, category, count(*) FROM public.notifications
    WHERE channel = 'telegram' AND category <> 'api_alert' AND created_at >= %s AND created_at < %s
    GROUP BY created_at, category
"""
Event = tuple[datetime, str, dict[str, str], float]  # (when, family sample name, labels, amount)


def openmetrics(ctx: Context) -> str:
    """What scraping the worker every 15 s would have recorded over the last two hours, from
    the database, as OpenMetrics text for promtool."""
    with ctx.superuser() as conn:
        row = conn.execute("SELECT timezone('utc', now())").fetchone()
        assert row is not None
        now: datetime = row[0]
        process_start = _worker_start(ctx, now)
        floor = min(now - HISTORY, process_start)  # the live worker counts from its start
        events: list[Event] = []
        for at, source, n in conn.execute(INGEST, (floor, now)):
            events.append((at, "trendspark_ingest_items_total", {"source": source}, float(n)))
        for done, job, status, head, seconds in conn.execute(RUNS, (floor, now)):
            events += _run_events(done, job, status, head, float(seconds))
        for at, category, n in conn.execute(SENT, (floor, now)):
            events.append((at, "trendspark_alert_delivery_total",
                           {"channel": "telegram", "category": category, "status": "sent"}, float(n)))
    target = {"job": JOBS_SCRAPED["worker"], "instance": f"127.0.0.1:{ctx.port('worker')}"}
    return _render(events, now - HISTORY, now - LOOKBACK_GAP, process_start, target)


def _worker_start(ctx: Context, now: datetime) -> datetime:
    """When the live worker's counters started: its last restart, unless the daemon itself is
    younger (a new daemon writes its start on its first request); now if none runs yet."""
    starts = [runtime.started(ctx.home).get("worker", 0.0)]
    daemon = procs.read_pid(ctx.home.serve_pid)
    if procs.alive(daemon):
        try:
            starts.append(float(psutil.Process(daemon).create_time()))
        except psutil.Error:
            pass
    newest = max(starts)
    return datetime.fromtimestamp(newest, UTC).replace(tzinfo=None) if newest else now


def _run_events(done: datetime, job: str, status: str, head: str, seconds: float) -> list[Event]:
    outcome = OUTCOME_ON_ERROR.get(job, "ok") if status == "error" else head
    labels = {"exported_job": job}
    events: list[Event] = [(done, "trendspark_job_runs_total", {**labels, "status": outcome}, 1.0),
                           (done, "trendspark_job_duration_seconds_count", labels, 1.0),
                           (done, "trendspark_job_duration_seconds_sum", labels, seconds)]
    for bound in (*runtime.JOB_BUCKETS, float("inf")):
        if seconds <= bound:
            le = "+Inf" if bound == float("inf") else str(bound)
            events.append((done, "trendspark_job_duration_seconds_bucket", {**labels, "le": le}, 1.0))
    if job == "ingest_rank":
        events.append((done, "trendspark_ingest_cycles_total", {}, 1.0))
    return events


def _render(events: Iterable[Event], start: datetime, end: datetime, process_start: datetime,
            target: dict[str, str]) -> str:
    """Each series sampled every HISTORY_STEP s in [start, end]: the sum of its events since the
    process that would have counted them started (the live worker since `process_start`, a
    previous one before it). Families in OpenMetrics order, # EOF at the end."""
    series: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[datetime, float]]] = \
        defaultdict(list)
    for at, name, labels, amount in events:
        series[(name, tuple(sorted(labels.items())))].append((at, amount))
    families: dict[str, list[str]] = defaultdict(list)
    times = [start + timedelta(seconds=step * HISTORY_STEP)
             for step in range(int((end - start).total_seconds() // HISTORY_STEP) + 1)]
    # The previous process's last sample holds all it counted: up to the live one's start.
    last_before = max((t for t in times if t < process_start), default=None)
    for (name, label_items), happened in sorted(series.items()):
        happened.sort()
        moments = [at for at, _ in happened]
        totals = list(accumulate(amount for _, amount in happened))
        text = ",".join(f'{k}="{v}"' for k, v in sorted({**target, **dict(label_items)}.items()))
        for t in times:
            # A process counts from its own start: the live worker's, or the span's for the one
            # before it (whose earlier counts the history leaves out).
            since = process_start if t >= process_start else start
            until = process_start if t == last_before else t
            value = _counted(moments, totals, until) - _counted(moments, totals, since)
            stamp = t.replace(tzinfo=UTC).timestamp()
            families[_family(name)].append(f"{name}{{{text}}} {value:g} {stamp:.3f}")
    lines = []
    for family, samples in families.items():
        kind = "histogram" if family == "trendspark_job_duration_seconds" else "counter"
        lines += [f"# TYPE {family} {kind}", *samples]
    return "\n".join([*lines, "# EOF"]) + "\n"


def _counted(moments: list[datetime], totals: list[float], until: datetime) -> float:
    """The sum of the events at or before `until`."""
    index = bisect_right(moments, until)
    return totals[index - 1] if index else 0.0


def _family(sample: str) -> str:
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


# Running it ----------------------------------------------------------------------------------

def url(ctx: Context) -> str:
    return ctx.url(NAME)


def targets(ctx: Context) -> list[dict[str, object]]:
    with httpx.Client(base_url=url(ctx), timeout=5, trust_env=False) as client:
        data = client.get("/api/v1/targets").json()
    found: list[dict[str, object]] = data["data"]["activeTargets"]
    return found


def value(ctx: Context, promql: str) -> float | None:
    """The first sample of an instant query's answer; None if it has none (or cannot be asked)."""
    try:
        with httpx.Client(base_url=url(ctx), timeout=5, trust_env=False) as client:
            found = client.get("/api/v1/query", params={"query": promql}).json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    return float(found[0]["value"][1]) if found else None


def wait_scraped(ctx: Context, timeout: float = READY_TIMEOUT) -> None:
    """Until Prometheus is ready and has scraped each app once since it started."""
    def scraped() -> bool:
        try:
            found = targets(ctx)
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return len(found) == len(JOBS_SCRAPED) and all(t.get("health") in ("up", "down")
                                                       for t in found)

    if not procs.wait_until(scraped, timeout, interval=0.2):
        raise SandboxError(f"prometheus at {url(ctx)} did not scrape both apps within {timeout:.0f}s")


def wait_target(ctx: Context, listener: str, health: str, timeout: float = READY_TIMEOUT) -> None:
    """Until Prometheus's last scrape of the app's target says `health` (no Prometheus: at once)."""
    if NAME not in ctx.system.processes:
        return
    job = JOBS_SCRAPED[listener]

    def reached() -> bool:
        try:
            return any(_job_of(t) == job and t.get("health") == health for t in targets(ctx))
        except (httpx.HTTPError, ValueError, KeyError):
            return False

    if not procs.wait_until(reached, timeout, interval=0.2):
        raise SandboxError(f"prometheus did not see {job} {health} within {timeout:.0f}s")


def _job_of(target: dict[str, object]) -> object:
    labels = target.get("labels")
    return labels.get("job") if isinstance(labels, dict) else None


def restart(ctx: Context, *, processes: bool = True) -> None:
    """What a heal (and a history-rewriting fault) does: the apps restart (counters from zero,
    as after the fix's deploy) and Prometheus is rebuilt from the database."""
    if processes:
        restart_apps(ctx)
    process = ctx.system.processes.get(NAME)
    if process is None:
        return
    external.stop(ctx.home, ctx.system.name, NAME)
    external.start(ctx, NAME, process, ctx.port(NAME))
    wait_scraped(ctx)


def stop(ctx: Context) -> None:
    external.stop(ctx.home, ctx.system.name, NAME)


def restart_apps(ctx: Context, timeout: float = 10.0) -> None:
    """Ask the daemon to restart the backend and the worker, and wait until it has."""
    generation = runtime.request_restart(ctx.home)

    def taken_up() -> bool:
        for listener in ("app", "worker"):
            try:
                httpx.get(f"{ctx.url(listener)}/live", timeout=2, trust_env=False)
            except httpx.HTTPError:
                pass
        return runtime.started(ctx.home).get("generation") == generation

    if not procs.wait_until(taken_up, timeout, interval=0.1):
        raise SandboxError(f"the daemon did not restart TrendSpark's apps within {timeout:.0f}s")


PROCESS = Process(command, url_variable="TRENDSPARK_PROMETHEUS_URL")
