"""The systems' external processes (a Prometheus, say): started detached by `up`, stopped by
`down`, like the daemon.

Each has a pid file DIR/processes/<system>-<name>.pid holding its pid and command line (after a
crash the pid alone may belong to an unrelated process by now) and its output in
DIR/<system>-<name>.log.
"""

from __future__ import annotations

import json
import os

from sandbox import procs
from sandbox.files import write_private
from sandbox.paths import Home
from sandbox.system import Context, Process

Key = tuple[str, str]  # (system, listener)


def pid(home: Home, system: str, name: str) -> int | None:
    """The process's pid, if it runs (a zombie does not)."""
    try:
        record = json.loads(home.process_pid(system, name).read_text())
        found, command = int(record["pid"]), " ".join(record["command"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if procs.alive(found) and procs.cmdline(found) == command else None


def start(ctx: Context, name: str, process: Process, port: int) -> int:
    home, system = ctx.home, ctx.system.name
    command = [str(part) for part in process.command(ctx, port)]
    home.processes.mkdir(mode=0o700, exist_ok=True)
    started = procs.spawn_detached(command, home.process_log(system, name), home.root, os.environ)
    record = {"pid": started, "system": system, "listener": name, "command": command}
    write_private(home.process_pid(system, name), json.dumps(record) + "\n")
    return started


def stop(home: Home, system: str, name: str) -> int | None:
    """Stop the process if it runs and forget it; return the pid it had."""
    running = pid(home, system, name)
    if running is not None:
        procs.stop(running)
    home.process_pid(system, name).unlink(missing_ok=True)
    return running


def recorded(home: Home) -> list[Key]:
    """Every process with a pid file, running or not."""
    keys = []
    for path in sorted(home.processes.glob("*.pid")):
        try:
            record = json.loads(path.read_text())
            keys.append((str(record["system"]), str(record["listener"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return keys
