"""The systems this sandbox stands in for, and which of them a sandbox runs.

Adding a system is one package next to `opsmantik/` and one line in `REGISTERED`; the core needs
no change. By default a sandbox runs every registered system. RUNBOOK_SANDBOX_SYSTEMS, when set,
chooses: comma-separated registry names (`opsmantik,launchsin`) or `package.module:ATTR` paths to
a `System` defined elsewhere (the self-tests' throw-away system). Every command reads it, and the
daemon inherits it from `up`, so set it alike for all commands on one home.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

from sandbox.errors import SandboxError
from sandbox.launchsin import SYSTEM as LAUNCHSIN
from sandbox.opsmantik import SYSTEM as OPSMANTIK
from sandbox.revenueos import SYSTEM as REVENUEOS
from sandbox.system import System
from sandbox.trendspark import SYSTEM as TRENDSPARK

REGISTERED: tuple[System, ...] = (OPSMANTIK, LAUNCHSIN, REVENUEOS, TRENDSPARK)
SYSTEMS_VARIABLE = "RUNBOOK_SANDBOX_SYSTEMS"


def selected(environ: Mapping[str, str] | None = None) -> tuple[System, ...]:
    """The systems a sandbox runs: those RUNBOOK_SANDBOX_SYSTEMS names, else every one."""
    spec = (os.environ if environ is None else environ).get(SYSTEMS_VARIABLE, "")
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        return REGISTERED
    systems = tuple(_resolve(name) for name in names)
    seen = [system.name for system in systems]
    if len(set(seen)) != len(seen):
        raise SandboxError(f"{SYSTEMS_VARIABLE}={spec!r} names a system twice ({', '.join(seen)})")
    return systems


def _resolve(name: str) -> System:
    if ":" not in name:
        known = {system.name: system for system in REGISTERED}
        if name not in known:
            raise SandboxError(
                f"unknown system {name!r} in {SYSTEMS_VARIABLE}; registered: "
                f"{', '.join(known)} (or give a package.module:ATTR path to a System)")
        return known[name]
    module_name, _, attribute = name.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise SandboxError(f"cannot load {name!r} from {SYSTEMS_VARIABLE}: {exc}") from exc
    if not isinstance(found, System):
        raise SandboxError(f"{name!r} from {SYSTEMS_VARIABLE} is a {type(found).__name__}, "
                           "not a sandbox.system.System")
    return found
