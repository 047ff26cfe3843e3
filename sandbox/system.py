"""The contract between the sandbox core and one system (OpsMantik, LaunchSin, ...).

A system is a package next to `opsmantik/` that exposes a `System`; `sandbox/systems.py` lists
them. The core (cluster, daemon, CLI, fault bookkeeping) talks to a system only through these
types, so adding one does not touch the core.

A system declares its database, its listeners and its faults:

- `apps`: ASGI apps, each served by the daemon on its own loopback port;
- `processes`: programs the sandbox runs for it (a Prometheus, say), each on its own loopback
  port, started detached by `up` and stopped by `down`, its output in the home;
- every listener may name the env variable that carries its URL in the env file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from starlette.types import ASGIApp

from sandbox import db
from sandbox.errors import SandboxError
from sandbox.faultstore import FaultStore
from sandbox.paths import Home
from sandbox.postgres import SUPERUSER
from sandbox.procs import LOOPBACK
from sandbox.roles import CHECKS_ROLE
from sandbox.state import State

Step = Callable[["Context"], None]
Probe = Callable[["Context"], bool]
AppFactory = Callable[["Context"], ASGIApp]


class Worker(Protocol):
    """A system's background activity in the daemon (traffic, partition upkeep)."""

    def step(self, active_faults: frozenset[str]) -> float:
        """Do one unit of work under the given faults; return the seconds until the next."""

    def close(self) -> None:
        """Release connections; the daemon is stopping."""


@dataclass(frozen=True)
class Context:
    """What a system's code works with, in the CLI, the daemon and the self-tests alike."""

    home: Home
    state: State
    system: System
    active_faults: Callable[[], frozenset[str]]

    @classmethod
    def of(cls, home: Home, state: State, system: System) -> Context:
        """A context outside the daemon: the active faults are read from DIR/faults.json."""
        store = FaultStore(home)
        return cls(home, state, system, lambda: store.read().active)

    @property
    def settings(self) -> dict[str, str]:
        return self.state.systems[self.system.name]

    def port(self, listener: str) -> int:
        try:
            return self.state.ports[self.system.name][listener]
        except KeyError:
            raise SandboxError(
                f"{self.home.state} has no port for {self.system.name} {listener}; run `up`"
            ) from None

    def url(self, listener: str) -> str:
        return f"http://{LOOPBACK}:{self.port(listener)}"

    def superuser(self, database: str | None = None) -> db.Connection:
        """The superuser, on the system's database unless another is named (e.g. `postgres`)."""
        return db.connect(self.state.pg_port, SUPERUSER, self.state.superuser_password,
                          database or self.system.database)

    def checks_ro(self) -> db.Connection:
        """The role the env file gives the checks, on the system's database."""
        return self.connect_as(CHECKS_ROLE, self.state.checks_ro_password)

    def connect_as(self, user: str, password: str) -> db.Connection:
        return db.connect(self.state.pg_port, user, password, self.system.database)


@dataclass(frozen=True)
class Fault:
    """A named way to break a system, the checklist items it must turn red, and a look at what
    it breaks.

    `turns` maps item IDs to the acceptable non-PASS states; every other item must stay PASS.
    While a fault is active its name is in DIR/faults.json, which the daemon (apps and traffic)
    reads. `apply` runs once the daemon has seen the name; `heal` runs once it has seen it gone,
    and must leave the system as healthy as a fresh `up` (data included). `probe` looks at the
    thing the fault breaks, at the source (the database as the superuser, the app over HTTP):
    True when healthy. `concludes` names the rows of the runbooks' decision tables (## Diagnosis)
    the run under this fault must report: the diagnosis an on-call engineer would read.
    """

    name: str
    system: str
    description: str
    turns: dict[str, tuple[str, ...]]
    apply: Step
    heal: Step
    probe: Probe
    concludes: tuple[str, ...] = ()


@dataclass(frozen=True)
class App:
    """An ASGI app of the system, served by the daemon on its own loopback port."""

    create: AppFactory
    url_variable: str | None = None  # the env variable that gets the app's URL


@dataclass(frozen=True)
class Process:
    """A program the sandbox runs for the system on its own loopback port.

    `command` builds its command line from the context and the port it must listen on. `up`
    starts it detached (output in DIR/<system>-<name>.log) and again whenever it is found dead;
    `down` stops it.
    """

    command: Callable[[Context, int], Sequence[str]]
    url_variable: str | None = None  # the env variable that gets its URL


Listener = App | Process


def no_leftovers(ctx: Context) -> list[str]:
    """For a system whose heals leave nothing a look could find."""
    return []


@dataclass(frozen=True)
class System:
    """One production system the sandbox stands in for: its database, listeners, traffic and
    faults.

    `database_variable` gets checks_ro's URL of the database, then each listener's
    `url_variable` its URL, then `env` the rest: the env file lists them in that order.
    `leftovers` looks for what a heal may have left behind (fault rows, a gap in the data): one
    line per finding, none when the system is as a fresh `up` leaves it.
    """

    name: str
    database: str
    database_variable: str
    new_settings: Callable[[], dict[str, str]]
    provision: Callable[[Context], str]
    env: Callable[[Context], dict[str, str]]
    apps: Mapping[str, App]
    faults: tuple[Fault, ...]
    processes: Mapping[str, Process] = field(default_factory=dict)
    worker: Callable[[Context], Worker] | None = None
    leftovers: Callable[[Context], list[str]] = no_leftovers

    def __post_init__(self) -> None:
        shared = set(self.apps) & set(self.processes)
        if shared:
            raise ValueError(f"system {self.name}: {sorted(shared)} is both an app and a process")
        strangers = [f.name for f in self.faults if f.system != self.name]
        if strangers:
            raise ValueError(f"system {self.name}: faults {strangers} name another system")

    @property
    def listeners(self) -> dict[str, Listener]:
        return {**self.apps, **self.processes}
