"""Results as metrics: the textfile node_exporter reads, the series on a real Pushgateway (read
back from it), and the Nagios plugin line, all from the run's one summary."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixtures.metrics import push, registry_of, series, write_textfile
from fixtures.nagios import nagios_line
from fixtures.results import CheckId, CheckResult, Ledger, RunFacts, State
from fixtures.verdict import RunSummary
from tests.conftest import ChecksPytester
from tests.hostile import refused_port
from tests.loopback import pushed, pushgateway, value

STARTED = datetime(2026, 12, 2, 14, 2, tzinfo=UTC)


def summary_of(*states: tuple[str, State], target: str = "prod") -> RunSummary:
    ledger = Ledger()
    for number, (item, state) in enumerate(states):
        ledger.record(CheckResult(f"checks/test_000.py::test_{number}", CheckId(item, "000", "opsmantik"),
                                  state, "", duration_s=0.25))
    facts = RunFacts(target, "envs/prod.env", "abc1234", "ingest_stalled", STARTED,
                     STARTED + timedelta(seconds=4.2), "ci@runner")
    return RunSummary(facts, ledger, ledger.worst().exit_code if ledger.results else 3)


@pytest.fixture
def example(example_pytester: ChecksPytester) -> ChecksPytester:
    example_pytester.env_file("sandbox", "OPSMANTIK_BASE_URL=http://127.0.0.1:1\n")
    return example_pytester


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with pushgateway() as url:
        yield url


def test_each_item_is_one_hot_with_the_run_s_worst_state_and_time(tmp_path: Path):
    summary = summary_of(("IS-1", State.PASS), ("IS-2", State.FAIL), ("IS-4", State.WARN))
    path = write_textfile(tmp_path / "runbook_checks.prom", registry_of(summary, summary.verdict))
    found = series(path.read_text())
    for item, state in (("IS-1", "PASS"), ("IS-2", "FAIL"), ("IS-4", "WARN")):
        hot = {s.value: value(found, "runbook_check_state", item=item, state=s.value) for s in State}
        assert hot == {s.value: float(s.value == state) for s in State}, item
    assert value(found, "runbook_check_duration_seconds", item="IS-2", runbook="000") == 0.25
    assert value(found, "runbook_run_worst_state", target="prod") == 2
    finished = (STARTED + timedelta(seconds=4.2)).timestamp()
    assert value(found, "runbook_run_last_timestamp_seconds") == finished
    assert value(found, "runbook_run_duration_seconds") == pytest.approx(4.2)
    assert os.listdir(tmp_path) == ["runbook_checks.prom"]  # the temporary file was renamed over


def test_the_textfile_is_replaced_whole(tmp_path: Path):
    path = tmp_path / "runbook_checks.prom"
    write_textfile(path, registry_of(summary_of(("IS-1", State.PASS), ("IS-2", State.FAIL)), State.FAIL))
    write_textfile(path, registry_of(summary_of(("IS-1", State.PASS)), State.PASS))
    found = series(path.read_text())
    assert value(found, "runbook_check_state", item="IS-2", state="FAIL") is None
    assert value(found, "runbook_run_worst_state") == 0


@pytest.mark.parametrize(("states", "exit_code", "line"), [
    ([("IS-1", State.PASS)] * 6 + [("IS-2", State.FAIL)] * 5 + [("IS-3", State.WARN)] * 2, 2,
     "RUNBOOK-CHECKS CRITICAL - 5 FAIL, 2 WARN on prod | pass=6;;;0 warn=2;;;0 fail=5;;;0 "
     "unknown=0;;;0 time=4.2s;;;0"),
    ([("IS-1", State.PASS)], 0, "RUNBOOK-CHECKS OK - 1 PASS on prod | pass=1;;;0 warn=0;;;0 "
     "fail=0;;;0 unknown=0;;;0 time=4.2s;;;0"),
    ([("IS-1", State.PASS), ("IS-2", State.WARN)], 0,
     "RUNBOOK-CHECKS OK - 1 WARN (WARN accepted: --checks-warn-ok) on prod | pass=1;;;0 warn=1;;;0 "
     "fail=0;;;0 unknown=0;;;0 time=4.2s;;;0"),
    ([], 3, "RUNBOOK-CHECKS UNKNOWN - no check ran on prod | pass=0;;;0 warn=0;;;0 fail=0;;;0 "
     "unknown=0;;;0 time=4.2s;;;0"),
])
def test_the_nagios_line(states, exit_code, line):
    summary = summary_of(*[(f"{item}-{n}", state) for n, (item, state) in enumerate(states)])
    assert nagios_line(summary, exit_code) == line


def test_nagios_mode_prints_the_plugin_line_first(example: ChecksPytester, tmp_path: Path):
    textfile = tmp_path / "m.prom"
    run = example.run("--nagios", "--metrics-textfile", str(textfile))
    assert run.ret == 3
    assert run.outlines[0].startswith("RUNBOOK-CHECKS UNKNOWN - 1 FAIL, 2 UNKNOWN, 1 WARN on sandbox | "
                                      "pass=1;;;0 warn=1;;;0 fail=1;;;0 unknown=2;;;0 time=")
    assert f"report: {textfile}" in run.outlines  # the tripwire read it with the rest
    assert run.outlines[-1].startswith("verdict: UNKNOWN")
    assert value(series(textfile.read_text()), "runbook_run_worst_state") == 3


def test_a_run_pushes_its_series_and_a_later_one_replaces_them(example: ChecksPytester, gateway: str):
    first = example.run("--pushgateway", gateway)
    assert first.ret == 3 and f"pushed: {gateway} job runbook_checks, target sandbox" in first.outlines
    found = pushed(gateway)
    assert value(found, "runbook_check_state", job="runbook_checks", target="sandbox", item="IS-3",
                 state="FAIL") == 1
    assert value(found, "runbook_run_worst_state", job="runbook_checks", target="sandbox") == 3
    example.run("-k", "test_is1", "--pushgateway", gateway)
    found = pushed(gateway)
    assert value(found, "runbook_check_state", target="sandbox", item="IS-3", state="FAIL") is None
    assert value(found, "runbook_run_worst_state", target="sandbox") == 0


def test_a_pushgateway_that_is_down_is_a_warning_never_a_verdict(example: ChecksPytester):
    down = f"http://127.0.0.1:{refused_port()}"
    run = example.run("-k", "test_is1", "--pushgateway", down)
    assert run.ret == 0
    assert any(line.startswith(f"warning: Pushgateway {down}: not pushed after 2 attempts")
               for line in run.errlines), run.errlines


def test_pushgateway_credentials_are_basic_auth_and_secret(example: ChecksPytester):
    run = example.run("-k", "test_is1", "--pushgateway",
                      f"http://ops:pg-canary-s3cret@127.0.0.1:{refused_port()}")
    everything = "\n".join(run.outlines + run.errlines)
    assert "pg-canary-s3cret" not in everything and "ops:***@" in everything
    assert push(f"http://127.0.0.1:{refused_port()}", "prod", registry_of(summary_of(), State.PASS))
