"""`up`, `down` and `status`: the sandbox as a whole (cluster, databases, daemon, env file)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import db, procs
from sandbox import state as state_file
from sandbox.faultstore import FaultStore
from sandbox.files import locked, tail, write_private
from sandbox.paths import REPO_ROOT, Home
from sandbox.postgres import SUPERUSER, Cluster
from sandbox.roles import ensure_checks_role
from sandbox.state import State
from sandbox.system import Context
from sandbox.systems import SYSTEMS

DAEMON_START_TIMEOUT = 15.0
ENV_HEADER = (
    "# written by `python -m sandbox up`; "
    "the sandbox's own secrets, regenerated at every fresh up\n"
)


class SandboxError(Exception):
    """A lifecycle command failed; the message says why and what to look at."""


@dataclass
class Report:
    """What a command did or found, printed by the CLI."""

    lines: list[str] = field(default_factory=list)
    running: bool = False


def up(home: Home, env_file: Path) -> Report:
    started = time.monotonic()
    home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with locked(home.lock):
        state = _load_or_create(home)
        cluster = Cluster(home)
        if not cluster.initialized:
            cluster.init(state.superuser_password)
        if cluster.pid() is None:
            state.pg_port = _usable_port(state.pg_port)
            state_file.save(home, state)
            cluster.start(state.pg_port)
        summaries = _provision(home, state)
        daemon = _ensure_daemon(home, state)
        _write_env_file(home, state, env_file)
    elapsed = time.monotonic() - started
    summary = (f"sandbox up in {elapsed:.1f}s: postgres 127.0.0.1:{state.pg_port} "
               f"(pid {cluster.pid()}), daemon pid {daemon}, "
               + ", ".join(f"{name} http://127.0.0.1:{state.app_ports[name]}" for name in
                           state.app_ports)
               + "; " + "; ".join(summaries) + _faults_note(home))
    return Report([str(env_file), summary], running=True)


def down(home: Home) -> Report:
    if not home.root.exists():
        return Report([f"nothing at {home.root}; nothing to stop"])
    with locked(home.lock):
        stopped = []
        pid = daemon_pid(home)
        if pid is not None:
            procs.stop(pid)
            stopped.append(f"daemon (pid {pid})")
        home.serve_pid.unlink(missing_ok=True)
        if (home.pgdata / "postmaster.pid").exists():
            cluster = Cluster(home)
            pg = cluster.pid()
            cluster.stop()
            if pg is not None:
                stopped.append(f"postgres (pid {pg})")
    return Report([f"stopped {' and '.join(stopped)}" if stopped else "sandbox was not running"])


def status(home: Home) -> Report:
    try:
        state = state_file.load(home)
    except state_file.StateError as exc:
        return Report([f"sandbox: down ({exc})"])
    pg = procs.read_pid(home.pgdata / "postmaster.pid")
    pg = pg if procs.alive(pg) else None
    daemon = daemon_pid(home)
    running = pg is not None and daemon is not None
    faults = FaultStore(home).read()
    word = "up" if running else "down" if pg is None and daemon is None else "degraded"
    lines = [
        f"sandbox: {word} (home {home.root})",
        f"postgres: {_pid_text(pg)}, 127.0.0.1:{state.pg_port}, log {home.pg_log}",
        f"daemon: {_pid_text(daemon)}, log {home.serve_log}",
        *(f"{name}: app http://127.0.0.1:{port}" for name, port in state.app_ports.items()),
        f"active faults: {', '.join(sorted(faults.active)) or 'none'}",
    ]
    return Report(lines, running=running)


def is_running(home: Home) -> bool:
    return status(home).running


def daemon_pid(home: Home) -> int | None:
    """The daemon's pid, if it runs (checked by command line: pids are reused)."""
    pid = procs.read_pid(home.serve_pid)
    if not procs.alive(pid):
        return None
    assert pid is not None
    command = procs.cmdline(pid)
    ours = "sandbox" in command and "serve" in command and str(home.root) in command
    return pid if ours else None


def contexts(home: Home, state: State) -> list[Context]:
    store = FaultStore(home)
    return [Context(home, state, system, lambda: store.read().active) for system in SYSTEMS]


def _pid_text(pid: int | None) -> str:
    return f"running (pid {pid})" if pid else "not running"


def _faults_note(home: Home) -> str:
    active = FaultStore(home).read().active
    return f"; ACTIVE FAULTS: {', '.join(sorted(active))}" if active else ""


def _load_or_create(home: Home) -> State:
    if home.state.exists():
        state = state_file.load(home)
    else:
        if home.pgdata.exists():
            raise SandboxError(
                f"{home.pgdata} exists but {home.state} does not; remove {home.root}"
            )
        state = State.fresh()
    for system in SYSTEMS:  # a system added since this home was made gets its secrets now
        state.systems.setdefault(system.name, system.new_settings())
    state_file.save(home, state)
    return state


def _usable_port(previous: int) -> int:
    """Keep the port of the last run when it is free, so env files stay valid across restarts."""
    return previous if previous and procs.port_free(previous) else procs.free_port()


def _provision(home: Home, state: State) -> list[str]:
    with db.connect(state.pg_port, SUPERUSER, state.superuser_password, "postgres") as conn:
        ensure_checks_role(conn, state.checks_ro_password)
    return [ctx.system.provision(ctx) for ctx in contexts(home, state)]


def _ensure_daemon(home: Home, state: State) -> int:
    running = daemon_pid(home)
    if running is not None and all(system.name in state.app_ports for system in SYSTEMS):
        return running
    if running is not None:
        # Started before a system was added to the sandbox: it serves no app for that one.
        procs.stop(running)
    for system in SYSTEMS:
        state.app_ports[system.name] = _usable_port(state.app_ports.get(system.name, 0))
    state_file.save(home, state)
    pid = _spawn_daemon(home)
    home.serve_pid.write_text(f"{pid}\n")
    _wait_for_daemon(home, pid, list(state.app_ports.values()))
    return pid


def _spawn_daemon(home: Home) -> int:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    log = os.open(home.serve_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    # The daemon is meant to outlive this process: silence Popen's "still running" warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "sandbox", "serve", "--home", str(home.root)],
                cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,  # survives the terminal, `up`
            )
        finally:
            os.close(log)
        pid = process.pid
        del process
    return pid


def _wait_for_daemon(home: Home, pid: int, ports: list[int]) -> None:
    def ready() -> bool:
        return not procs.alive(pid) or all(procs.listening(port) for port in ports)

    procs.wait_until(ready, DAEMON_START_TIMEOUT, interval=0.1)
    if not procs.alive(pid):
        raise SandboxError(f"the daemon exited while starting; last lines of {home.serve_log}:\n"
                           f"{tail(home.serve_log)}")
    if not all(procs.listening(port) for port in ports):
        procs.stop(pid)
        raise SandboxError(f"the apps did not listen on {ports} within {DAEMON_START_TIMEOUT:.0f}s;"
                           f" last lines of {home.serve_log}:\n{tail(home.serve_log)}")


def _write_env_file(home: Home, state: State, env_file: Path) -> None:
    lines = [f"{name}={value}" for ctx in contexts(home, state)
             for name, value in ctx.system.env(ctx).items()]
    write_private(env_file, ENV_HEADER + "\n".join(lines) + "\n")
