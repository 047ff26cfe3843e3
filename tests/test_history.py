"""History without a SaaS: each run appended to SQLite; what changed since the target's last run in
every output; flapping; a timeline command; concurrent runs; a locked or broken file is one
warning, never a failed run or a lost report."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixtures import history
from fixtures.history import BUSY_TIMEOUT_S, compare, record
from fixtures.results import CheckId, CheckResult, Ledger, RunFacts, State
from tests.conftest import REPO, ChecksPytester

T0 = datetime(2026, 12, 2, 13, 17, tzinfo=UTC)

SWITCHING = '''
import os, pytest
pytestmark = [pytest.mark.ingest_stalled, pytest.mark.system("opsmantik")]

def test_is1_passes(evidence):
    """IS-1: The example passes."""

def test_is2_follows_the_environment(evidence):
    """IS-2: The example is what STATE says."""
    assert os.environ.get("STATE", "PASS") == "PASS", "0 sessions in the last 60 min (example)"
'''


def facts(at: datetime, target: str = "prod") -> RunFacts:
    return RunFacts(target, "envs/prod.env", "abc1234", "ingest_stalled", at, at + timedelta(seconds=3),
                    "ci@runner")


def ledger(**states: State) -> Ledger:
    found = Ledger()
    for item, state in states.items():
        found.record(CheckResult(f"t::{item}", CheckId(item.replace("_", "-"), "000", "opsmantik"),
                                 state, "finding" if state is not State.PASS else ""))
    return found


def run_at(path: Path, minutes: int, state: State, target: str = "prod") -> history.History:
    return record(path, facts(T0 + timedelta(minutes=minutes), target), ledger(IS_2=state))


def test_a_change_says_since_when_the_old_state_was_last_seen(tmp_path: Path):
    path = tmp_path / "h.sqlite"
    first = run_at(path, 0, State.PASS)
    assert first.previous_run is None and first.lines() == ["first run recorded for this target"]
    run_at(path, 45, State.PASS)
    changed = run_at(path, 60, State.FAIL)
    assert changed.lines() == ["IS-2 PASS → FAIL since 14:02"]
    assert changed.previous_run == T0 + timedelta(minutes=45)


def test_a_state_that_holds_says_for_how_many_runs_and_how_long(tmp_path: Path):
    path = tmp_path / "h.sqlite"
    run_at(path, 0, State.PASS)
    for minutes in (15, 30, 45):
        held = run_at(path, minutes, State.FAIL)
    assert held.lines() == ["IS-2 FAIL for 3 runs, 30 min"]
    assert run_at(path, 60, State.PASS).lines() == ["IS-2 FAIL → PASS since 14:02"]
    assert run_at(path, 75, State.PASS).lines() == ["no change: every item as in the last run"]


def test_three_changes_in_the_last_ten_runs_is_flapping(tmp_path: Path):
    path = tmp_path / "h.sqlite"
    for minutes, state in enumerate([State.PASS] * 6 + [State.FAIL, State.PASS, State.FAIL]):
        last = run_at(path, minutes, state)
    [change] = last.notable()
    assert change.flapping and change.changes == 3
    assert change.text().endswith("(flapping: 3 changes in the last 10 runs)")
    assert change.as_json()["flapping"] is True


def test_targets_have_separate_histories(tmp_path: Path):
    path = tmp_path / "h.sqlite"
    run_at(path, 0, State.FAIL, target="staging")
    assert run_at(path, 1, State.PASS, target="prod").previous_run is None


def test_compare_counts_a_streak_past_its_lookback():
    earlier = [(T0 - timedelta(minutes=n), "FAIL") for n in range(1, history.STREAK_LOOKBACK + 2)]
    change = compare("000", "IS-2", "FAIL", T0, earlier)
    assert change.text().startswith(f"IS-2 FAIL for {history.STREAK_LOOKBACK + 2}+ runs")


def test_old_runs_are_pruned_per_target(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(history, "KEEP_RUNS", 3)
    path = tmp_path / "h.sqlite"
    for minutes in range(5):
        run_at(path, minutes, State.PASS)
    run_at(path, 0, State.PASS, target="staging")
    with sqlite3.connect(path) as conn:
        kept = conn.execute("select target, count(*) from runs group by target order by target").fetchall()
        orphans = conn.execute("select count(*) from states where run_id not in (select id from runs)")
        assert kept == [("prod", 3), ("staging", 1)] and orphans.fetchone() == (0,)


def test_concurrent_runs_all_land_and_the_file_stays_whole(tmp_path: Path):
    path = tmp_path / "h.sqlite"
    writer = (
        "import sys; from datetime import timedelta; from pathlib import Path\n"
        "from tests.test_history import T0, facts, ledger, record\n"
        "from fixtures.results import State\n"
        "for n in range(15):\n"
        "    found = record(Path(sys.argv[1]), facts(T0 + timedelta(seconds=n)), "
        "ledger(IS_1=State.PASS, IS_2=State.FAIL))\n"
        "    assert found.warning is None, found.warning\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", writer, str(path)], cwd=REPO) for _ in range(4)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0, 0]
    with sqlite3.connect(path) as conn:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        assert conn.execute("select count(*) from runs").fetchone() == (60,)
        assert conn.execute("select count(*) from states").fetchone() == (120,)


# As a user runs it --------------------------------------------------------------------------------

@pytest.fixture
def switching(example_pytester: ChecksPytester) -> ChecksPytester:
    example_pytester.env_file("sandbox", "OPSMANTIK_BASE_URL=http://127.0.0.1:1\n")
    example_pytester.only_check("test_000_switching.py", SWITCHING)
    return example_pytester


def test_every_output_says_what_changed_since_the_last_run(switching: ChecksPytester, monkeypatch):
    switching.run()
    monkeypatch.setenv("STATE", "FAIL")
    html, md = switching.path / "r.html", switching.path / "s.md"
    run = switching.run("--html", str(html), "--summary-md", str(md))
    [change] = run.results["history"]["changes"]
    assert (change["item"], change["previous"], change["state"]) == ("IS-2", "PASS", "FAIL")
    line = change["text"]
    assert line.startswith("IS-2 PASS → FAIL since ")
    assert line in run.outlines  # the terminal
    assert f"- {line}" in md.read_text().splitlines()
    assert f"<li>{line}</li>" in html.read_text()  # escaped like every string there
    assert run.results["history"]["path"] == str(switching.path / "reports" / "history.sqlite")


def test_the_timeline_command(switching: ChecksPytester, monkeypatch):
    switching.run()
    monkeypatch.setenv("STATE", "FAIL")
    switching.run()
    switching.run()
    command = [sys.executable, "-m", "fixtures.history", "--target", "sandbox",
               "--history", str(switching.path / "reports" / "history.sqlite")]
    whole = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout
    # time, verdict, marker (none given: all), what was not PASS
    assert [line.split("  ", 1)[1] for line in whole.splitlines()] == [
        "PASS     all  all PASS", "FAIL     all  IS-2 FAIL", "FAIL     all  IS-2 FAIL"]
    one = subprocess.run([*command, "--item", "IS-2"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert one[-1] == "1 change(s) of state over these 3 runs"
    assert one[1].endswith("FAIL     all  0 sessions in the last 60 min (example)")


def test_a_locked_history_is_one_warning_and_the_reports_are_written(switching: ChecksPytester):
    switching.run()
    path = switching.path / "reports" / "history.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("begin exclusive")
    try:
        html = switching.path / "r.html"
        run = switching.run("--html", str(html))
    finally:
        holder.execute("rollback")
        holder.close()
    assert run.ret == 0 and run.results["verdict"] == "PASS" and html.is_file()
    warning = run.results["history"]["warning"]
    assert warning.startswith(f"history not kept ({path}: database is locked)")
    assert [line for line in run.outlines if "history not kept" in line] == [f"warning: {warning}"]
    assert BUSY_TIMEOUT_S <= 5  # how long a canary waits for another run's write


def test_a_file_that_is_not_a_history_is_one_warning(switching: ChecksPytester):
    path = switching.path / "broken.sqlite"
    path.write_bytes(b"this is not a database\n" * 100)
    run = switching.run("--history", str(path))
    assert run.ret == 0
    assert "file is not a database" in run.results["history"]["warning"]


def test_no_history_keeps_none(switching: ChecksPytester):
    run = switching.run("--no-history")
    assert run.results["history"] is None
    assert not (switching.path / "reports" / "history.sqlite").exists()
    assert json.dumps(run.results)  # the document is complete without it
