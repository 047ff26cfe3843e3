"""The contract between the sandbox core and one system (OpsMantik today, LaunchSin next).

A system is a package next to `opsmantik/` that exposes a `System`; `sandbox/systems.py` lists
them. The core (cluster, daemon, CLI, fault bookkeeping) talks to a system only through these
types, so adding one does not touch the core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import ASGIApp

from sandbox import db
from sandbox.paths import Home
from sandbox.postgres import SUPERUSER
from sandbox.state import State


class Worker(Protocol):
    """A system's background activity in the daemon (traffic, partition upkeep)."""

    def step(self, active_faults: frozenset[str]) -> float:
        """Do one unit of work under the given faults; return the seconds until the next."""

    def close(self) -> None:
        """Release connections; the daemon is stopping."""


@dataclass(frozen=True)
class Context:
    """What a system's code works with, in the CLI as in the daemon."""

    home: Home
    state: State
    system: System
    active_faults: Callable[[], frozenset[str]]

    @property
    def settings(self) -> dict[str, str]:
        return self.state.systems[self.system.name]

    @property
    def app_port(self) -> int:
        return self.state.app_ports[self.system.name]

    def superuser(self) -> db.Connection:
        return self.connect_as(SUPERUSER, self.state.superuser_password)

    def connect_as(self, user: str, password: str) -> db.Connection:
        return db.connect(self.state.pg_port, user, password, self.system.database)


@dataclass(frozen=True)
class Fault:
    """A named way to break a system, and the checklist items it must turn red.

    `turns` maps item IDs to the acceptable non-PASS states; every other item must stay PASS.
    While a fault is active its name is in DIR/faults.json, which the daemon (app and traffic)
    reads. `apply` runs once the daemon has seen the name; `heal` runs once it has seen it gone,
    and must leave the system as healthy as a fresh `up` (data included).
    """

    name: str
    system: str
    description: str
    turns: dict[str, tuple[str, ...]]
    apply: Callable[[Context], None]
    heal: Callable[[Context], None]


@dataclass(frozen=True)
class System:
    """One production system the sandbox stands in for: its database, app, traffic and faults."""

    name: str
    database: str
    new_settings: Callable[[], dict[str, str]]
    provision: Callable[[Context], str]
    env: Callable[[Context], dict[str, str]]
    app: Callable[[Context], ASGIApp]
    worker: Callable[[Context], Worker]
    faults: tuple[Fault, ...]
