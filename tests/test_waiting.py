"""Waiting, as proof: the polling helper bounded by attempts and deadline, every attempt kept as
evidence; --expect-version (against the hostile target's rolling deploy and the sandbox) and
--until-green (against example checks that recover, and one that never does)."""

from __future__ import annotations

import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.deploy import matches, wait_for_version
from fixtures.evidence import Evidence
from fixtures.settings import Budget
from fixtures.systems import VersionField
from fixtures.waiting import eventually
from sandbox.opsmantik.app import GIT_SHA
from tests.conftest import ChecksPytester
from tests.hostile import HostileHttp
from tests.hostile.routes import DEPLOY_OLD_ANSWERS, NEW_BUILD, OLD_BUILD


def flaky(failures: int):
    calls = {"n": 0}

    def probe() -> str:
        calls["n"] += 1
        assert calls["n"] > failures, f"not yet (call {calls['n']})"
        return "recovered"

    return probe


def attempts(evidence: Evidence) -> list[tuple[int, str]]:
    return [(e["number"], e["outcome"]) for e in evidence.entries if e["kind"] == "attempt"]


def test_recovery_returns_and_every_attempt_is_evidence():
    evidence = Evidence("t")
    assert eventually(flaky(2), evidence, within_s=5, every_s=0.01) == "recovered"
    assert attempts(evidence) == [(1, "failed: not yet (call 1)"), (2, "failed: not yet (call 2)"),
                                  (3, "passed")]


def test_no_recovery_reraises_the_last_finding_within_the_attempts():
    evidence = Evidence("t")
    with pytest.raises(AssertionError, match=r"not yet \(call 3\)"):
        eventually(flaky(99), evidence, within_s=5, every_s=0.01, attempts=3)
    assert len(attempts(evidence)) == 3


def test_no_attempt_starts_past_the_deadline():
    started = time.monotonic()
    with pytest.raises(AssertionError):
        eventually(flaky(99), Evidence("t"), within_s=0.5, every_s=0.2, attempts=100)
    assert time.monotonic() - started < 0.5 + 0.2


def test_other_errors_are_not_retried():
    def broken() -> None:
        raise ValueError("harness broke")

    evidence = Evidence("t")
    with pytest.raises(ValueError, match="harness broke"):
        eventually(broken, evidence, within_s=5, every_s=0.01)
    assert attempts(evidence) == []


@pytest.mark.parametrize(("within", "tries"), [(0, 3), (5, 0)])
def test_an_unbounded_wait_is_refused(within, tries):
    with pytest.raises(ValueError, match="positive deadline"):
        eventually(flaky(0), Evidence("t"), within_s=within, attempts=tries)


# --expect-version (deploy.py) ------------------------------------------------------------------

@pytest.mark.parametrize(("served", "expected", "match"), [
    ("fe0d0a15ce627498056dc70f7b12d5cffbea81b7", "fe0d0a15ce627498056dc70f7b12d5cffbea81b7", True),
    ("fe0d0a15ce627498056dc70f7b12d5cffbea81b7", "FE0D0A1", True),  # git's short form
    ("fe0d0a1", "fe0d0a15ce627498056dc70f7b12d5cffbea81b7", True),  # a build that reports it short
    ("fe0d0a15ce627498056dc70f7b12d5cffbea81b7", "fe0d", False),  # too short to mean one commit
    ("fe0d0a15ce627498056dc70f7b12d5cffbea81b7", "4f2a9c1", False),
    (None, "4f2a9c1", False),
    (12345678, "12345678", False),  # not a version string
])
def test_a_version_matches_whole_or_by_a_prefix_of_seven(served, expected, match):
    assert matches(served, expected) is match


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileHttp]:
    with HostileHttp() as server:
        yield server


def wait_on(hostile: HostileHttp, path: str, expected: str, within: float):
    hostile.reset()
    started = time.monotonic()
    wait = wait_for_version(hostile.base_url, Budget(http_timeout=1.0, http_deadline=2.0),
                            VersionField(path, "git_sha"), expected, what="t", within_s=within,
                            every_s=0.1)
    return wait, time.monotonic() - started


