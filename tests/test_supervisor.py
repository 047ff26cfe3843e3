"""A report always exists: killed, overrunning or crashing runs still end UNKNOWN with a report."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import ChecksPytester

CHECK = '''
import os, signal, time, pytest
pytestmark = [pytest.mark.ingest_stalled, pytest.mark.system("opsmantik")]

def test_is1_passes(evidence):
    """IS-1: The example passes."""

def test_is2_misbehaves(evidence):
    """IS-2: The example is past a warning line."""
    if os.environ.get("MISBEHAVE") == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("MISBEHAVE") == "hang":
        time.sleep(60)
    if os.environ.get("MISBEHAVE") == "exit":
        os._exit(1)
'''


@pytest.fixture
def project(example_pytester: ChecksPytester) -> ChecksPytester:
    example_pytester.env_file("sandbox", "OPSMANTIK_BASE_URL=http://127.0.0.1:1\n")
    example_pytester.only_check("test_000_misbehaves.py", CHECK)
    return example_pytester


def supervise(project: ChecksPytester, misbehave: str, *args: str):
    results = project.path / "out.json"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "fixtures.supervisor", *args, f"--results-json={results}",
         "-p", "no:cacheprovider"],
        cwd=project.path, env={**__import__("os").environ, "MISBEHAVE": misbehave},
        capture_output=True, text=True, timeout=120, check=False,
    )
    return done, json.loads(results.read_text()), time.monotonic() - started


def test_a_normal_run_keeps_its_own_report(project: ChecksPytester):
    done, results, _ = supervise(project, "")
    assert done.returncode == 0
    assert results["summary"]["PASS"] == 2
    assert "aborted" not in results


@pytest.mark.parametrize(("misbehave", "why"), [
    ("kill", "killed by signal SIGKILL"),
    ("exit", "pytest exited 1 without writing results"),
])
def test_a_dead_run_is_reported_unknown(project: ChecksPytester, misbehave, why):
    done, results, _ = supervise(project, misbehave)
    assert done.returncode == 3
    assert why in results["aborted"]
    assert results["aborted"].endswith("test_000_misbehaves.py::test_is2_misbehaves")
    assert (project.path / "out.html").exists()


def test_an_aborted_run_writes_the_document_a_finished_one_does(project: ChecksPytester):
    _, finished, _ = supervise(project, "")
    _, aborted, _ = supervise(project, "exit")
    assert set(aborted) == set(finished) | {"aborted"}
    assert set(aborted["checks"][0]) == set(finished["checks"][0])
    assert (aborted["target"], aborted["exit_code"], aborted["summary"]["UNKNOWN"]) == ("sandbox", 3, 1)
    assert (aborted["suite_version"], aborted["env_file"]) == (finished["suite_version"],
                                                               finished["env_file"])


def test_a_run_past_its_deadline_is_cut_and_reported(project: ChecksPytester):
    done, results, elapsed = supervise(project, "hang", "--run-deadline", "3")
    assert done.returncode == 3
    assert "run deadline of 3 s exceeded" in results["aborted"]
    assert elapsed < 3 + 5  # the deadline plus interpreter start-up, far below the 60 s hang
