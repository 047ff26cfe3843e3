"""Every check against the real sandbox: all green when healthy, and each fault turns exactly the
items it declares, in the states it declares, then heals back to green."""

from __future__ import annotations

import json

import pytest

from fixtures.checklist import load_runbooks
from sandbox.faults import FAULTS
from tests.conftest import REPO, ChecksPytester, Run, Sandbox

pytestmark = pytest.mark.sandbox

RUNBOOKS = load_runbooks(REPO / "runbooks")


def automated_items(*numbers: str) -> set[str]:
    return {i.id for n in numbers for i in RUNBOOKS[n].items if i.mode != "manual"}


def not_green(run: Run) -> dict[str, str]:
    return {item: state for item, state in run.states().items() if state != "PASS"}


def test_healthy_sandbox_passes_every_item(sandbox_pytester: ChecksPytester):
    run = sandbox_pytester.run("--allow-side-effects")
    assert not_green(run) == {}, json.dumps(run.messages(), indent=2)
    assert run.ret == 0
    assert set(run.states()) == automated_items("000", "002")
    assert set(run.results["db_now"]) == {"opsmantik"}


@pytest.mark.parametrize("marker", ["ingest_stalled", "partition_drift"])
def test_default_run_of_an_incident_is_green(sandbox_pytester: ChecksPytester, marker: str):
    run = sandbox_pytester.run("-m", marker, "--target", "sandbox")
    assert run.ret == 0, json.dumps(run.messages(), indent=2)
    assert run.results["not_run"], "side-effect items are listed as not run"


@pytest.mark.parametrize("fault", sorted(FAULTS), ids=str)
def test_fault_turns_exactly_its_items(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester, fault: str
):
    declared = FAULTS[fault].turns
    sandbox.fault(fault)
    try:
        run = sandbox_pytester.run("--allow-side-effects")
    finally:
        sandbox.heal(fault)
    changed = not_green(run)
    assert set(changed) == set(declared), json.dumps(run.messages(), indent=2)
    for item, state in changed.items():
        assert state in declared[item], f"{item} is {state}: {run.messages()[item]}"
    assert run.ret != 0

    functions = " or ".join(f"test_{item.lower().replace('-', '')}_" for item in declared)
    healed = sandbox_pytester.run("--allow-side-effects", "-k", functions)
    assert not_green(healed) == {}, json.dumps(healed.messages(), indent=2)
    assert set(healed.states()) == set(declared)