def test_the_new_version_is_seen_once_the_deploy_serves_it(hostile):
    wait, _ = wait_on(hostile, "/deploying-health", NEW_BUILD, within=10)
    assert wait.ok, wait.outcome
    outcomes = [a["outcome"] for a in wait.attempts]
    assert outcomes == [f"failed: version {OLD_BUILD} still serving"] * DEPLOY_OLD_ANSWERS + ["passed"]
    assert wait.outcome.startswith(f"after {DEPLOY_OLD_ANSWERS + 1} attempts")


def test_a_version_never_served_ends_within_its_deadline(hostile):
    wait, took = wait_on(hostile, "/deploying-health", "0123456789abcdef", within=1.5)
    assert not wait.ok
    assert re.fullmatch(rf"version {NEW_BUILD} still serving after [12] s", wait.outcome), wait.outcome
    assert took < 1.5 + 1


@pytest.mark.parametrize(("path", "finding"), [
    ("/unavailable", "/unavailable answered 503"),  # mid-rollout: polled again, not final
    ("/html", "expected JSON, got text/html"),
    ("/ok", "/ok has no git_sha"),
])
def test_a_health_endpoint_that_cannot_say_is_polled_until_the_deadline(hostile, path, finding):
    wait, took = wait_on(hostile, path, NEW_BUILD, within=1.0)
    assert not wait.ok and finding in wait.outcome, wait.outcome
    assert len(wait.attempts) >= 2 and took < 1.0 + 2 + 1  # one HTTP deadline may straddle it



@pytest.mark.sandbox
def test_the_sandbox_serving_the_expected_version_is_checked_at_once(sandbox_pytester: ChecksPytester):
    run = sandbox_pytester.run("-m", "ingest_stalled", "--expect-version", GIT_SHA[:7])
    [wait] = run.results["waits"]
    assert wait["ok"] and len(wait["attempts"]) == 1, wait
    assert wait["what"] == f"opsmantik serves version {GIT_SHA[:7]} (/api/health git_sha)"
    assert run.ret == 0 and set(run.states().values()) == {"PASS"}, run.messages()


@pytest.mark.sandbox
def test_the_old_version_still_serving_leaves_every_check_unknown(sandbox_pytester: ChecksPytester):
    started = time.monotonic()
    run = sandbox_pytester.run("-m", "ingest_stalled", "--expect-version", "4f2a9c1",
                               "--expect-version-within", "3")
    took = time.monotonic() - started
    assert run.ret == 3
    assert set(run.states().values()) == {"UNKNOWN"}
    message = run.messages()["IS-2"]
    assert re.match(rf"VersionNotServed: version {GIT_SHA} still serving after [23] s, expected "
                    r"4f2a9c1 \(--expect-version\)", message), message
    check = next(c for c in run.results["checks"] if c["item"] == "IS-2")
    assert [e["kind"] for e in check["evidence"]] == ["attempt"] * len(run.results["waits"][0]["attempts"])
    assert took < 3 + 30  # the deadline plus two pytest start-ups, far below the 300 s default


def test_expecting_a_version_of_a_target_that_serves_none_is_a_usage_error(example_pytester):
    example_pytester.env_file("sandbox", "LAUNCHSIN_BASE_URL=http://127.0.0.1:1\n")
    run = example_pytester.run("--expect-version", "4f2a9c1")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert any("no system of target sandbox (launchsin) says which version it serves" in line
               for line in run.errlines), run.errlines


# --until-green (recovery.py) -------------------------------------------------------------------

RECOVERING = '''
import os, pathlib, pytest
pytestmark = [pytest.mark.ingest_stalled, pytest.mark.system("opsmantik")]
COUNTS = pathlib.Path(os.environ["COUNTS"])

def attempt(name):
    path = COUNTS / name
    made = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(made))
    return made

def test_is1_passes(evidence):
    """IS-1: The example passes."""
    attempt("is1")

def test_is2_recovers(evidence):
    """IS-2: The example recovers on its third attempt."""
    made = attempt("is2")
    evidence.value("attempt", made, expected="3", source="example")
    assert made >= int(os.environ.get("RECOVERS_AT", "3")), f"attempt {made}: not recovered yet"

def test_is3_warns(evidence):
    """IS-3: The example warns until its second attempt."""
    if attempt("is3") < 2:
        evidence.warn("still warm")

@pytest.mark.side_effect("writes to the example target")
def test_is6_side_effect(evidence):
    """IS-6: The example changes the target."""
    attempt("is6")
    assert False, "the side effect failed"
'''


