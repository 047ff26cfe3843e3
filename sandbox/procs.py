"""Process and port helpers shared by PostgreSQL, the daemon and the systems' processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil  # type: ignore[import-untyped]

LOOPBACK = "127.0.0.1"


def alive(pid: int | None) -> bool:
    """True if `pid` runs. A zombie does not: when nothing reaps orphans (some container
    inits do not), a stopped daemon lingers as one, and `kill(pid, 0)` would still succeed."""
    if not pid:
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def read_pid(path: Path) -> int | None:
    """The first line of a pid file (postmaster.pid has more lines after it)."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except (FileNotFoundError, PermissionError):
        return None
    return int(first) if first.isdigit() else None


def cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def spawn_detached(command: Sequence[str], log: Path, cwd: Path, env: Mapping[str, str]) -> int:
    """Start `command` in its own session, output appended to `log`; return its pid.

    Meant to outlive the caller (`up` exits, the daemon and processes stay): its own session
    spares it a Ctrl-C in the caller's terminal, and nothing waits for it here."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    # Silence Popen's "still running" warning: outliving us is the point.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            process = subprocess.Popen(
                list(command), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=fd,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            os.close(fd)
        pid = process.pid
        del process
    return pid


def stop(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `timeout` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_until(lambda: not alive(pid), wait):
            return


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition()` until it is true or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: a port whose last connections linger in TIME_WAIT is reusable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; there is a small race until used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


def usable_port(previous: int) -> int:
    """Keep the port of the last run when it is free, so env files stay valid across restarts."""
    return previous if previous and port_free(previous) else free_port()


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0
