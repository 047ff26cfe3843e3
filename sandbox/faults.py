"""Every named fault by name: of every registered system (`FAULTS`, for the self-tests and the
docs), or of the systems this sandbox runs (`selected_faults`, for the CLI)."""

from __future__ import annotations

from collections.abc import Iterable

from sandbox.system import Context, Fault, System
from sandbox.systems import REGISTERED, selected

__all__ = ["FAULTS", "Context", "Fault", "by_name", "selected_faults", "unknown_fault_message"]


def by_name(systems: Iterable[System]) -> dict[str, Fault]:
    faults: dict[str, Fault] = {}
    for system in systems:
        for fault in system.faults:
            if fault.name in faults:
                raise ValueError(f"fault {fault.name!r} is declared by {faults[fault.name].system}"
                                 f" and {system.name}: fault names must be unique")
            faults[fault.name] = fault
    return faults


FAULTS: dict[str, Fault] = by_name(REGISTERED)


def selected_faults() -> dict[str, Fault]:
    return by_name(selected())


def unknown_fault_message(name: str, known: Iterable[str]) -> str:
    return f"unknown fault {name!r}; known faults: {', '.join(sorted(known))}"