@pytest.fixture
def recovering(example_pytester: ChecksPytester, monkeypatch, tmp_path) -> ChecksPytester:
    example_pytester.env_file("sandbox", "OPSMANTIK_BASE_URL=http://127.0.0.1:1\n")
    example_pytester.only_check("test_000_recovering.py", RECOVERING)
    counts = tmp_path / "counts"
    counts.mkdir()
    monkeypatch.setenv("COUNTS", str(counts))
    return example_pytester


def counts(project: ChecksPytester) -> dict[str, int]:
    folder = Path(os.environ["COUNTS"])
    return {p.name: int(p.read_text()) for p in folder.iterdir()}


def test_until_green_reruns_what_is_not_green_and_keeps_every_attempt(recovering: ChecksPytester):
    xml = recovering.path / "r.xml"
    run = recovering.run("--until-green", "20", "--until-green-every", "0.2", "--junitxml", str(xml))
    assert run.ret == 0, run.messages()
    assert run.states() == {"IS-1": "PASS", "IS-2": "PASS", "IS-3": "PASS"}
    assert counts(recovering) == {"is1": 1, "is2": 3, "is3": 2}
    is2 = next(c for c in run.results["checks"] if c["item"] == "IS-2")
    assert [(e["number"], e["outcome"]) for e in is2["evidence"] if e["kind"] == "attempt"] == [
        (1, "FAIL: attempt 1: not recovered yet"), (2, "FAIL: attempt 2: not recovered yet")]
    assert is2["evidence"][2]["text"].startswith("attempt 3 at ")
    assert is2["evidence"][3]["observed"] == 3  # the last attempt's own evidence follows
    [wait] = run.results["waits"]
    assert wait["ok"] and wait["outcome"].startswith("after 3 attempts"), wait
    cases = [case.get("name") for case in ET.parse(xml).iter("testcase")]
    assert cases == ["test_is1_passes", "test_is2_recovers", "test_is3_warns"]  # each once, as it ended
    assert not any(case.find("failure") is not None for case in ET.parse(xml).iter("testcase"))


def test_until_green_never_reruns_a_side_effect(recovering: ChecksPytester):
    run = recovering.run("--until-green", "20", "--until-green-every", "0.2", "--allow-side-effects")
    assert counts(recovering)["is6"] == 1
    assert run.states()["IS-6"] == "FAIL" and run.states()["IS-2"] == "PASS"
    [wait] = run.results["waits"]
    assert wait["ok"] and "(not re-run: IS-6 FAIL)" in wait["what"]
    assert run.ret == 2


def test_until_green_gives_up_at_its_deadline_with_the_last_finding(recovering: ChecksPytester,
                                                                    monkeypatch):
    monkeypatch.setenv("RECOVERS_AT", "1000")
    started = time.monotonic()
    run = recovering.run("--until-green", "2", "--until-green-every", "0.5", "--checks-warn-ok")
    assert time.monotonic() - started < 2 + 15
    assert run.ret == 2 and run.states()["IS-2"] == "FAIL"
    assert counts(recovering)["is3"] == 1  # WARN is green with --checks-warn-ok: not re-run
    [wait] = run.results["waits"]
    assert not wait["ok"]
    assert re.fullmatch(r"IS-2 FAIL still not green after [12] s", wait["outcome"]), wait
    assert run.messages()["IS-2"] == f"attempt {counts(recovering)['is2']}: not recovered yet"


@pytest.mark.parametrize("args", [["--until-green", "0"], ["--until-green", "5", "--until-green-every", "9"]])
def test_a_bad_until_green_is_a_usage_error(recovering: ChecksPytester, args):
    assert recovering.run(*args).ret == pytest.ExitCode.USAGE_ERROR
