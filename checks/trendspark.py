"""TrendSpark facts the checks of runbook 004 share: its endpoints besides the backend (worker,
Prometheus, Grafana, Telegram's Bot API), its tokens, its crons, and the counter questions that
Prometheus answers over a window and two scrapes of /metrics answer only sometimes.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from fixtures.errors import MissingSetting, NotEvaluated
from fixtures.evidence import Evidence
from fixtures.http import Api, Exchange, make_client
from fixtures.prometheus import Labels, Prometheus, Scrape, rise, scrape, scrape_unhealthy
from fixtures.run import budget_of, ledger_of
from fixtures.settings import SystemSettings
from fixtures.verdicts import CheckFailed

PROMETHEUS_URL = "TRENDSPARK_PROMETHEUS_URL"
EXPECTED_JOBS = ("ingest_rank", "gen_replies", "daily_ideas")
# A run counts in the metrics when it ends: a job that fired in the last minutes may still run.
STILL_RUNNING = timedelta(minutes=5)


@contextlib.contextmanager
def endpoint(request: pytest.FixtureRequest, evidence: Evidence, url: str) -> Iterator[Api]:
    """An Api on another of the system's URLs, with the suite's HTTP discipline; unsafe methods
    only for a check marked side_effect."""
    budget = budget_of(request.config)
    client = make_client(url, budget)
    allowed = request.node.get_closest_marker("side_effect") is not None
    try:
        yield Api(client, evidence, budget, ledger_of(request.config).side_effects if allowed else None)
    finally:
        client.close()


def bearer(settings: SystemSettings, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.require(name).value}"}


def json_list(exchange: Exchange) -> list[Any]:
    """The body as a JSON list, or a FAIL that says what came instead."""
    __tracebackhide__ = True
    try:
        value = json.loads(exchange.body)
    except ValueError:
        raise CheckFailed(f"{exchange.method} {exchange.path}: expected a JSON list, got "
                          f"{exchange.text()[:200]!r}") from None
    if not isinstance(value, list):
        raise CheckFailed(f"{exchange.method} {exchange.path}: expected a JSON list, got "
                          f"{type(value).__name__}")
    return value


def sources(settings: SystemSettings) -> list[str]:
    value, _ = settings.text("TRENDSPARK_INGEST_SOURCES", "x,reddit")
    return [s.strip() for s in value.split(",") if s.strip()]


def scrape_jobs(settings: SystemSettings) -> dict[str, str]:
    """Prometheus's job name of each app (the repository's prometheus.yml names them so)."""
    return {"backend": settings.text("TRENDSPARK_BACKEND_SCRAPE_JOB", "trendspark-backend")[0],
            "worker": settings.text("TRENDSPARK_WORKER_SCRAPE_JOB", "trendspark-worker")[0]}


def scraped(prometheus: Prometheus, *jobs: str) -> None:
    """UNKNOWN unless Prometheus scrapes these jobs now: otherwise its data of them is stale."""
    bad = scrape_unhealthy(prometheus.targets(), jobs)
    if bad:
        raise NotEvaluated("Prometheus does not scrape " + "; ".join(t.describe() for t in bad)
                           + ": its data of them is stale (TS-21b)")


def by(totals: dict[Labels, float], label: str) -> dict[str, float]:
    return {dict(key).get(label, ""): value for key, value in totals.items()}


# Cron ----------------------------------------------------------------------------------------

def interval(cron: str, at: datetime) -> timedelta:
    """The cron's interval around `at` (next fire minus the previous one)."""
    from croniter import croniter  # type: ignore[import-untyped]  # only the scheduler checks

    previous: datetime = croniter(cron, at).get_prev(datetime)
    following: datetime = croniter(cron, previous).get_next(datetime)
    return following - previous


def due_within(cron: str, now: datetime, window: timedelta) -> datetime | None:
    """The newest fire time in (now - window, now - STILL_RUNNING], if any."""
    from croniter import croniter  # type: ignore[import-untyped]  # only the scheduler checks

    fired: datetime = croniter(cron, now - STILL_RUNNING).get_prev(datetime)
    return fired if fired > now - window else None


# Prometheus durations ----------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def seconds(duration: str) -> float:
    """A Prometheus duration ("15d", "1d12h") in seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration.strip():
        raise NotEvaluated(f"cannot read {duration!r} as a Prometheus duration")
    return sum(int(n) * _UNIT[u] for n, u in parts)


# The /metrics fallback -------------------------------------------------------------------------

@dataclass(frozen=True)
class TwoScrapes:
    """Two reads of an app's /metrics `gap` seconds apart: what they can settle of a window."""

    first: Scrape
    second: Scrape

    @property
    def gap(self) -> float:
        return self.second.at - self.first.at

    def started(self) -> float | None:
        """When the app's process started, by its own gauge."""
        found = self.second.total("process_start_time_seconds")
        return next(iter(found.values()), None)


def two_scrapes(api: Api, evidence: Evidence, settings: SystemSettings, gap: float) -> TwoScrapes:
    """The fallback without Prometheus: needs the app's token; says what it is."""
    token = settings.require("TRENDSPARK_API_TOKEN").value
    evidence.note(f"{PROMETHEUS_URL} is not set: reading the app's own /metrics twice, {gap:g} s "
                  "apart, parsed with prometheus-client's parser")
    first = scrape(api, evidence, token)
    time.sleep(gap)
    return TwoScrapes(first, scrape(api, evidence, token))


def rose_since_start(scrapes: TwoScrapes, name: str, label: str, window: timedelta,
                     keep: dict[str, str] | None = None) -> dict[str, float]:
    """What two scrapes prove rose within the window: counters of a process that started within
    it (all they hold is recent), and whatever moved between the scrapes."""
    moved = by(rise(scrapes.first, scrapes.second, name, (label,), keep), label)
    started = scrapes.started()
    if started is not None and time.time() - started <= window.total_seconds():
        for key, value in by(_sum_by(scrapes.second, name, label, keep), label).items():
            moved[key] = max(moved.get(key, 0.0), value)
    return {k: v for k, v in moved.items() if v > 0}


def _sum_by(s: Scrape, name: str, label: str, keep: dict[str, str] | None) -> dict[Labels, float]:
    totals: dict[Labels, float] = {}
    for labels, value in s.total(name, keep).items():
        key = tuple((k, v) for k, v in labels if k == label)
        totals[key] = totals.get(key, 0.0) + value
    return totals


def unsettled(what: str, scrapes: TwoScrapes, window_minutes: float) -> NotEvaluated:
    return NotEvaluated(
        f"{what}: not settled by two scrapes {scrapes.gap:.0f} s apart; the {window_minutes:g}-minute "
        f"window needs Prometheus ({PROMETHEUS_URL} is not set)")


def require_prometheus(settings: SystemSettings) -> str:
    """The Prometheus URL, or UNKNOWN naming the setting (no request sent)."""
    setting = settings.get(PROMETHEUS_URL)
    if setting is None:
        raise MissingSetting(PROMETHEUS_URL, target=settings.target.name,
                             env_file=str(settings.target.env_file))
    return setting.value
