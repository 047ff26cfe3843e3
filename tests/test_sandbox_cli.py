"""The sandbox's command line, run for real: `python -m sandbox ...` in a subprocess.

One sandbox serves the whole module (its own home under tmp_path, not the session's shared one,
because the last test stops it). Faults are checked at the source, with the superuser or the
app, not through the checks: tests/test_sandbox_checks.py covers that.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from dotenv import dotenv_values

from sandbox.faults import FAULTS
from sandbox.procs import alive, read_pid
from tests.conftest import assert_fault_round_trip

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parent.parent
ENV_VARIABLES = {
    "OPSMANTIK_DATABASE_URL",
    "OPSMANTIK_BASE_URL",
    "OPSMANTIK_WATCHTOWER_SECRET",
    "OPSMANTIK_CRON_SECRET",
    "OPSMANTIK_ALLOWED_ORIGINS",
}


@dataclass
class Box:
    home: Path
    env_file: Path

    def run(self, *args: str, home: bool = True) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "sandbox", *args]
        if home:
            command += ["--home", str(self.home)]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                              check=False)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"sandbox {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result.stdout

    @property
    def env(self) -> dict[str, str | None]:
        return dotenv_values(self.env_file)

    def superuser(self) -> psycopg.Connection:
        state = json.loads((self.home / "state.json").read_text())
        return psycopg.connect(host="127.0.0.1", port=state["pg_port"], user="postgres",
                               password=state["superuser_password"], dbname="opsmantik",
                               autocommit=True)

    def scalar(self, sql: str) -> object:
        with self.superuser() as conn:
            row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=str(self.env["OPSMANTIK_BASE_URL"]), timeout=10)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    """A sandbox for this module: `up` once, `down` at the end whatever happened."""
    root = tmp_path_factory.mktemp("sandbox-cli")
    sandbox = Box(root / "home", root / "envs" / "sandbox.env")
    result = sandbox.run("up", "--env-file", str(sandbox.env_file))
    assert result.returncode == 0, f"up failed:\n{result.stdout}{result.stderr}"
    yield sandbox
    sandbox.run("down")


def status_lines(box: Box) -> list[str]:
    return box.ok("status").splitlines()


def test_up_prints_the_env_file_and_a_summary(box: Box) -> None:
    again = box.ok("up", "--env-file", str(box.env_file)).splitlines()
    assert again[0] == str(box.env_file)
    assert again[1].startswith("sandbox up") and "opsmantik" in again[1]


def test_up_again_changes_nothing(box: Box) -> None:
    before, env_before = status_lines(box), box.env_file.read_text()
    box.ok("up", "--env-file", str(box.env_file))
    assert status_lines(box) == before
    assert box.env_file.read_text() == env_before


def test_status_says_up_with_ports_and_pids(box: Box) -> None:
    lines = status_lines(box)
    assert lines[0].startswith("sandbox: up")
    assert any(line.startswith("postgres: running (pid ") for line in lines)
    assert any(line.startswith("daemon: running (pid ") for line in lines)
    assert lines[-1] == "active faults: none"


def test_env_file_has_exactly_the_five_variables_and_is_private(box: Box) -> None:
    env = box.env
    assert {name for name in env if name.startswith("OPSMANTIK_")} == ENV_VARIABLES
    assert all(env.values())
    assert stat.S_IMODE(box.env_file.stat().st_mode) == 0o600
    assert str(env["OPSMANTIK_DATABASE_URL"]).startswith("postgresql://checks_ro:")
    assert str(env["OPSMANTIK_BASE_URL"]).startswith("http://127.0.0.1:")
    superuser_password = json.loads((box.home / "state.json").read_text())["superuser_password"]
    assert superuser_password not in box.env_file.read_text()


def test_checks_ro_cannot_insert_even_when_it_asks_for_read_write(box: Box) -> None:
    url = str(box.env["OPSMANTIK_DATABASE_URL"])
    insert = "INSERT INTO public.watchtower_checks (check_name, ok) VALUES ('probe', true)"
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(insert)
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(insert)


def test_checks_ro_reads_and_calls_only_the_read_only_functions(box: Box) -> None:
    with psycopg.connect(str(box.env["OPSMANTIK_DATABASE_URL"]), autocommit=True) as conn:
        row = conn.execute("SELECT public.verify_partition_triggers_exist(),"
                           " public.verify_current_events_partition_exists(), public.ping(),"
                           " (SELECT count(*) > 0 FROM public.processed_signals)").fetchone()
        assert row == (True, True, 1, True)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT public.watchtower_partition_drift_check_v1()")


def test_sessions_are_recent_and_keep_flowing(box: Box) -> None:
    newest = "SELECT extract(epoch FROM now() - max(created_at)) FROM public.sessions"
    count = "SELECT count(*) FROM public.sessions"
    assert float(box.scalar(newest)) < 30  # type: ignore[arg-type]
    before = box.scalar(count)
    time.sleep(3.5)
    assert box.scalar(count) > before  # type: ignore[operator]


def test_every_request_is_logged_with_its_method(box: Box) -> None:
    with box.http() as client:
        response = client.head("/api/health")
    assert "x-request-id" in response.headers
    last = json.loads((box.home / "requests.jsonl").read_text().splitlines()[-1])
    assert {k: last[k] for k in ("system", "method", "path")} == {
        "system": "opsmantik", "method": "HEAD", "path": "/api/health"}


def test_faults_lists_every_fault_with_its_items(box: Box) -> None:
    listing = box.ok("faults")
    for fault in FAULTS.values():
        assert f"{fault.name} ({fault.system}): {fault.description}" in listing
        assert all(item in listing for item in fault.turns)


def test_an_unknown_fault_is_a_usage_error_naming_the_known_ones(box: Box) -> None:
    result = box.run("fault", "no_such_fault")
    assert result.returncode == 2
    assert "no_such_fault" in result.stderr and "ingest_stalled" in result.stderr


def test_applying_twice_and_healing_an_inactive_fault_are_harmless(box: Box) -> None:
    assert "not active" in box.ok("heal", "cors_reject")
    box.ok("fault", "cors_reject")
    assert "already active" in box.ok("fault", "cors_reject")
    assert status_lines(box)[-1] == "active faults: cors_reject"
    box.ok("heal", "--all")
    assert status_lines(box)[-1] == "active faults: none"


NEXT_MONTH = "(date_trunc('month', now() AT TIME ZONE 'utc') + interval '1 month')"
SESSIONS_TRIGGER = ("FROM pg_trigger WHERE tgrelid = 'public.sessions'::regclass"
                    " AND tgname = 'sessions_set_created_month'")


def _health_db_ok(box: Box) -> bool:
    with box.http() as client:
        return bool(client.get("/api/health").json()["db_ok"])


def _production_origin_accepted(box: Box) -> bool:
    origin = str(box.env["OPSMANTIK_ALLOWED_ORIGINS"]).split(",")[0]
    with box.http() as client:
        response = client.options("/api/sync", headers={"Origin": origin})
    return response.status_code == 200 and response.headers.get("access-control-allow-origin") == origin


def _watchtower_secret_accepted(box: Box) -> bool:
    secret = str(box.env["OPSMANTIK_WATCHTOWER_SECRET"])
    with box.http() as client:
        response = client.post("/api/watchtower/partition-drift",
                               headers={"Authorization": f"Bearer {secret}"})
    return response.status_code == 200


def _diag_answers(box: Box) -> bool:
    with box.http() as client:
        return client.get("/api/sync", params={"diag": "1"}).status_code == 200


def _worker_refuses_unsigned(box: Box) -> bool:
    with box.http() as client:
        return client.post("/api/sync/worker", json={}).status_code == 401


# For each fault, a look at the thing it breaks: True when healthy.
PROBES: dict[str, Callable[[Box], bool]] = {
    "ingest_stalled": lambda box: bool(box.scalar(
        "SELECT count(*) > 0 FROM public.sessions WHERE created_at >= now() - interval '60 min'")),
    "health_db_down": _health_db_ok,
    "cors_reject": _production_origin_accepted,
    "worker_failing": lambda box: bool(box.scalar(
        "SELECT count(*) = 0 FROM public.sync_dlq WHERE received_at >= now() - interval '60 min'")),
    "trigger_dropped": lambda box: bool(box.scalar(f"SELECT count(*) = 1 {SESSIONS_TRIGGER}")),
    "trigger_disabled": lambda box: box.scalar(f"SELECT tgenabled {SESSIONS_TRIGGER}") == "O",
    "next_partition_missing": lambda box: bool(box.scalar(
        f"SELECT to_regclass('public.sessions_' || to_char({NEXT_MONTH}, 'YYYY_MM')) IS NOT NULL"
        f" AND to_regclass('public.events_' || to_char({NEXT_MONTH}, 'YYYY_MM')) IS NOT NULL")),
    "month_drift": lambda box: bool(box.scalar(
        "SELECT count(*) = 0 FROM public.sessions WHERE created_at >= now() - interval '24 hours'"
        " AND created_month <> date_trunc('month', created_at AT TIME ZONE 'utc')::date")),
    "watchtower_secret_rotated": _watchtower_secret_accepted,
    "dlq_column_renamed": lambda box: bool(box.scalar(
        "SELECT count(*) = 1 FROM information_schema.columns"
        " WHERE table_name = 'sync_dlq' AND column_name = 'error'")),
    "diag_disabled": _diag_answers,
    "worker_signing_off": _worker_refuses_unsigned,
    "default_partition_leak": lambda box: bool(box.scalar(
        "SELECT to_regclass('public.sessions_default') IS NULL")),
    "orphan_events": lambda box: bool(box.scalar(
        "SELECT count(*) = 1 FROM pg_constraint WHERE conrelid = 'public.events'::regclass"
        " AND confrelid = 'public.sessions'::regclass AND contype = 'f' AND conparentid = 0")),
    "verify_function_missing": lambda box: bool(box.scalar(
        "SELECT to_regprocedure('public.verify_current_events_partition_exists()') IS NOT NULL")),
}


def test_every_fault_has_a_probe() -> None:
    # LaunchSin's faults have their probes in tests/test_sandbox_launchsin.py.
    assert set(PROBES) == {name for name, fault in FAULTS.items() if fault.system == "opsmantik"}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_fault_breaks_its_target_and_heal_restores_it(box: Box, name: str) -> None:
    assert_fault_round_trip(box, name, PROBES[name])


def test_a_stall_stops_traffic_until_healed(box: Box) -> None:
    last_hour = "SELECT count(*) FROM public.sessions WHERE created_at >= now() - interval '60 min'"
    box.ok("fault", "ingest_stalled")
    try:
        time.sleep(3.5)  # more than one traffic tick
        assert box.scalar(last_hour) == 0
        assert box.scalar("SELECT count(*) > 0 FROM public.sessions") is True  # history kept
    finally:
        box.ok("heal", "ingest_stalled")
    assert box.scalar(last_hour) > 100  # type: ignore[operator]


def test_down_leaves_no_process_and_faults_need_a_running_sandbox(box: Box) -> None:
    """Runs last: it stops the module's sandbox."""
    pids = [read_pid(box.home / "pgdata" / "postmaster.pid"), read_pid(box.home / "serve.pid")]
    assert all(alive(pid) for pid in pids)
    assert box.ok("down").startswith("stopped")
    assert not any(alive(pid) for pid in pids)  # a zombie left for init to reap does not count
    assert box.run("status").returncode == 1
    refused = box.run("fault", "cors_reject")
    assert refused.returncode == 1 and "not running" in refused.stderr
    assert box.ok("down") == "sandbox was not running\n"
