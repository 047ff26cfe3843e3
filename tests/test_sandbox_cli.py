"""The sandbox's command line, run for real against the session's sandbox: `python -m sandbox ...`
in a subprocess, with OpsMantik's database and app as the witnesses.

The faults themselves are proven in tests/test_sandbox_checks.py (each through its own probe and
the checks); `down` in tests/test_sandbox_kit.py, on a sandbox of its own.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import psycopg
import pytest

from sandbox import cli, lifecycle
from sandbox import state as state_file
from sandbox.binaries import PG_BIN_VARIABLE, WHEEL
from sandbox.faults import FAULTS
from sandbox.paths import Home
from tests.sandbox_handle import Sandbox

pytestmark = pytest.mark.sandbox

DB = "opsmantik"
ENV_VARIABLES = {
    "OPSMANTIK_DATABASE_URL",
    "OPSMANTIK_BASE_URL",
    "OPSMANTIK_WATCHTOWER_SECRET",
    "OPSMANTIK_CRON_SECRET",
    "OPSMANTIK_ALLOWED_ORIGINS",
}


def status_lines(sandbox: Sandbox) -> list[str]:
    return sandbox.ok("status").splitlines()


def test_up_prints_the_env_file_and_a_summary(sandbox: Sandbox) -> None:
    again = sandbox.up().splitlines()
    assert again[0] == str(sandbox.env_file)
    assert again[1].startswith("sandbox up") and "opsmantik" in again[1]
    assert all(f"{system} app http://127.0.0.1:{ports['app']}" in again[1]
               for system, ports in sandbox.state.ports.items())


def test_up_again_changes_nothing(sandbox: Sandbox) -> None:
    before, env_before = status_lines(sandbox), sandbox.env_file.read_text()
    sandbox.up()
    assert status_lines(sandbox) == before
    assert sandbox.env_file.read_text() == env_before


def test_status_says_up_with_ports_and_pids(sandbox: Sandbox) -> None:
    lines = status_lines(sandbox)
    assert lines[0].startswith("sandbox: up")
    assert any(line.startswith("postgres: running (pid ") for line in lines)
    assert any(line.startswith("daemon: running (pid ") for line in lines)
    assert [line for line in lines if ": app http://" in line] == [
        f"{system}: app http://127.0.0.1:{ports['app']}"
        for system, ports in sandbox.state.ports.items()]
    assert lines[-1] == "active faults: none"


def test_env_file_has_exactly_the_five_variables_and_is_private(sandbox: Sandbox) -> None:
    env = sandbox.env
    assert {name for name in env if name.startswith("OPSMANTIK_")} == ENV_VARIABLES
    assert all(env.values())
    assert stat.S_IMODE(sandbox.env_file.stat().st_mode) == 0o600
    assert env["OPSMANTIK_DATABASE_URL"].startswith("postgresql://checks_ro:")
    assert env["OPSMANTIK_BASE_URL"] == sandbox.context(DB).url("app")
    assert sandbox.state.superuser_password not in sandbox.env_file.read_text()


def test_checks_ro_cannot_insert_even_when_it_asks_for_read_write(sandbox: Sandbox) -> None:
    insert = "INSERT INTO public.watchtower_checks (check_name, ok) VALUES ('probe', true)"
    with sandbox.checks_ro(DB) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(insert)
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(insert)


def test_checks_ro_reads_and_calls_only_the_read_only_functions(sandbox: Sandbox) -> None:
    with sandbox.checks_ro(DB) as conn:
        row = conn.execute("SELECT public.verify_partition_triggers_exist(),"
                           " public.verify_current_events_partition_exists(), public.ping(),"
                           " (SELECT count(*) > 0 FROM public.processed_signals)").fetchone()
        assert row == (True, True, 1, True)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT public.watchtower_partition_drift_check_v1()")


def test_sessions_are_recent_and_keep_flowing(sandbox: Sandbox) -> None:
    newest = "SELECT extract(epoch FROM now() - max(created_at)) FROM public.sessions"
    count = "SELECT count(*) FROM public.sessions"
    assert float(sandbox.scalar(newest, database=DB)) < 30
    before = sandbox.scalar(count, database=DB)
    time.sleep(3.5)
    assert sandbox.scalar(count, database=DB) > before


def test_every_request_is_logged_with_its_method(sandbox: Sandbox) -> None:
    with sandbox.http(DB) as client:
        response = client.head("/api/health")
    assert "x-request-id" in response.headers
    last = json.loads((sandbox.home / "requests.jsonl").read_text().splitlines()[-1])
    assert {k: last[k] for k in ("system", "method", "path")} == {
        "system": "opsmantik", "method": "HEAD", "path": "/api/health"}


def test_faults_lists_every_fault_with_its_items(sandbox: Sandbox) -> None:
    listing = sandbox.ok("faults")
    for fault in FAULTS.values():
        assert f"{fault.name} ({fault.system}): {fault.description}" in listing
        assert all(item in listing for item in fault.turns)


def test_an_unknown_fault_is_a_usage_error_naming_the_known_ones(sandbox: Sandbox) -> None:
    for command in ("fault", "heal", "probe"):
        result = sandbox.cli(command, "no_such_fault")
        assert result.returncode == 2
        assert "no_such_fault" in result.stderr and "ingest_stalled" in result.stderr


def test_applying_twice_and_healing_an_inactive_fault_are_harmless(sandbox: Sandbox) -> None:
    assert "not active" in sandbox.ok("heal", "cors_reject")
    sandbox.fault("cors_reject")
    assert "already active" in sandbox.ok("fault", "cors_reject")
    assert status_lines(sandbox)[-1] == "active faults: cors_reject"
    sandbox.ok("heal", "--all")
    assert status_lines(sandbox)[-1] == "active faults: none"


def test_probe_says_healthy_or_broken_in_its_exit_code(sandbox: Sandbox) -> None:
    assert sandbox.cli("probe", "diag_disabled").stdout == "diag_disabled: healthy\n"
    sandbox.fault("diag_disabled")
    try:
        broken = sandbox.cli("probe", "diag_disabled")
    finally:
        sandbox.heal("diag_disabled")
    assert (broken.returncode, broken.stdout) == (1, "diag_disabled: broken\n")
    assert sandbox.cli("probe", "diag_disabled").returncode == 0


def test_a_stall_stops_traffic_until_healed(sandbox: Sandbox) -> None:
    last_hour = "SELECT count(*) FROM public.sessions WHERE created_at >= now() - interval '60 min'"
    sandbox.fault("ingest_stalled")
    try:
        time.sleep(3.5)  # more than one traffic tick
        assert sandbox.scalar(last_hour, database=DB) == 0
        assert sandbox.scalar("SELECT count(*) > 0 FROM public.sessions", database=DB) is True
    finally:
        sandbox.heal("ingest_stalled")
    assert sandbox.scalar(last_hour, database=DB) > 100


def test_server_binaries_without_the_server_programs_are_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home, named, configured = tmp_path / "home", tmp_path / "named", tmp_path / "configured"
    named.mkdir()
    (named / "postgres").touch(mode=0o755)
    monkeypatch.setenv(PG_BIN_VARIABLE, str(configured))
    assert cli.main(["up", "--home", str(home), "--pg-bin", str(named)]) == cli.USAGE_ERROR
    assert capsys.readouterr().err == (  # the option wins over the variable
        f"sandbox: error: --pg-bin {named}: no initdb, pg_ctl there (a PostgreSQL server's bin "
        "directory holds initdb, pg_ctl, postgres, e.g. /usr/lib/postgresql/15/bin)\n")
    assert cli.main(["up", "--home", str(home)]) == cli.USAGE_ERROR
    assert capsys.readouterr().err.startswith(
        f"sandbox: error: ${PG_BIN_VARIABLE} {configured}: no initdb, pg_ctl, postgres there")
    assert not home.exists()  # refused before anything was made


def test_a_home_of_the_format_before_the_binaries_were_recorded_ran_on_the_wheel(
    tmp_path: Path,
) -> None:
    home = Home.at(tmp_path)
    home.state.write_text('{"format": 2, "superuser_password": "x", "checks_ro_password": "y",'
                          ' "pg_port": 5432, "ports": {}, "systems": {}, "created_at": ""}')
    assert state_file.load(home).pg_bin == ""
    status = lifecycle.status(home).lines
    assert status[1] == (f"postgres: not running, 127.0.0.1:5432, PostgreSQL from {WHEEL}, "
                         f"pg_stat_statements not preloaded, log {home.pg_log}")


def test_the_session_sandbox_records_its_server_and_preloads_statement_statistics(
    sandbox: Sandbox,
) -> None:
    state = sandbox.state
    assert state.pg_bin and state.pg_version and state.pg_preloaded == ["pg_stat_statements"]
    line = status_lines(sandbox)[1]
    assert f"PostgreSQL {state.pg_version} from {state.pg_bin}, pg_stat_statements preloaded" in line
    settings = ("SELECT current_setting('shared_preload_libraries'),"
                " current_setting('pg_stat_statements.track'), current_setting('track_io_timing')")
    with sandbox.superuser("postgres") as conn:
        assert conn.execute(settings).fetchone() == ("pg_stat_statements", "top", "on")
