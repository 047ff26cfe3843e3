"""TrendSpark at production volume: its schedulers' and its stream's output over the days its
retention keeps.

Figures at scale 1.0, and why. Runbook 004 keeps posts and the ingest audit 45 days and
notifications 90; job runs and ideas are never archived. The sandbox's worker fetches a handful of
items per cycle; production's ingest_rank config asks X for `max_x` = 50 and Reddit gives about
25, and with X_STREAM_ENABLED the filtered stream stores every matching post (one every two
seconds, 43,200 a day, for a keyword set like the sandbox's). So, added to the sandbox's own rows:

    posts            1.97 M  the stream's posts over 42.5 days, plus the cycles' items
    ingest_audit      131 k  the 64 items per past ingest_rank cycle the sandbox's runs did not
                             fetch (one audit row and one post each)
    notifications    17.5 k  about 200 Telegram sends a day (realtime trend alerts) over 87.5 days
    ideas            26.7 k  about 300 a day: reply drafts and the daily ideas, over 89 days
    job_runs          7.2 k  the three crons' runs from 90 days ago up to the sandbox's own
                             first run (no fire is run twice), all successful

About 2.2 M rows and 0.7 GB with indexes, loaded in about 50 s on two cores. Dates keep inside
the retention windows the sandbox's hourly archive enforces (posts and the audit within 44 days,
notifications 89), so the retention items stay green. `scale` multiplies the stream, the items per
cycle, the sends and the ideas; the job runs follow the crons at any scale. Reply drafts point at
no post: the archive deletes posts, and a draft pointing at one would stop it (ideas.post_id has
no ON DELETE).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench.volume import HISTORY_DAYS, LIVE_HOURS
from sandbox.trendspark.history import KEEP_NOTIFICATIONS, KEEP_POSTS
from sandbox.trendspark.jobs import DURATIONS, JOBS, OUTCOMES

STREAM_EVERY = 2.0  # seconds between two posts the filtered stream stores
EXTRA_ITEMS = {"x": 44, "reddit": 20}  # per cycle, besides the sandbox's own
SENDS_EVERY = 86400 / 200
IDEAS_EVERY = 86400 / 300
# Rows stop this far inside the retention windows, so the hourly archive never meets them early.
MARGIN = timedelta(hours=12)
TOPICS = ["ai agents", "open source llms", "indie hacking", "devtools", "growth loops"]


def draw(k: int) -> str:
    """The k-th value in [0, 1) drawn from the row's hash `h` (eight per hash)."""
    return f"(('x' || substr(h, {4 * k + 1}, 4))::bit(16)::int / 65536.0::float8)"


