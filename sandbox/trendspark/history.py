"""TrendSpark's rows: the reference data the app seeds, the jobs' runs written to the database,
the 40 days of history a fresh sandbox starts with, and the catch-up after a restart.

Every timestamp is naive UTC, as the models write them (datetime.utcnow()), taken from the
database's clock: `timezone('utc', now())`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from psycopg.types.json import Json

from sandbox import db
from sandbox.trendspark.jobs import JOBS, PLATFORM, Conditions, Run, run

HISTORY = timedelta(days=40)  # inside the 45-day retention window the runbook sets
NOTIFICATION_HISTORY = timedelta(days=80)  # inside its 90 days
# The archive workflow the runbook describes (not automated upstream), done by the sandbox: rows
# are removed a day before their window ends, so a healthy sandbox never holds older ones.
KEEP_POSTS = timedelta(days=44)
KEEP_NOTIFICATIONS = timedelta(days=89)
STREAM_RULES = ("(ai agents OR llm) lang:en -is:retweet", "#buildinpublic -is:retweet",
                "from:openai OR from:anthropicai")
UTC_NOW = "SELECT timezone('utc', now())"

AUDIT_COLUMNS = "cycle_id, source, platform, post_id, author, fetched_at, item_created_at, summary"
POST_COLUMNS = ("platform, post_id, author, url, text, created_at, collected_at, likes, reposts, "
                "replies, views, virality_score, velocity_score, trending, trending_since, alerted")
INSERT_RUN = """
    INSERT INTO public.job_runs (job_id, config_id, status, run_at, duration_ms, detail,
                                 correlation_id)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
"""
INSERT_NOTIFICATION = """
    INSERT INTO public.notifications (created_at, channel, category, message, payload)
    VALUES (%s, 'telegram', %s, %s, %s)
"""
ENABLED_CONFIGS = "SELECT id, job_id FROM public.scheduler_configs WHERE enabled ORDER BY id"
LAST_RUN = "SELECT max(run_at) FROM public.job_runs WHERE job_id = %s"


def token_hash(token: str) -> str:
    """How the app stores API tokens: their SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def utc_now(conn: db.Connection) -> datetime:
    row = conn.execute(UTC_NOW).fetchone()
    assert row is not None
    now: datetime = row[0]
    return now


def seed_reference(conn: db.Connection, tokens: Mapping[str, tuple[str, str]]) -> None:
    """What the app seeds into empty tables: users from API_TOKENS (name -> (token, role)), the
    default growth profile, stream rules and the three default scheduler configs."""
    now = utc_now(conn)
    for role in ("admin", "viewer", "service"):
        conn.execute("INSERT INTO public.roles (name) VALUES (%s)", (role,))
    for name, (token, role) in tokens.items():
        user = conn.execute(
            "INSERT INTO public.users (username, token_hash, is_active, created_at)"
            " VALUES (%s, %s, true, %s) RETURNING id", (name, token_hash(token), now)).fetchone()
        assert user is not None
        conn.execute("INSERT INTO public.user_roles (user_id, role_id)"
                     " SELECT %s, id FROM public.roles WHERE name = %s", (user[0], role))
    profile = conn.execute(
        "INSERT INTO public.growth_config (name, is_default, is_active, keywords, niche, watchlist,"
        " created_at, updated_at) VALUES ('default', true, true, %s, %s, %s, %s, %s) RETURNING id",
        (Json(["ai agents", "llm", "devtools"]), "AI tooling for builders",
         Json(["openai", "anthropicai", "huggingface"]), now - timedelta(days=120),
         now - timedelta(days=3))).fetchone()
    assert profile is not None
    conn.execute("INSERT INTO public.brand_profile (growth_profile_id, voice, topics, updated_at)"
                 " VALUES (%s, 'helpful, concise', %s, %s)", (profile[0], Json(["ai"]), now))
    for source in PLATFORM:
        conn.execute("INSERT INTO public.ingestion_state (source, cursor, updated_at)"
                     " VALUES (%s, NULL, %s)", (source, now))
    for rule in STREAM_RULES:
        conn.execute("INSERT INTO public.stream_rules (value, tag, created_at) VALUES (%s, %s, %s)",
                     (rule, "sandbox", now - timedelta(days=30)))
    for job in JOBS:
        conn.execute(
            "INSERT INTO public.scheduler_configs (job_id, growth_profile_id, name, cron, enabled,"
            " priority, concurrency_limit, lock_timeout_seconds, parameters, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, true, 5, 1, %s, %s, %s, %s)",
            (job.job_id, profile[0], job.name, job.cron, job.lock_timeout_seconds,
             Json(job.parameters), now - timedelta(days=60), now - timedelta(days=60)))


def enabled_configs(conn: db.Connection) -> dict[str, int]:
    """job_id -> config id of the enabled scheduler configs."""
    return {job_id: config_id for config_id, job_id in conn.execute(ENABLED_CONFIGS)}


