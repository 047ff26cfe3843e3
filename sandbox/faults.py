"""Every named fault of every system, by name: the registry the CLI and the self-tests use."""

from __future__ import annotations

from sandbox.system import Context, Fault
from sandbox.systems import SYSTEMS

__all__ = ["FAULTS", "Context", "Fault", "unknown_fault_message"]

FAULTS: dict[str, Fault] = {fault.name: fault for system in SYSTEMS for fault in system.faults}


def unknown_fault_message(name: str) -> str:
    return f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}"
