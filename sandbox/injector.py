"""`fault` and `heal`: switch a named fault on or off in a running sandbox.

Order matters. Applying: the name goes into faults.json, the daemon acknowledges it (traffic has
stopped, the app answers differently), then the fault's database part runs. Healing: the name
goes, the daemon acknowledges, then the database part is undone.
"""

from __future__ import annotations

from sandbox import state as state_file
from sandbox.errors import SandboxError
from sandbox.faults import selected_faults
from sandbox.faultstore import FaultStore
from sandbox.files import locked
from sandbox.lifecycle import contexts, is_running
from sandbox.paths import Home
from sandbox.system import Context, Fault
from sandbox.systems import SYSTEMS_VARIABLE

DAEMON_ACK_TIMEOUT = 10.0


def apply(home: Home, name: str) -> str:
    fault = selected_faults()[name]
    with locked(home.lock):
        ctx = _context(home, fault)
        store = FaultStore(home)
        if name in store.read().active:
            return f"{name} is already active"
        _switch(home, store, add=name)
        try:
            fault.apply(ctx)
        except Exception as exc:
            _switch(home, store, remove=name)
            _undo_partial(fault, ctx)
            raise SandboxError(f"applying {name} failed, nothing is left active: {exc}") from exc
    return f"{name} applied; expect {_turns(fault)}"


def heal(home: Home, name: str) -> str:
    fault = selected_faults()[name]
    with locked(home.lock):
        ctx = _context(home, fault)
        store = FaultStore(home)
        if name not in store.read().active:
            return f"{name} is not active; nothing to heal"
        _switch(home, store, remove=name)
        try:
            fault.heal(ctx)
        except Exception as exc:
            _switch(home, store, add=name)
            raise SandboxError(f"healing {name} failed, it stays active: {exc}") from exc
    return f"{name} healed"


def heal_all(home: Home) -> list[str]:
    active = sorted(FaultStore(home).read().active & selected_faults().keys())
    return [heal(home, name) for name in active] or ["no fault is active"]


def probe(home: Home, name: str) -> bool:
    """The fault's own look at what it breaks: True when healthy."""
    fault = selected_faults()[name]
    return fault.probe(_context(home, fault))


def _turns(fault: Fault) -> str:
    return ", ".join(f"{item} {'/'.join(states)}" for item, states in fault.turns.items())


def _context(home: Home, fault: Fault) -> Context:
    if not is_running(home):
        raise SandboxError(f"the sandbox at {home.root} is not running; start it with "
                           "`python -m sandbox up`")
    state = state_file.load(home)
    if fault.system not in state.ports:
        raise SandboxError(f"the sandbox at {home.root} does not run {fault.system} (it runs "
                           f"{', '.join(state.ports)}); start it with {fault.system} in "
                           f"{SYSTEMS_VARIABLE}, or unset that variable")
    return next(ctx for ctx in contexts(home, state) if ctx.system.name == fault.system)


def _switch(home: Home, store: FaultStore, *, add: str = "", remove: str = "") -> None:
    version = store.change(add=[add] if add else [], remove=[remove] if remove else []).version
    if not store.wait_acknowledged(version, DAEMON_ACK_TIMEOUT):
        raise SandboxError(f"the daemon did not take up the change within "
                           f"{DAEMON_ACK_TIMEOUT:.0f}s; see {home.serve_log}")


def _undo_partial(fault: Fault, ctx: Context) -> None:
    try:
        fault.heal(ctx)
    except Exception:  # best effort: the apply error is the one worth reporting
        pass