# Post ids look like X's (19 digits, a millisecond stamp first); the 14th digit is 1 for the
# stream and 2 for cycles, where the sandbox's own ids have 0, so none collides with theirs.
STREAM_POSTS = f"""
    INSERT INTO public.posts (platform, post_id, author, text, created_at, collected_at, likes,
                              reposts, replies, views, virality_score, velocity_score, trending,
                              trending_since, alerted)
    SELECT 'x', (extract(epoch FROM at) * 1000)::bigint || '1' || lpad((i %% 100000)::text, 5, '0'),
           'x_user_' || floor(50000 * {draw(0)}),
           (%(topics)s::text[])[1 + floor(5 * {draw(1)})::int] || ': a post from the stream',
           at - make_interval(secs => 30 * {draw(2)}), at, floor(400 * {draw(3)} ^ 3)::int,
           floor(60 * {draw(4)} ^ 3)::int, floor(30 * {draw(5)} ^ 3)::int,
           floor(20000 * {draw(3)} ^ 2)::int, round((10 * {draw(3)})::numeric, 3)::float8,
           round((5 * {draw(4)})::numeric, 3)::float8, {draw(6)} < 0.05,
           CASE WHEN {draw(6)} < 0.05 THEN at END, {draw(6)} < 0.05
    FROM generate_series(0, floor(%(span)s / %(every)s)::int - 1) AS i
    -- OFFSET 0 keeps the subquery whole: the hash is computed once, not once per value drawn
    CROSS JOIN LATERAL (SELECT md5(%(seed)s || ':post:' || i) AS h OFFSET 0) x
    CROSS JOIN LATERAL (SELECT %(start)s::timestamp
                               + make_interval(secs => (i + 0.1 + 0.8 * {draw(7)}) * %(every)s) AS at) t
    ORDER BY at
"""
# The items of each past ingest_rank cycle beyond those the sandbox's run fetched: an audit row
# and a post each, fetched during the run as the worker does (a third into it).
CYCLE_ITEMS = f"""
    CREATE TEMP TABLE item ON COMMIT DROP AS
    SELECT r.correlation_id AS cycle_id, s.source,
           CASE s.source WHEN 'x' THEN post_number::text
                ELSE 't3_' || to_hex(post_number) END AS post_id,
           s.source || '_user_' || floor(5000 * {draw(0)}) AS author,
           r.run_at + make_interval(secs => r.duration_ms / 1000 * 0.3) AS fetched_at,
           r.run_at - make_interval(secs => 60 * (2 + 88 * {draw(1)})) AS created_at,
           (%(topics)s::text[])[1 + floor(5 * {draw(2)})::int] || ': a post worth a reply' AS summary,
           {draw(3)} < 0.05 AS trending
    FROM public.job_runs r
    CROSS JOIN unnest(%(sources)s::text[], %(counts)s::int[]) AS s(source, items)
    CROSS JOIN LATERAL generate_series(1, s.items) AS n
    CROSS JOIN LATERAL (SELECT md5(%(seed)s || ':' || r.id || ':' || s.source || ':' || n) AS h,
                               ((extract(epoch FROM r.run_at) * 1000)::bigint || '2'
                                || lpad(n::text, 5, '0'))::bigint AS post_number OFFSET 0) x
    WHERE r.job_id = 'ingest_rank' AND r.status = 'success' AND r.correlation_id IS NOT NULL
      AND r.run_at >= %(start)s AND r.run_at < %(until)s
    ORDER BY fetched_at
"""
CYCLE_AUDIT = """
    INSERT INTO public.ingest_audit (cycle_id, source, platform, post_id, author, fetched_at,
                                     item_created_at, summary)
    SELECT cycle_id, source, source, post_id, author, fetched_at, created_at, summary
    FROM item ORDER BY fetched_at
"""
CYCLE_POSTS = """
    INSERT INTO public.posts (platform, post_id, author, text, created_at, collected_at, likes,
                              reposts, replies, views, virality_score, velocity_score, trending,
                              trending_since, alerted)
    SELECT source, post_id, author, summary, created_at, fetched_at, 40, 6, 3, 900, 0.42, 0.18,
           trending, CASE WHEN trending THEN fetched_at END, trending
    FROM item ORDER BY fetched_at
"""
NOTIFICATIONS = f"""
    INSERT INTO public.notifications (created_at, channel, category, message, payload)
    SELECT at, 'telegram', 'trend_alert',
           'Trending on x: ' || (%(topics)s::text[])[1 + floor(5 * {draw(0)})::int],
           '{{"job": "stream"}}'::json
    FROM generate_series(0, floor(%(span)s / %(every)s)::int - 1) AS i
    CROSS JOIN LATERAL (SELECT md5(%(seed)s || ':notification:' || i) AS h OFFSET 0) x
    CROSS JOIN LATERAL (SELECT %(start)s::timestamp
                               + make_interval(secs => (i + {draw(1)}) * %(every)s) AS at) t
    ORDER BY at
"""
IDEAS = f"""
    INSERT INTO public.ideas (post_id, kind, content, created_at)
    SELECT NULL, CASE WHEN {draw(0)} < 0.04 THEN 'daily' ELSE 'reply' END,
           'Draft on ' || (%(topics)s::text[])[1 + floor(5 * {draw(1)})::int], at
    FROM generate_series(0, floor(%(span)s / %(every)s)::int - 1) AS i
    CROSS JOIN LATERAL (SELECT md5(%(seed)s || ':idea:' || i) AS h OFFSET 0) x
    CROSS JOIN LATERAL (SELECT %(start)s::timestamp
                               + make_interval(secs => (i + {draw(2)}) * %(every)s) AS at) t
    ORDER BY at
"""
# One run per cron fire, successful, with a duration drawn within the job's usual range.
JOB_RUNS = f"""
    INSERT INTO public.job_runs (job_id, config_id, status, run_at, duration_ms, detail,
                                 correlation_id)
    SELECT f.job_id, c.id, 'success', f.at, round((f.low + (f.high - f.low) * {draw(0)}) * 1000),
           f.outcome, CASE WHEN f.job_id = 'ingest_rank' THEN left(h, 16) END
    FROM unnest(%(jobs)s::text[], %(fires)s::timestamp[], %(low)s::float8[], %(high)s::float8[],
                %(outcomes)s::text[]) AS f(job_id, at, low, high, outcome)
    JOIN public.scheduler_configs c ON c.job_id = f.job_id AND c.name = 'default'
    CROSS JOIN LATERAL (SELECT md5(%(seed)s || ':run:' || f.job_id || ':' || f.at) AS h OFFSET 0) x
    ORDER BY f.at
"""


