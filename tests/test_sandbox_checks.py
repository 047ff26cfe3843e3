"""Every check against the real sandbox: all green when healthy, and each fault turns exactly the
items it declares, in the states it declares.

Healing is proven twice over without a run of its own: test_sandbox_cli.py and
test_sandbox_launchsin.py probe each fault's target before, during and after, and every fault run
here requires all items but the declared ones to PASS, so the items of the fault healed just
before it too. The last test runs everything once more after all faults."""

from __future__ import annotations

import json

import pytest

from fixtures.checklist import load_runbooks
from sandbox.faults import FAULTS
from tests.conftest import REPO, ChecksPytester, Run, Sandbox

pytestmark = pytest.mark.sandbox

RUNBOOKS = load_runbooks(REPO / "runbooks")


def automated_items(systems: set[str]) -> set[str]:
    return {i.id for rb in RUNBOOKS.values() if rb.system in systems
            for i in rb.items if i.mode != "manual"}


def markers_of(system: str) -> str:
    """The -m expression selecting the runbooks of one system (the others have their own
    databases and apps, which its faults do not touch)."""
    return " or ".join(rb.marker for rb in RUNBOOKS.values() if rb.system == system)


def sandbox_systems(sandbox: Sandbox) -> set[str]:
    names = {line.split("_", 1)[0].lower() for line in sandbox.env_file.read_text().splitlines()
             if "=" in line and not line.startswith("#")}
    return names & {rb.system for rb in RUNBOOKS.values()}


def not_green(run: Run) -> dict[str, str]:
    return {item: state for item, state in run.states().items() if state != "PASS"}


def test_healthy_sandbox_passes_every_item(sandbox: Sandbox, sandbox_pytester: ChecksPytester):
    run = sandbox_pytester.run("--allow-side-effects")
    assert not_green(run) == {}, json.dumps(run.messages(), indent=2)
    assert run.ret == 0
    systems = sandbox_systems(sandbox)
    assert "opsmantik" in systems
    assert set(run.states()) == automated_items(systems)
    assert set(run.results["db_now"]) == systems


@pytest.mark.parametrize("marker", ["ingest_stalled", "partition_drift", "event_ingest"])
def test_default_run_of_an_incident_is_green(sandbox_pytester: ChecksPytester, marker: str):
    run = sandbox_pytester.run("-m", marker, "--target", "sandbox")
    assert run.ret == 0, json.dumps(run.messages(), indent=2)
    side_effects = {i.id for rb in RUNBOOKS.values() if rb.marker == marker
                    for i in rb.items if i.runs == "side effect"}
    assert {n["item"] for n in run.results["not_run"]} == side_effects


@pytest.mark.parametrize("fault", sorted(FAULTS), ids=str)
def test_fault_turns_exactly_its_items(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester, fault: str
):
    declared = FAULTS[fault].turns
    scope = markers_of(FAULTS[fault].system)
    sandbox.fault(fault)
    try:
        run = sandbox_pytester.run("--allow-side-effects", "-m", scope)
    finally:
        sandbox.heal(fault)
    changed = not_green(run)
    assert set(changed) == set(declared), json.dumps(run.messages(), indent=2)
    for item, state in changed.items():
        assert state in declared[item], f"{item} is {state}: {run.messages()[item]}"
    assert run.ret != 0


def test_all_green_again_after_every_fault(sandbox_pytester: ChecksPytester):
    """Runs after the fault matrix (file order): nothing any fault did is left behind."""
    run = sandbox_pytester.run("--allow-side-effects")
    assert not_green(run) == {}, json.dumps(run.messages(), indent=2)
