"""`python -m sandbox serve`: the detached process behind `up` (apps, traffic, fault watching).

One asyncio loop serves every app of every system with uvicorn, each on its own port; one thread
per system with a worker runs it; one thread re-reads DIR/faults.json four times a second. The
daemon acknowledges a fault change only once the apps answer by it (the watcher has read it)
and every worker has acted on it (see faultstore.py).
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
from sandbox.errors import SandboxError
from sandbox.faultstore import FaultSet, FaultStore
from sandbox.paths import Home
from sandbox.procs import LOOPBACK
from sandbox.system import App, Context, Worker
from sandbox.systems import selected

log = logging.getLogger("sandbox.daemon")

WATCH_EVERY = 0.25  # seconds between reads of faults.json
WORKER_POLL = 0.2  # seconds between a worker's looks at the fault set
RETRY_AFTER_ERROR = 1.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WATCHER = "faults"  # the apps' participant on the AckBoard: they read the watcher's view


class DaemonError(SandboxError):
    """The daemon cannot start."""


class AckBoard:
    """Acknowledges a fault-set version once every participant (the watcher, for the apps, and
    each system's worker) has seen it."""

    def __init__(self, store: FaultStore, participants: list[str]) -> None:
        self.store = store
        self._seen = dict.fromkeys(participants, -1)
        self._written = -1
        self._lock = threading.Lock()

    def seen(self, participant: str, version: int) -> None:
        with self._lock:
            self._seen[participant] = version
            lowest = min(self._seen.values())
            if lowest > self._written:
                self.store.acknowledge(lowest)
                self._written = lowest


class FaultWatcher:
    """The daemon's current view of the active faults, refreshed from disk."""

    def __init__(self, store: FaultStore, board: AckBoard) -> None:
        self.store = store
        self.board = board
        self._current = store.read()

    def current(self) -> FaultSet:
        return self._current

    def active(self) -> frozenset[str]:
        return self._current.active

    def run(self, stop: threading.Event) -> None:
        self.board.seen(WATCHER, self._current.version)
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
                self.board.seen(WATCHER, latest.version)


def _run_worker(
    ctx: Context, worker: Worker, watcher: FaultWatcher, board: AckBoard, stop: threading.Event
) -> None:
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


def _server(ctx: Context, name: str, app: App) -> _Server:
    logged = RequestLog(app.create(ctx), ctx.system.name, ctx.home.requests_log)
    config = uvicorn.Config(logged, host=LOOPBACK, port=ctx.port(name), lifespan="off",
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
        systems = selected()
        board = AckBoard(store, [WATCHER, *(s.name for s in systems if s.worker is not None)])
        watcher = FaultWatcher(store, board)
        contexts = [Context(home, state, system, watcher.active) for system in systems]
        stop = threading.Event()
        threads = [threading.Thread(target=watcher.run, args=(stop,), name="faults", daemon=True)]
        threads += [threading.Thread(target=_run_worker,
                                     args=(ctx, ctx.system.worker(ctx), watcher, board, stop),
                                     name=f"{ctx.system.name}-worker", daemon=True)
                    for ctx in contexts if ctx.system.worker is not None]
        for thread in threads:
            thread.start()
        servers = [(ctx, name, app) for ctx in contexts for name, app in ctx.system.apps.items()]
        log.info("serving %s (pid %d)", ", ".join(f"{ctx.system.name} {name} on :{ctx.port(name)}"
                                                  for ctx, name, _ in servers), os.getpid())
        try:
            asyncio.run(_serve_all([_server(*server) for server in servers]))
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
        log.info("stopped")