def load(conn: psycopg.Connection[Any], scale: float, seed: int) -> dict[str, int]:
    """TrendSpark's retained history at `scale` times production's pace; rows added per table."""
    now = conn.execute("SELECT timezone('utc', now())").fetchone()[0]  # type: ignore[index]
    until = now - timedelta(hours=LIVE_HOURS)
    first_run = conn.execute("SELECT min(run_at) FROM public.job_runs").fetchone()[0]  # type: ignore[index]
    common = {"seed": str(seed), "topics": TOPICS, "until": until}
    added = {"job_runs": _job_runs(conn, now - timedelta(days=HISTORY_DAYS), first_run or until,
                                   common)}
    posts_since = max(now - KEEP_POSTS + MARGIN, now - timedelta(days=HISTORY_DAYS))
    with conn.transaction():
        conn.execute("SET LOCAL work_mem = '256MB'")  # the sorts into arrival order in memory
        conn.execute(CYCLE_ITEMS, {**common, "start": posts_since, "sources": list(EXTRA_ITEMS),
                                   "counts": [round(n * scale) for n in EXTRA_ITEMS.values()]})
        added["ingest_audit"] = conn.execute(CYCLE_AUDIT).rowcount
        added["posts"] = conn.execute(CYCLE_POSTS).rowcount
    added["posts"] += _spread(conn, STREAM_POSTS, posts_since, until, STREAM_EVERY / scale, common)
    notes_since = max(now - KEEP_NOTIFICATIONS + MARGIN, now - timedelta(days=HISTORY_DAYS))
    added["notifications"] = _spread(conn, NOTIFICATIONS, notes_since, until, SENDS_EVERY / scale,
                                     common)
    added["ideas"] = _spread(conn, IDEAS, now - timedelta(days=HISTORY_DAYS), until,
                             IDEAS_EVERY / scale, common)
    for table in added:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier("public", table)))
    return added


def _spread(conn: psycopg.Connection[Any], query: str, since: Any, until: Any, every: float,
            common: dict[str, Any]) -> int:
    """Rows every `every` seconds (jittered) from `since` to `until`."""
    span = (until - since).total_seconds()
    with conn.transaction():
        conn.execute("SET LOCAL work_mem = '256MB'")
        return conn.execute(query, {**common, "start": since, "span": span, "every": every}).rowcount


def _job_runs(conn: psycopg.Connection[Any], since: Any, until: Any, common: dict[str, Any]) -> int:
    """Every cron fire of the three jobs in [since, until), run once."""
    fires = [(job, at) for job in JOBS for at in job.fires(since, until) if at < until]
    return conn.execute(JOB_RUNS, {
        **common, "jobs": [j.job_id for j, _ in fires], "fires": [at for _, at in fires],
        "low": [DURATIONS[j.job_id][0] for j, _ in fires],
        "high": [DURATIONS[j.job_id][1] for j, _ in fires],
        "outcomes": [OUTCOMES[j.job_id][0] for j, _ in fires]}).rowcount
