"""The sandbox's TrendSpark, run for real against the session's sandbox: its create_all database,
the backend and worker with upstream's auth and answer shapes, real prometheus-client metrics, a
real Prometheus scraping them, and the faults whose findings the issue spells out. A sandbox of
its own shows what happens without the Prometheus binary.

Each fault's own round trip (probe healthy, broken, healthy again, nothing left behind) is in
tests/test_sandbox_checks.py, with the checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.trendspark import prometheus
from sandbox.trendspark.incidents import INGEST_FLATLINE, METRICS_UNSCRAPED
from tests.conftest import ChecksPytester, Run
from tests.sandbox_handle import Sandbox, temporary_root

pytestmark = pytest.mark.sandbox

DB = "trendspark"
INGEST = "trendspark_ingest"
EVERY_MARKER = ("trendspark_ingest or trendspark_stream or telegram_alerts or scheduler_jobs or "
                "api_errors or retention or observability")
PROMQL_ONLY = ("TS-14", "TS-14b", "TS-21", "TS-21b", "TS-21c", "TS-24")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def check(run: Run, item: str) -> dict[str, object]:
    return next(c for c in run.results["checks"] if c["item"] == item)


# Database and env ------------------------------------------------------------------------------

def test_env_file_names_the_trendspark_target(sandbox: Sandbox) -> None:
    env = sandbox.env
    for name in ("BASE_URL", "WORKER_URL", "PROMETHEUS_URL", "GRAFANA_URL", "TELEGRAM_API_URL"):
        assert env[f"TRENDSPARK_{name}"].startswith("http://127.0.0.1:"), name
    assert env["TRENDSPARK_DATABASE_URL"].startswith("postgresql://checks_ro:")
    assert env["TRENDSPARK_DATABASE_URL"].endswith(f"/{DB}")
    assert env["TRENDSPARK_PROMETHEUS_RETENTION"] == prometheus.RETENTION


def test_the_schema_has_create_alls_shape(sandbox: Sandbox) -> None:
    with sandbox.superuser(DB) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        zoned = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'"
            " AND data_type = 'timestamp with time zone'").fetchone()
        defaults = conn.execute(
            "SELECT array_agg(table_name || '.' || column_name) FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_default IS NOT NULL"
            " AND column_default NOT LIKE 'nextval(%'").fetchone()
        crons = dict(conn.execute("SELECT job_id, cron FROM public.scheduler_configs").fetchall())
    assert tables == (14,)
    assert zoned == (0,)  # naive UTC everywhere
    assert defaults == (None,)  # no server defaults: the models set values in Python
    assert crons == {"ingest_rank": "*/30 * * * *", "gen_replies": "*/15 * * * *",
                     "daily_ideas": "0 9 * * *"}


def test_history_runs_on_the_crons_and_keeps_inside_retention(sandbox: Sandbox) -> None:
    with sandbox.superuser(DB) as conn:
        per_job = dict(conn.execute(
            "SELECT job_id, count(*) FROM public.job_runs"
            " WHERE run_at >= timezone('utc', now()) - interval '1 day' GROUP BY job_id").fetchall())
        sources = dict(conn.execute(
            "SELECT source, count(*) FROM public.ingest_audit"
            " WHERE fetched_at >= timezone('utc', now()) - interval '1 hour' GROUP BY source"
        ).fetchall())
        oldest = conn.execute(
            "SELECT timezone('utc', now()) - min(fetched_at) < interval '45 days'"
            " FROM public.ingest_audit").fetchone()
    # The cron's runs, and the manual ones other tests queue.
    assert per_job["ingest_rank"] >= 47 and per_job["gen_replies"] >= 95
    assert set(sources) == {"x", "reddit"}
    assert oldest == (True,)


def test_checks_ro_reads_but_cannot_write(sandbox: Sandbox) -> None:
    with sandbox.checks_ro(DB) as conn:
        assert conn.execute("SELECT count(*) > 0 FROM public.job_runs").fetchone() == (True,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM public.stream_rules")
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM public.stream_rules")


# The apps ---------------------------------------------------------------------------------------

def test_auth_accepts_bearer_token_and_raw_and_checks_roles(sandbox: Sandbox) -> None:
    env = sandbox.env
    viewer, admin = env["TRENDSPARK_API_TOKEN"], env["TRENDSPARK_ADMIN_TOKEN"]
    with sandbox.http(DB, "app") as backend:
        refused = backend.get("/metrics")
        assert (refused.status_code, refused.json()) == (401, {"detail": "Unauthorized"})
        for header in (f"Bearer {viewer}", f"Token {viewer}", viewer):
            assert backend.get("/metrics", headers={"Authorization": header}).status_code == 200
        assert backend.get("/scheduler/jobs", headers=bearer(viewer)).status_code == 403
        assert backend.get("/health").status_code == 200  # public
        jobs = backend.get("/scheduler/jobs", headers=bearer(admin)).json()
    assert {j["job_id"] for j in jobs} == {"ingest_rank", "gen_replies", "daily_ideas"}
    assert all(j["paused"] is False and j["next_run"].endswith("+00:00") for j in jobs)


def test_the_runbooks_payload_gets_422_and_config_id_is_queued(sandbox: Sandbox) -> None:
    admin = bearer(sandbox.env["TRENDSPARK_ADMIN_TOKEN"])
    with sandbox.http(DB, "worker") as worker, sandbox.http(DB, "app") as backend:
        config = next(j for j in worker.get("/scheduler/jobs", headers=admin).json()
                      if j["job_id"] == "gen_replies")["config_id"]
        wrong = worker.post("/scheduler/run", headers=admin, json={"job_id": "gen_replies"})
        queued = worker.post("/scheduler/run", headers=admin, json={"config_id": config})
        proxied = backend.post("/scheduler/run", headers=admin, json={"config_id": config})
        nested = backend.post("/scheduler/run", headers=admin, json={"job_id": "gen_replies"})
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "config_id"]
    assert (queued.status_code, queued.json()) == (202, {"queued": True, "config_id": config})
    assert proxied.status_code == 200  # the backend does not pass the worker's 202 on
    assert nested.status_code == 422 and "detail" in nested.json()["detail"]


def test_health_reports_services_not_a_top_level_worker(sandbox: Sandbox) -> None:
    with sandbox.http(DB, "app") as backend:
        health = backend.get("/health").json()
    assert "worker" not in health
    assert set(health["services"]) == {"database", "worker", "telegram"}
    assert health["services"]["worker"]["info"]["jobs"] >= 1
    assert health["ok"] is True and health["stream_enabled"] is True


def test_worker_metrics_are_prometheus_clients_with_upstreams_quirks(sandbox: Sandbox) -> None:
    with sandbox.http(DB, "worker") as worker:
        text = worker.get("/metrics", headers=bearer(sandbox.env["TRENDSPARK_API_TOKEN"])).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    names = {s.name for s in samples}
    assert {"trendspark_ingest_cycles_total", "process_start_time_seconds"} <= names
    # A run's outcome is its status label: never "error".
    assert not [s for s in samples if s.name == "trendspark_job_runs_total"
                and s.labels.get("status") == "error"]


# Prometheus --------------------------------------------------------------------------------------

def test_prometheus_scrapes_both_apps_with_credentials_and_has_history(sandbox: Sandbox) -> None:
    ctx = sandbox.context(DB)
    config = (prometheus.directory(ctx) / "prometheus.yml").read_text()
    assert config.count("type: Bearer") == 2
    assert "127.0.0.1" in config and "0.0.0.0" not in config
    assert {t["labels"]["job"]: t["health"] for t in prometheus.targets(ctx)} == {
        "trendspark-backend": "up", "trendspark-worker": "up"}
    items = prometheus.value(ctx, "sum(increase(trendspark_ingest_items_total[60m]))")
    assert items is not None and items > 0
    # The app's own `job` label arrives as exported_job.
    runs = prometheus.value(ctx, "count(count_over_time("
                                 'trendspark_job_runs_total{exported_job="gen_replies"}[2h]))')
    assert runs is not None and runs >= 1
    with httpx.Client(base_url=prometheus.url(ctx), timeout=10) as client:
        flags = client.get("/api/v1/status/flags").json()["data"]
    assert flags["storage.tsdb.retention.time"] == prometheus.RETENTION
    assert flags["web.listen-address"].startswith("127.0.0.1:")
    assert flags["storage.tsdb.path"].startswith(str(sandbox.home))


def test_ingest_flatline_fails_the_promql_item_with_its_query_and_samples(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester
) -> None:
    with sandbox.broken(INGEST_FLATLINE):
        run = sandbox_pytester.run("-m", INGEST, "--target", "sandbox")
    assert run.ret == 2
    ts2 = check(run, "TS-2")
    assert ts2["state"] == "FAIL", ts2["message"]
    notes = [e["text"] for e in ts2["evidence"] if e["kind"] == "note"]
    queried = [n for n in notes if n.startswith("PromQL: increase(trendspark_ingest_items_total")]
    assert queried and "evaluated at " in queried[0]
    assert 'source="x"' in queried[0] and 'source="reddit"' in queried[0]  # flat, but sampled
    sampled = [n for n in notes if "\nsamples by " in n]
    assert sampled and sampled[0].startswith("PromQL: trendspark_ingest_items_total{")
    assert sampled[0].count("samples, first ") == 2  # both sources' raw samples


def test_metrics_unscraped_names_both_targets_and_their_error(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester
) -> None:
    with sandbox.broken(METRICS_UNSCRAPED):
        run = sandbox_pytester.run("-m", "observability", "--target", "sandbox")
    message = str(check(run, "TS-21b")["message"])
    assert check(run, "TS-21b")["state"] == "FAIL"
    for job in ("trendspark-backend", "trendspark-worker"):
        assert f"{job} (127.0.0.1:" in message
    assert message.count("401 Unauthorized") == 2
    assert {c["item"] for c in run.results["corrections"]} >= {"TS-21b"}


# Without the binary ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def without_prometheus() -> Iterator[tuple[Sandbox, str]]:
    """A sandbox of TrendSpark alone, with PROMETHEUS_BIN pointing at nothing."""
    with temporary_root("noprom") as root, pytest.MonkeyPatch.context() as patch:
        patch.setenv(prometheus.BIN_VARIABLE, str(root / "no-prometheus-here"))
        box = Sandbox(root / "home", root / "sandbox.env", systems=DB)
        try:
            yield box, box.up()
        finally:
            box.cli("down")


def test_without_the_binary_the_sandbox_says_so_once_and_writes_no_url(without_prometheus) -> None:
    box, output = without_prometheus
    assert output.count("NO PROMETHEUS") == 1
    assert "TRENDSPARK_PROMETHEUS_URL is not written" in output
    assert "TRENDSPARK_PROMETHEUS_URL" not in box.env
    assert "prometheus" not in box.state.ports[DB]


def test_without_prometheus_the_promql_items_are_unknown_and_two_scrapes_answer_the_rest(
    without_prometheus, checks_pytester: ChecksPytester
) -> None:
    box, _ = without_prometheus
    checks_pytester.env_file("sandbox", box.env_file.read_text())
    env = box.env
    with httpx.Client(base_url=env["TRENDSPARK_WORKER_URL"], timeout=10) as worker:
        admin = bearer(env["TRENDSPARK_ADMIN_TOKEN"])
        ingest = next(j for j in worker.get("/scheduler/jobs", headers=admin).json()
                      if j["job_id"] == "ingest_rank")
        # A run since the worker started: its counters now hold the window's items.
        assert worker.post("/scheduler/run", headers=admin,
                           json={"config_id": ingest["config_id"]}).status_code == 202
    run = checks_pytester.run("-m", EVERY_MARKER, "--target", "sandbox")
    states = run.states()
    for item in PROMQL_ONLY:
        assert states[item] == "UNKNOWN", item
        assert "TRENDSPARK_PROMETHEUS_URL" in run.messages()[item]
    assert states["TS-2"] == "PASS", run.messages()["TS-2"]
    assert states["TS-16"] == "PASS" and states["TS-10b"] == "PASS"
    notes = [e.get("text", "") for e in check(run, "TS-2")["evidence"]]
    assert any("TRENDSPARK_PROMETHEUS_URL is not set" in n for n in notes)
    assert not [i for i, s in states.items() if s != "PASS" and i not in PROMQL_ONLY], \
        json.dumps(run.messages(), indent=1)
