"""Every check against the real sandbox: all green when healthy, and each fault, from its own
declaration, breaks what its probe looks at, turns exactly the items it declares in the states it
declares, and heals back to healthy with nothing left behind.

The matrix holds in any test order: each fault starts from a healthy probe, and each run
requires every undeclared item of its system to PASS, so a heal that left something behind
turns up in the run after it as well as in its own probe and its system's leftovers.
"""

from __future__ import annotations

import json

import pytest

from fixtures.checklist import load_runbooks
from sandbox.faults import FAULTS
from sandbox.systems import REGISTERED
from tests.conftest import REPO, ChecksPytester, Run
from tests.sandbox_handle import Sandbox

pytestmark = pytest.mark.sandbox

RUNBOOKS = load_runbooks(REPO / "runbooks")


def automated_items(systems: set[str]) -> set[str]:
    return {i.id for rb in RUNBOOKS.values() if rb.system in systems
            for i in rb.items if i.mode != "manual"}


def markers_of(system: str) -> str:
    """The -m expression selecting the runbooks of one system (the others have their own
    databases and apps, which its faults do not touch)."""
    return " or ".join(m for rb in RUNBOOKS.values() if rb.system == system for m in rb.markers)


def sandbox_systems(sandbox: Sandbox) -> set[str]:
    names = {line.split("_", 1)[0].lower() for line in sandbox.env_file.read_text().splitlines()
             if "=" in line and not line.startswith("#")}
    return names & {rb.system for rb in RUNBOOKS.values()}


def not_green(run: Run) -> dict[str, str]:
    return {item: state for item, state in run.states().items() if state != "PASS"}


def test_every_fault_is_declared_whole() -> None:
    """The closed world: every registered system's faults are in the matrix, each with its own
    probe, turning only automated items of its own system's runbooks."""
    assert sorted(FAULTS) == sorted(f.name for system in REGISTERED for f in system.faults)
    for fault in FAULTS.values():
        assert callable(fault.probe), f"{fault.name} has no probe"
        assert fault.turns, f"{fault.name} turns no item"
        strangers = set(fault.turns) - automated_items({fault.system})
        assert not strangers, f"{fault.name} turns {strangers}, not automated items of {fault.system}"
        decisions = {d.id for rb in RUNBOOKS.values() if rb.system == fault.system
                     for d in rb.decisions}
        assert fault.concludes, f"{fault.name} names no conclusion of its runbooks' diagnosis"
        assert set(fault.concludes) <= decisions, f"{fault.name}: {fault.concludes} not in {decisions}"


def test_healthy_sandbox_passes_every_item(sandbox: Sandbox, sandbox_pytester: ChecksPytester) -> None:
    run = sandbox_pytester.run("--allow-side-effects")
    assert not_green(run) == {}, json.dumps(run.messages(), indent=2)
    assert run.ret == 0
    systems = sandbox_systems(sandbox)
    assert "opsmantik" in systems
    assert set(run.states()) == automated_items(systems)
    assert set(run.results["db_now"]) == systems
    assert {system: sandbox.leftovers(system) for system in systems} == dict.fromkeys(systems, [])
    assert {d["conclusion"] for d in run.results["diagnosis"]} == {"healthy: every automated item passes"}


@pytest.mark.parametrize("marker", sorted(m for rb in RUNBOOKS.values() for m in rb.markers))
def test_default_run_of_an_incident_is_green(sandbox_pytester: ChecksPytester, marker: str) -> None:
    run = sandbox_pytester.run("-m", marker, "--target", "sandbox")
    assert run.ret == 0, json.dumps(run.messages(), indent=2)
    side_effects = {i.id for rb in RUNBOOKS.values() for i in rb.items
                    if i.marker == marker and i.runs == "side effect"}
    assert {n["item"] for n in run.results["not_run"]} == side_effects


@pytest.mark.parametrize("fault", sorted(FAULTS), ids=str)
def test_fault_turns_exactly_its_items_and_heals(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester, fault: str
) -> None:
    declared = FAULTS[fault].turns
    with sandbox.broken(fault):
        run = sandbox_pytester.run("--allow-side-effects", "-m", markers_of(FAULTS[fault].system))
    changed = not_green(run)
    assert set(changed) == set(declared), json.dumps(run.messages(), indent=2)
    for item, state in changed.items():
        assert state in declared[item], f"{item} is {state}: {run.messages()[item]}"
    assert run.ret != 0
    concluded = {d["decision"] for d in run.results["diagnosis"]}
    assert set(FAULTS[fault].concludes) <= concluded, json.dumps(run.results["diagnosis"], indent=2)
