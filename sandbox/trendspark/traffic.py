"""The daemon's TrendSpark activity: the worker's scheduler running the three jobs on their crons
(and the runs POST /scheduler/run queued), the frontend calling the backend, and upkeep.

A run writes what jobs.py computes (job_runs, ingest_audit, posts), moves the worker's counters
and histogram as trend_spark_ai does, and sends its messages through Telegram (the stub): a
notification row only for what Telegram accepted. Three errors in a row of one job send a
`job_alert`. Upkeep, hourly: the runbook's archive (rows past their retention windows) and its
weekly VACUUM ANALYZE, done daily.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime

import httpx

from sandbox import db
from sandbox.kit import SERVICE_PASSWORD
from sandbox.system import Context
from sandbox.trendspark import history, incidents, jobs, telegram
from sandbox.trendspark.incidents import RETENTION_OVERDUE, VACUUM_OVERDUE, WORKER_DOWN
from sandbox.trendspark.runtime import Worker, runtime_of
from sandbox.trendspark.settings import SERVICE_ROLE, VIEWER_TOKEN

FRONTEND_EVERY = 2.0  # seconds between the frontend's calls to the backend
FRONTEND_RETRY = 0.5  # while its calls fail, the frontend retries sooner
UPKEEP_EVERY = 3600.0
LONGEST_NAP = 1.0
MAINTAINED = ("posts", "ingest_audit", "notifications", "job_runs")
STALE_VACUUM = """
    SELECT relname FROM pg_stat_user_tables
    WHERE schemaname = 'public' AND relname = ANY(%s)
      AND coalesce(greatest(last_vacuum, last_autovacuum), '-infinity') < now() - interval '1 day'
"""
LAST_RUNS = "SELECT status FROM public.job_runs WHERE job_id = %s ORDER BY run_at DESC LIMIT 3"
CONFIG = "SELECT job_id FROM public.scheduler_configs WHERE id = %s"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Traffic:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rng = random.Random()
        self._conn: db.Connection | None = None
        self._checked = utc_now()  # cron fires after this are due
        self._frontend_due = time.monotonic()
        self._upkeep_due = time.monotonic()
        # httpx logs every request at INFO: the frontend's calls would fill serve.log.
        logging.getLogger("httpx").setLevel(logging.WARNING)

    def step(self, active_faults: frozenset[str]) -> float:
        try:
            self._scheduler(active_faults)
            now = time.monotonic()
            if now >= self._frontend_due:
                self._frontend()
                failing = incidents.API_5XX_SPIKE in active_faults
                self._frontend_due = now + (FRONTEND_RETRY if failing else FRONTEND_EVERY)
            if now >= self._upkeep_due:
                self._upkeep(active_faults)
                self._upkeep_due = now + UPKEEP_EVERY
        except Exception:
            self.close()  # reconnect next time; the daemon logs the error
            raise
        return min(max(self._frontend_due - time.monotonic(), 0.0), LONGEST_NAP)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _scheduler(self, active: frozenset[str]) -> None:
        runtime = runtime_of(self.ctx)
        now = utc_now()
        if WORKER_DOWN in active:
            # The worker is gone: nothing runs, queued runs are lost with it.
            runtime.manual_runs.clear()
            self._checked = now
            return
        conn = self._connection()
        configs = history.enabled_configs(conn)
        due = [(at, job.job_id) for job in jobs.JOBS if job.job_id in configs
               for at in job.fires(self._checked, now)]
        while runtime.manual_runs:
            row = conn.execute(CONFIG, (runtime.manual_runs.popleft(),)).fetchone()
            if row is not None:
                due.append((now, row[0]))
        self._checked = now
        for at, job_id in sorted(due):
            self._run(conn, runtime.worker, job_id, at, active)

    def _run(self, conn: db.Connection, worker: Worker, job_id: str, at: datetime,
             active: frozenset[str]) -> None:
        conditions = incidents.conditions(active)
        run = jobs.run(self.rng, job_id, at, conditions)
        all_configs = {j: c for c, j in conn.execute("SELECT id, job_id FROM public.scheduler_configs")}
        history.write(conn, [run], all_configs, delivered=False)
        for item in run.items:
            worker.ingest_items.labels(item.source).inc()
        if job_id == "ingest_rank":
            worker.ingest_cycles.inc()
        if run.status == "success":
            worker.outcome[job_id] = run.outcome
        worker.job_runs.labels(job_id, worker.outcome.get(job_id, run.outcome)).inc()
        worker.job_duration.labels(job_id).observe(run.duration_s)
        if job_id != "ingest_rank":
            worker.openai_requests.labels("reply" if job_id == "gen_replies" else "ideas").inc()
        worker.backlog.labels("alerts_pending").set(self.rng.randint(0, 3))
        worker.backlog.labels("replies_pending").set(self.rng.randint(0, 8))
        for message in run.messages:
            telegram.send(self.ctx, message.category, message.text)
        self._alert_on_failures(conn, worker, job_id)

    def _alert_on_failures(self, conn: db.Connection, worker: Worker, job_id: str) -> None:
        """The app's own alert: three errors in a row, then 30 minutes of quiet."""
        last = [status for (status,) in conn.execute(LAST_RUNS, (job_id,))]
        if last != ["error"] * 3:
            return
        now = time.time()
        if now - worker.alerted.get(job_id, 0.0) > 1800:
            worker.alerted[job_id] = now
            telegram.send(self.ctx, "job_alert", f"Job '{job_id}' has failed repeatedly.")

    def _frontend(self) -> None:
        headers = {"Authorization": f"Bearer {self.ctx.settings[VIEWER_TOKEN]}"}
        try:
            httpx.get(f"{self.ctx.url('app')}/posts/top", headers=headers, timeout=5,
                      trust_env=False)
        except httpx.HTTPError:
            pass  # the backend restarting; the next call will do

    def _upkeep(self, active: frozenset[str]) -> None:
        with self.ctx.superuser() as conn:
            if RETENTION_OVERDUE not in active:
                history.archive(conn)
            if VACUUM_OVERDUE not in active:
                for (table,) in conn.execute(STALE_VACUUM, (list(MAINTAINED),)).fetchall():
                    conn.execute(f"VACUUM ANALYZE public.{table}")

    def _connection(self) -> db.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self.ctx.connect_as(SERVICE_ROLE, self.ctx.settings[SERVICE_PASSWORD])
        return self._conn
