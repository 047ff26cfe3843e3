"""The canary and post-deploy modes as a user adopts them: the two workflows pass actionlint; the
canary job's own script runs against the sandbox and leaves the step summary, the artifacts and the
textfile; and an incident end to end: after `fault ingest_stalled` the real Pushgateway holds
worst state 2 and IS-2 FAIL, the heartbeat receiver got /start then /fail, the history says
IS-2 PASS → FAIL; after the heal, `--until-green 120` ends PASS with its attempts in the evidence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fixtures.metrics import series
from tests.conftest import REPO, ChecksPytester
from tests.loopback import Receiver, ping_receiver, pushed, pushgateway, value
from tests.sandbox_handle import Sandbox

WORKFLOWS = REPO / ".github" / "workflows"
ARTIFACTS = ("results.json", "report.html", "junit.xml", "summary.md", "runbook_checks.prom")


def test_both_workflows_pass_actionlint():
    actionlint = Path(sys.executable).parent / "actionlint"
    assert actionlint.exists(), "actionlint is a dev dependency: pip install -e '.[dev]'"
    done = subprocess.run([str(actionlint), *(str(WORKFLOWS / f) for f in ("canary.yml", "post-deploy.yml"))],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_workflows_run_the_canary_script_as_adopters_configure_it():
    canary = (WORKFLOWS / "canary.yml").read_text()
    assert 'cron: "*/15 * * * *"' in canary and "workflow_dispatch:" in canary
    assert "fromJSON(needs.targets.outputs.list)" in canary and ".ci/canary --list-targets" in canary
    assert "environment: ${{ matrix.target }}" in canary
    assert "secrets.CHECKS_ENV_FILE" in canary and "printf '%s\\n' \"$ENV_FILE\"" in canary  # no echo
    for needed in ("actions/cache/restore@", "actions/cache/save@", "actions/upload-artifact@",
                   '.ci/canary "$TARGET"'):
        assert needed in canary, needed
    deploy = (WORKFLOWS / "post-deploy.yml").read_text()
    for needed in ("deployment_status:", "workflow_call:", "workflow_dispatch:",
                   "github.event.deployment_status.state == 'success'", "github.event.deployment.sha",
                   '.ci/canary "$TARGET" --expect-version "$VERSION"'):
        assert needed in deploy, needed


def test_the_targets_are_listed_in_one_place():
    done = subprocess.run([str(REPO / ".ci" / "canary"), "--list-targets"],
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
                          check=True)
    listed = [line.strip() for line in (REPO / ".ci" / "canary-targets").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert json.loads(done.stdout) == listed and listed


# The canary's own command line against the sandbox ------------------------------------------------

@pytest.fixture
def canary_project(sandbox_pytester: ChecksPytester) -> ChecksPytester:
    """The project copy with the canary script where the workflow finds it."""
    (sandbox_pytester.path / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "canary", sandbox_pytester.path / ".ci" / "canary")
    return sandbox_pytester


def canary(project: ChecksPytester, out: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    summary = out.parent / "step-summary.md"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHECKS_")}
    environ.update(PYTHON=sys.executable, CANARY_OUT=str(out), GITHUB_STEP_SUMMARY=str(summary),
                   CANARY_RUN_DEADLINE="240", **env)
    return subprocess.run([str(project.path / ".ci" / "canary"), "sandbox", *args], env=environ,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.sandbox
def test_the_canary_job_leaves_its_summary_artifacts_and_textfile(canary_project: ChecksPytester,
                                                                   tmp_path: Path):
    out = tmp_path / "artifact"
    done = canary(canary_project, out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(ARTIFACTS)
    step_summary = (tmp_path / "step-summary.md").read_text()
    assert step_summary.startswith("## runbook-checks: PASS on sandbox")
    assert "### Since the last run on sandbox" in step_summary
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"] == "PASS" and results["not_run"]  # side effects stay out of a canary
    found = series((out / "runbook_checks.prom").read_text())
    assert value(found, "runbook_run_worst_state", target="sandbox") == 0
    states = {labels: v for (name, labels), v in found.items() if name == "runbook_check_state"}
    assert len(states) == 4 * len(results["checks"]) and sum(states.values()) == len(results["checks"])
    assert (canary_project.path / "reports" / "history.sqlite").is_file()


# An incident, end to end ------------------------------------------------------------------------

@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with ping_receiver() as state:
        yield state


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with pushgateway() as url:
        yield url


def until_green(project: ChecksPytester, results: Path, heal: object) -> tuple[int, datetime, dict]:
    """Run --until-green 120 while the fault holds; heal once its first attempt has failed."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "ingest_stalled",
               "--until-green", "120", "--until-green-every", "5", f"--results-json={results}"]
    with subprocess.Popen(command, cwd=project.path, stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as process:
        assert process.stdout is not None
        for line in process.stdout:  # the first round's verdict, printed as the run waits
            if line.startswith("until green: "):
                assert "IS-2 FAIL" in line, line
                break
        heal()  # type: ignore[operator]
        healed = datetime.now(UTC)
        process.stdout.read()
        code = process.wait(timeout=180)
    return code, healed, json.loads(results.read_text())


@pytest.mark.sandbox
def test_an_incident_is_published_remembered_and_its_recovery_proven(
    sandbox: Sandbox, canary_project: ChecksPytester, tmp_path: Path, receiver: Receiver, gateway: str
):
    publish = {"CHECKS_PUSHGATEWAY_URL": gateway, "CHECKS_HEARTBEAT_URL": receiver.url}
    healthy = canary(canary_project, tmp_path / "healthy", "-m", "ingest_stalled", **publish)
    assert healthy.returncode == 0, healthy.stdout[-3000:]
    with sandbox.broken("ingest_stalled"):
        broken = canary(canary_project, tmp_path / "broken", "-m", "ingest_stalled", **publish)
        assert broken.returncode == 2, broken.stdout[-3000:]
        found = pushed(gateway)
        assert value(found, "runbook_run_worst_state", job="runbook_checks", target="sandbox") == 2
        assert value(found, "runbook_check_state", target="sandbox", item="IS-2", state="FAIL") == 1
        assert receiver.paths() == ["/start", "/", "/start", "/fail"]
        assert receiver.pings[-1][2].startswith("verdict: FAIL (")
        changes = json.loads((tmp_path / "broken" / "results.json").read_text())["history"]["changes"]
        is2 = next(c for c in changes if c["item"] == "IS-2")
        assert is2["text"].startswith("IS-2 PASS → FAIL since "), is2

        code, healed, results = until_green(canary_project, tmp_path / "recovery.json",
                                            lambda: sandbox.heal("ingest_stalled"))
    assert code == 0 and results["verdict"] == "PASS", json.dumps(results["waits"], indent=2)
    [wait] = results["waits"]
    assert wait["ok"] and len(wait["attempts"]) >= 2, wait
    passed = datetime.fromisoformat(wait["attempts"][-1]["at"])
    is2 = next(c for c in results["checks"] if c["item"] == "IS-2")
    attempts = [e for e in is2["evidence"] if e["kind"] == "attempt"]
    assert attempts and attempts[0]["outcome"].startswith("FAIL: "), attempts
    # The round that passed started within one interval (and one round's checks) of the heal;
    # its time has whole seconds, so it may read up to a second before the heal finished.
    assert -1 <= (passed - healed).total_seconds() <= 5 + 30, (passed, healed)
