"""`python -m sandbox serve`: the detached process behind `up` (apps, traffic, fault watching).

One asyncio loop serves every system's app with uvicorn; one thread per system runs its worker;
one thread re-reads DIR/faults.json four times a second. The daemon acknowledges a fault change
only once every worker has acted on it (see faultstore.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator

import uvicorn

from sandbox import state as state_file
from sandbox.asgi import RequestLog
from sandbox.faultstore import FaultSet, FaultStore
from sandbox.lifecycle import SandboxError
from sandbox.paths import Home
from sandbox.procs import LOOPBACK
from sandbox.system import Context, Worker
from sandbox.systems import SYSTEMS

log = logging.getLogger("sandbox.daemon")

WATCH_EVERY = 0.25  # seconds between reads of faults.json
WORKER_POLL = 0.2  # seconds between a worker's looks at the fault set
RETRY_AFTER_ERROR = 1.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class DaemonError(SandboxError):
    """The daemon cannot start."""


class FaultWatcher:
    """The daemon's current view of the active faults, refreshed from disk."""

    def __init__(self, store: FaultStore) -> None:
        self.store = store
        self._current = store.read()

    def current(self) -> FaultSet:
        return self._current

    def active(self) -> frozenset[str]:
        return self._current.active

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(WATCH_EVERY):
            try:
                latest = self.store.read()
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("cannot read the fault set, keeping the last one: %s", exc)
                continue
            if latest != self._current:
                log.info("faults now: %s (version %d)", sorted(latest.active) or "none",
                         latest.version)
                self._current = latest


class AckBoard:
    """Acknowledges a fault-set version once every system's worker has seen it."""

    def __init__(self, store: FaultStore, systems: list[str]) -> None:
        self.store = store
        self._seen = dict.fromkeys(systems, -1)
        self._written = -1
        self._lock = threading.Lock()

    def seen(self, system: str, version: int) -> None:
        with self._lock:
            self._seen[system] = version
            lowest = min(self._seen.values())
            if lowest > self._written:
                self.store.acknowledge(lowest)
                self._written = lowest


def _run_worker(
    ctx: Context, watcher: FaultWatcher, board: AckBoard, stop: threading.Event
) -> None:
    worker: Worker = ctx.system.worker(ctx)
    due = 0.0
    while not stop.is_set():
        faults = watcher.current()
        # Acknowledged before acting: every step from here on runs under this fault set.
        board.seen(ctx.system.name, faults.version)
        if time.monotonic() >= due:
            due = time.monotonic() + _step(ctx, worker, faults.active)
        stop.wait(WORKER_POLL)
    worker.close()


def _step(ctx: Context, worker: Worker, active: frozenset[str]) -> float:
    try:
        return worker.step(active)
    except Exception as exc:  # keep the traffic going; a restarted database is normal here
        log.warning("%s worker: %s: %s", ctx.system.name, type(exc).__name__, exc)
        return RETRY_AFTER_ERROR


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The daemon owns SIGTERM/SIGINT and stops every server itself (see _serve_all).
        yield


def _server(ctx: Context) -> _Server:
    app = RequestLog(ctx.system.app(ctx), ctx.system.name, ctx.home.requests_log)
    config = uvicorn.Config(app, host=LOOPBACK, port=ctx.app_port, lifespan="off",
                            access_log=False, log_level="warning", server_header=False)
    return _Server(config)


async def _serve_all(servers: list[_Server]) -> None:
    def shut_down() -> None:
        log.info("stopping")
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shut_down)
    await asyncio.gather(*(server.serve() for server in servers))


@contextlib.contextmanager
def _only_daemon(home: Home) -> Iterator[None]:
    """Refuse to start a second daemon on the same home."""
    fd = os.open(home.root / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise DaemonError(f"another daemon already serves {home.root}") from exc
    try:
        yield
    finally:
        os.close(fd)


def serve(home: Home) -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.Formatter.converter = time.gmtime
    with _only_daemon(home):
        state = state_file.load(home)
        store = FaultStore(home)
        watcher = FaultWatcher(store)
        board = AckBoard(store, [system.name for system in SYSTEMS])
        contexts = [Context(home, state, system, watcher.active) for system in SYSTEMS]
        stop = threading.Event()
        threads = [threading.Thread(target=watcher.run, args=(stop,), name="faults", daemon=True)]
        threads += [threading.Thread(target=_run_worker, args=(ctx, watcher, board, stop),
                                     name=f"{ctx.system.name}-worker", daemon=True)
                    for ctx in contexts]
        for thread in threads:
            thread.start()
        log.info("serving %s (pid %d)", ", ".join(f"{c.system.name} on :{c.app_port}"
                                                  for c in contexts), os.getpid())
        try:
            asyncio.run(_serve_all([_server(ctx) for ctx in contexts]))
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
        log.info("stopped")
