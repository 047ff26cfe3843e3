"""TrendSpark's three scheduled jobs and what one run of each produces, for the history, the
catch-up and the live worker alike (so the three agree).

A run is computed here and written by history.py: `ingest_rank` fetches items from each enabled
source (one `ingest_audit` row and one post per item), ranks them and sometimes alerts on
Telegram; `gen_replies` drafts replies; `daily_ideas` sends the day's ideas. Durations are
simulated, drawn from what the real jobs take, not waited for.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from croniter import croniter  # type: ignore[import-untyped]

IDEAS_HOUR = 9  # IDEAS_TIME_HOUR: daily_ideas fires at 09:00 UTC
SOURCES = ("x", "reddit")
PLATFORM = {"x": "x", "reddit": "reddit"}
ITEMS_PER_CYCLE = {"x": (4, 10), "reddit": (2, 6)}
# The outcome label of trendspark_job_runs_total on success, and the value a failed run leaves
# it at (RUNBOOK-ITEMS 4.3: the label keeps its last value; there is no "error").
OUTCOMES = {"ingest_rank": ("alerts_sent", "no_alerts"), "gen_replies": ("generated", "noop"),
            "daily_ideas": ("sent", "no_ideas")}
OUTCOME_ON_ERROR = {"ingest_rank": "ok", "gen_replies": "noop", "daily_ideas": "no_ideas"}
# Seconds a healthy run takes; Reddit timing out makes ingest_rank take about 156 s (4.3).
DURATIONS = {"ingest_rank": (3.0, 18.0), "gen_replies": (1.0, 8.0), "daily_ideas": (6.0, 14.0)}
REDDIT_TIMEOUT_RUN = (150.0, 165.0)
ALERT_CHANCE = 0.3
JOB_ERROR = "RetryError[<Future state=finished raised APIConnectionError>]"
RATE_LIMIT_ERROR = "HTTPStatusError: 429 Too Many Requests from api.x.com"


@dataclass(frozen=True)
class Job:
    """A default row of scheduler_configs, as the worker seeds them into an empty table."""

    job_id: str
    name: str
    cron: str
    parameters: dict[str, object]
    lock_timeout_seconds: int

    def fires(self, since: datetime, until: datetime) -> Iterator[datetime]:
        """The cron's fire times in (since, until], naive UTC."""
        schedule = croniter(self.cron, since)
        while (at := schedule.get_next(datetime)) <= until:
            yield at

    def previous(self, at: datetime) -> datetime:
        fired: datetime = croniter(self.cron, at).get_prev(datetime)
        return fired

    def next(self, at: datetime) -> datetime:
        due: datetime = croniter(self.cron, at).get_next(datetime)
        return due


JOBS = (
    Job("ingest_rank", "default", "*/30 * * * *", {"max_x": 50}, 900),
    Job("gen_replies", "default", "*/15 * * * *", {}, 600),
    Job("daily_ideas", "default", f"0 {IDEAS_HOUR} * * *", {}, 900),
)
BY_ID = {job.job_id: job for job in JOBS}


@dataclass(frozen=True)
class Conditions:
    """How the world treats the worker's runs (the faults set these; healthy by default)."""

    sources: tuple[str, ...] = SOURCES  # the sources that answer
    items: bool = True  # False: every source answers with nothing (a flatline)
    slow_source: bool = False  # a dead source times out: each ingest_rank run takes ~156 s
    failing: frozenset[str] = frozenset()  # jobs whose runs end in an error
    delivery: str = "sent"  # what Telegram does with a message: sent, error or skipped


@dataclass(frozen=True)
class Item:
    source: str
    post_id: str
    author: str
    created_at: datetime
    summary: str


@dataclass(frozen=True)
class Message:
    category: str
    text: str


@dataclass
class Run:
    """One run of a job: its job_runs row, and what it ingested and sent."""

    job_id: str
    run_at: datetime
    duration_s: float
    status: str  # success | error
    outcome: str  # the trendspark_job_runs_total status label
    detail: str
    cycle_id: str = ""
    items: list[Item] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def finished_at(self) -> datetime:
        return self.run_at + timedelta(seconds=self.duration_s)


def run(rng: random.Random, job_id: str, at: datetime, conditions: Conditions) -> Run:
    """What one run of `job_id` starting at `at` produces under `conditions`."""
    low, high = DURATIONS[job_id]
    duration = rng.uniform(low, high)
    if job_id == "ingest_rank":
        return _ingest_rank(rng, at, duration, conditions)
    success, idle = OUTCOMES[job_id]
    if job_id in conditions.failing:
        return Run(job_id, at, duration, "error", OUTCOME_ON_ERROR[job_id], JOB_ERROR)
    if job_id == "daily_ideas":
        message = Message("daily_ideas", "Today's ideas: 3 threads and 2 replies drafted")
        return Run(job_id, at, duration, "success", success, f"{success}: 5 ideas", messages=[message])
    drafted = rng.randint(0, 4)
    outcome = success if drafted else idle
    return Run(job_id, at, duration, "success", outcome, f"{outcome}: {drafted} replies drafted")


def _ingest_rank(rng: random.Random, at: datetime, duration: float, conditions: Conditions) -> Run:
    cycle = uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]
    items = []
    if conditions.items:
        for source in conditions.sources:
            low, high = ITEMS_PER_CYCLE[source]
            items += [_item(rng, source, at, n) for n in range(rng.randint(low, high))]
    if conditions.slow_source:
        duration = rng.uniform(*REDDIT_TIMEOUT_RUN)
    counts = ", ".join(f"{s} {sum(1 for i in items if i.source == s)}" for s in SOURCES)
    if "ingest_rank" in conditions.failing:
        return Run("ingest_rank", at, duration, "error", OUTCOME_ON_ERROR["ingest_rank"],
                   f"{JOB_ERROR} after ranking {len(items)} items", cycle, items)
    alerts = [Message("trend_alert", f"Trending on {i.source}: {i.summary}")
              for i in items[:2] if rng.random() < ALERT_CHANCE]
    outcome = "alerts_sent" if alerts else "no_alerts"
    return Run("ingest_rank", at, duration, "success", outcome,
               f"{outcome}: {len(items)} items ({counts}), {len(alerts)} alerts", cycle, items, alerts)


def _item(rng: random.Random, source: str, at: datetime, n: int) -> Item:
    stamp = int(at.timestamp() * 1000)
    post_id = f"{stamp}{n:03d}{rng.randrange(1000):03d}"
    if source == "reddit":
        post_id = "t3_" + format(int(post_id), "x")
    topic = rng.choice(("ai agents", "open source llms", "indie hacking", "devtools", "growth loops"))
    return Item(source, post_id, f"{source}_user_{rng.randrange(5000)}",
                at - timedelta(minutes=rng.uniform(2, 90)), f"{topic}: a post worth a reply")
