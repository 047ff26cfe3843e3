"""The set of active faults on disk, and the daemon's acknowledgement of it.

DIR/faults.json holds `{"version": n, "active": [...]}`; every change bumps the version. The
daemon writes the highest version all its workers have acted on to DIR/faults.ack, so a command
can wait until, say, traffic has really stopped before it deletes the last hour of sessions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sandbox import procs
from sandbox.files import locked, write_private
from sandbox.paths import Home


@dataclass(frozen=True)
class FaultSet:
    version: int
    active: frozenset[str]


class FaultStore:
    def __init__(self, home: Home) -> None:
        self.home = home

    def read(self) -> FaultSet:
        try:
            raw = json.loads(self.home.faults.read_text())
            return FaultSet(int(raw["version"]), frozenset(str(n) for n in raw["active"]))
        except FileNotFoundError:
            return FaultSet(0, frozenset())

    def change(self, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> FaultSet:
        with locked(self.home.root / "faults.lock"):
            current = self.read()
            active = (current.active | frozenset(add)) - frozenset(remove)
            updated = FaultSet(current.version + 1, active)
            body = {"version": updated.version, "active": sorted(updated.active)}
            write_private(self.home.faults, json.dumps(body) + "\n")
        return updated

    def acknowledged(self) -> int:
        try:
            return int(self.home.faults_ack.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def acknowledge(self, version: int) -> None:
        write_private(self.home.faults_ack, f"{version}\n")

    def wait_acknowledged(self, version: int, timeout: float) -> bool:
        return procs.wait_until(lambda: self.acknowledged() >= version, timeout, interval=0.1)