def write(conn: db.Connection, runs: Sequence[Run], configs: Mapping[str, int], *,
          delivered: bool) -> None:
    """The rows the runs leave: job_runs, ingest_audit and posts, and with `delivered` a
    notification per message (the app stores only the sends Telegram accepted)."""
    with conn.cursor() as cur:
        for r in runs:
            cur.execute(INSERT_RUN, (r.job_id, configs.get(r.job_id), r.status, r.run_at,
                                     round(r.duration_s * 1000, 1), r.detail, r.cycle_id or None))
            if delivered:
                for m in r.messages:
                    cur.execute(INSERT_NOTIFICATION, (r.finished_at, m.category, m.text,
                                                      Json({"job": r.job_id})))
        items = [(r, i) for r in runs for i in r.items]
        if not items:
            return
        with cur.copy(f"COPY public.ingest_audit ({AUDIT_COLUMNS}) FROM STDIN") as copy:
            for r, i in items:
                copy.write_row((r.cycle_id, i.source, PLATFORM[i.source], i.post_id, i.author,
                                _fetched(r), i.created_at, i.summary))
        with cur.copy(f"COPY public.posts ({POST_COLUMNS}) FROM STDIN") as copy:
            for r, i in items:
                trending = i.post_id[-1] in "05"
                copy.write_row((PLATFORM[i.source], i.post_id, i.author, None, i.summary,
                                i.created_at, _fetched(r), 40, 6, 3, 900, 0.42, 0.18, trending,
                                _fetched(r) if trending else None, trending))


def fill(conn: db.Connection, since: Mapping[str, datetime], until: datetime,
         conditions: Conditions, rng: random.Random) -> int:
    """Every enabled job's runs from its `since` (exclusive) to `until`, written; their count."""
    configs = enabled_configs(conn)
    runs = [run(rng, job.job_id, at, conditions) for job in JOBS if job.job_id in configs
            for at in job.fires(since[job.job_id], until)]
    runs.sort(key=lambda r: r.run_at)
    write(conn, runs, configs, delivered=conditions.delivery == "sent")
    return len(runs)


def build(conn: db.Connection, conditions: Conditions, rng: random.Random) -> int:
    """40 days of runs, and 80 days of daily ideas messages before them."""
    now = utc_now(conn)
    added = fill(conn, dict.fromkeys((j.job_id for j in JOBS), now - HISTORY), now, conditions, rng)
    older = [now - HISTORY - timedelta(days=day) for day in range(1, 41)]
    conn.cursor().executemany(INSERT_NOTIFICATION, [
        (at.replace(hour=9, minute=0, second=12), "daily_ideas", "Today's ideas (archived)",
         Json({"job": "daily_ideas"})) for at in older if now - at < NOTIFICATION_HISTORY])
    return added


def catch_up(conn: db.Connection, conditions: Conditions, rng: random.Random,
             floor: timedelta = HISTORY) -> int:
    """The runs each enabled job missed since its last one (while the sandbox was down, or
    while a fault held the worker), no further back than `floor`."""
    now = utc_now(conn)
    since = {}
    for job in JOBS:
        row = conn.execute(LAST_RUN, (job.job_id,)).fetchone()
        last = row[0] if row and row[0] else None
        since[job.job_id] = max(last, now - floor) if last else now - floor
    return fill(conn, since, now, conditions, rng)


def forget_since(conn: db.Connection, since: datetime, *, sources: Iterable[str] | None = None,
                 runs: bool = False) -> None:
    """Remove what the worker produced since `since`: the items of `sources` (all if None) and
    their posts, and with `runs` its job runs too. A fault's way to show an outage that has
    lasted a while."""
    chosen = list(sources) if sources is not None else list(PLATFORM)
    platforms = [PLATFORM[s] for s in chosen]
    conn.execute("DELETE FROM public.posts WHERE collected_at >= %s AND platform = ANY(%s)",
                 (since, platforms))
    conn.execute("DELETE FROM public.ingest_audit WHERE fetched_at >= %s AND source = ANY(%s)",
                 (since, chosen))
    if runs:
        conn.execute("DELETE FROM public.job_runs WHERE run_at >= %s", (since,))


def archive(conn: db.Connection) -> int:
    """The runbook's archive workflow, done for it: rows past their retention windows go."""
    now = utc_now(conn)
    removed = 0
    for query, keep in (
        ("DELETE FROM public.ingest_audit WHERE fetched_at < %s", KEEP_POSTS),
        ("DELETE FROM public.posts WHERE collected_at < %s", KEEP_POSTS),
        ("DELETE FROM public.notifications WHERE created_at < %s", KEEP_NOTIFICATIONS),
    ):
        removed += conn.execute(query, (now - keep,)).rowcount
    return removed


def _fetched(r: Run) -> datetime:
    """Items are fetched during the run, before ranking."""
    return r.run_at + timedelta(seconds=r.duration_s * 0.3)
