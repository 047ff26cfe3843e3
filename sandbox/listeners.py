"""Everything of the sandbox's that listens on a port besides PostgreSQL: the daemon (every
system's apps) and the systems' external processes. `up` starts what is not running, keeps what
is, and waits until every listener answers.

Ports are assigned per (system, listener) in state.json. A listener keeps its port across
restarts when the port is free, so env files stay valid.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from sandbox import external, procs
from sandbox import state as state_file
from sandbox.errors import SandboxError
from sandbox.external import Key
from sandbox.files import tail
from sandbox.paths import REPO_ROOT, Home
from sandbox.state import State
from sandbox.system import Context, System

START_TIMEOUT = 15.0


@dataclass(frozen=True)
class Running:
    """What `up` left running: the daemon and each external process, by (system, listener)."""

    daemon: int
    processes: dict[Key, int]


def ensure(home: Home, state: State, contexts: list[Context]) -> Running:
    """Start what is not running (the daemon, processes found dead), stop processes of systems
    this sandbox no longer runs, and wait until every listener listens."""
    wanted = {(ctx.system.name, name) for ctx in contexts for name in ctx.system.listeners}
    for key in external.recorded(home):
        if key not in wanted:
            external.stop(home, *key)
    daemon = _ensure_daemon(home, state, [ctx.system for ctx in contexts], wanted)
    running = Running(daemon, {(ctx.system.name, name): _ensure_process(ctx, name)
                               for ctx in contexts for name in ctx.system.processes})
    _wait(home, state, running, wanted)
    return running


def daemon_pid(home: Home) -> int | None:
    """The daemon's pid, if it runs (checked by command line: pids are reused)."""
    pid = procs.read_pid(home.serve_pid)
    if not procs.alive(pid):
        return None
    assert pid is not None
    command = procs.cmdline(pid)
    ours = "sandbox" in command and "serve" in command and str(home.root) in command
    return pid if ours else None


def assigned(state: State) -> set[Key]:
    return {(system, name) for system, ports in state.ports.items() for name in ports}


def _ensure_daemon(home: Home, state: State, systems: list[System], wanted: set[Key]) -> int:
    running = daemon_pid(home)
    if running is not None and assigned(state) == wanted:
        return running
    if running is not None:
        # Started for another set of systems (one was added or left out since): it serves the
        # wrong apps.
        procs.stop(running)
    previous = state.ports
    # A process that runs keeps its port; every other listener its previous one if free.
    kept = {key for key in assigned(state) if external.pid(home, *key) is not None}
    state.ports = {
        system.name: {name: previous[system.name][name] if (system.name, name) in kept
                      else procs.usable_port(previous.get(system.name, {}).get(name, 0))
                      for name in system.listeners}
        for system in systems
    }
    state_file.save(home, state)
    pid = _spawn_daemon(home)
    home.serve_pid.write_text(f"{pid}\n")
    return pid


def _ensure_process(ctx: Context, name: str) -> int:
    system = ctx.system.name
    running = external.pid(ctx.home, system, name)
    if running is not None:
        return running
    port = procs.usable_port(ctx.port(name))
    if port != ctx.port(name):
        ctx.state.ports[system][name] = port
        state_file.save(ctx.home, ctx.state)
    return external.start(ctx, name, ctx.system.processes[name], port)


def _spawn_daemon(home: Home) -> int:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return procs.spawn_detached([sys.executable, "-m", "sandbox", "serve", "--home", str(home.root)],
                                home.serve_log, REPO_ROOT, env)


def _wait(home: Home, state: State, running: Running, wanted: set[Key]) -> None:
    ports = {key: state.ports[key[0]][key[1]] for key in sorted(wanted)}
    pids = [running.daemon, *running.processes.values()]

    def ready() -> bool:
        died = not all(procs.alive(pid) for pid in pids)
        return died or all(procs.listening(port) for port in ports.values())

    procs.wait_until(ready, START_TIMEOUT, interval=0.1)
    if not procs.alive(running.daemon):
        raise SandboxError(f"the daemon exited while starting; last lines of {home.serve_log}:\n"
                           f"{tail(home.serve_log)}")
    for (system, name), pid in running.processes.items():
        if not procs.alive(pid):
            log = home.process_log(system, name)
            raise SandboxError(f"{system} {name} exited while starting; last lines of {log}:\n"
                               f"{tail(log)}")
    silent = [key for key, port in ports.items() if not procs.listening(port)]
    if silent:
        # Stopped, so that the next `up` starts them afresh rather than waiting on them again.
        procs.stop(running.daemon)
        for key in silent:
            if key in running.processes:
                external.stop(home, *key)
        raise SandboxError(f"not listening within {START_TIMEOUT:.0f}s: "
                           + "; ".join(_silence(home, key, ports[key], running) for key in silent))


def _silence(home: Home, key: Key, port: int, running: Running) -> str:
    system, name = key
    log = home.process_log(system, name) if key in running.processes else home.serve_log
    return f"{system} {name} on port {port}, last lines of {log}:\n{tail(log)}"
