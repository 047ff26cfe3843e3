"""Recovery polling: bounded by attempts and deadline, every attempt kept as evidence."""

from __future__ import annotations

import time

import pytest

from fixtures.evidence import Evidence
from fixtures.waiting import eventually


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
