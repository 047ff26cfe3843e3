"""The one handle the self-tests hold on a sandbox: its command line, its env file, connections
to its databases and apps, and its faults' own probes.

It reads the sandbox's state with the sandbox's own loader and builds the same `Context` the
CLI and the daemon hand to a system, so a probe runs here exactly as `python -m sandbox probe`
runs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from dotenv import dotenv_values

from sandbox import db
from sandbox import state as state_file
from sandbox.faults import by_name
from sandbox.paths import Home
from sandbox.postgres import SUPERUSER
from sandbox.state import State
from sandbox.system import Context, Fault, System
from sandbox.systems import SYSTEMS_VARIABLE, selected

REPO = Path(__file__).resolve().parent.parent
CLI_TIMEOUT = 180  # seconds for any command; a first `up` builds both databases in about 5
HTTP_TIMEOUT = 10.0

Params = Sequence[Any] | Mapping[str, Any]


@contextlib.contextmanager
def temporary_root(name: str) -> Iterator[Path]:
    """A directory for a sandbox home, removed afterwards.

    Not under pytest's tmp_path: every pytest session started as root makes pytest's base
    directory private again (mode 0700), which cuts PostgreSQL, running as another user there,
    off from its data directory in the middle of a concurrent run."""
    root = Path(tempfile.mkdtemp(prefix=f"runbook-{name}-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Sandbox:
    """A sandbox home and the env file its `up` writes.

    `systems` is what RUNBOOK_SANDBOX_SYSTEMS is set to for every command; None runs every
    registered system (whatever the variable says in the caller's environment).
    """

    home: Path
    env_file: Path
    systems: str | None = None

    # The command line ---------------------------------------------------------------------------

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m sandbox ARGS --home HOME`, whatever its exit code."""
        env = {k: v for k, v in os.environ.items() if k != SYSTEMS_VARIABLE}
        if self.systems is not None:
            env[SYSTEMS_VARIABLE] = self.systems
        return subprocess.run([sys.executable, "-m", "sandbox", *args, "--home", str(self.home)],
                              cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT, check=False)

    def ok(self, *args: str) -> str:
        """The same, which must succeed; its output."""
        __tracebackhide__ = True
        result = self.cli(*args)
        assert result.returncode == 0, (
            f"sandbox {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def up(self, *options: str) -> str:
        """`up` writing this handle's env file; `options` such as `--pg-bin DIR`."""
        return self.ok("up", "--env-file", str(self.env_file), *options)

    def fault(self, name: str) -> None:
        self.ok("fault", name)

    def heal(self, name: str) -> None:
        self.ok("heal", name)

    # What it wrote and remembers ----------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        return {k: v or "" for k, v in dotenv_values(self.env_file).items()}

    @property
    def state(self) -> State:
        return state_file.load(Home.at(self.home))

    @property
    def registry(self) -> tuple[System, ...]:
        """The systems this sandbox runs, resolved as the sandbox resolves them."""
        return selected({} if self.systems is None else {SYSTEMS_VARIABLE: self.systems})

    @property
    def faults(self) -> dict[str, Fault]:
        return by_name(self.registry)

    def system(self, name: str) -> System:
        return next(system for system in self.registry if system.name == name)

    def context(self, system: str) -> Context:
        """What the CLI hands the system's code: its state, and the active faults on disk."""
        return Context.of(Home.at(self.home), self.state, self.system(system))

    # Databases and apps -------------------------------------------------------------------------

    def superuser_url(self, database: str) -> str:
        state = self.state
        return db.url(SUPERUSER, state.superuser_password, state.pg_port, database)

    def checks_ro_url(self, system: str) -> str:
        """What the env file gives the checks for the system's database."""
        return self.env[self.system(system).database_variable]

    def superuser(self, database: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.superuser_url(database), autocommit=True)

    def checks_ro(self, system: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.checks_ro_url(system), autocommit=True)

    def scalar(self, sql: str, params: Params | None = None, *, database: str) -> Any:
        with self.superuser(database) as conn:
            row = conn.execute(sql, params).fetchone()
        assert row is not None, f"no row from {sql}"
        return row[0]

    def http(self, system: str, listener: str = "app") -> httpx.Client:
        return httpx.Client(base_url=self.context(system).url(listener), timeout=HTTP_TIMEOUT)

    # Faults, seen through their own probes ------------------------------------------------------

    def probe(self, name: str) -> bool:
        """The fault's own look at what it breaks: True when healthy."""
        fault = self.faults[name]
        return fault.probe(self.context(fault.system))

    def leftovers(self, system: str) -> list[str]:
        return self.system(system).leftovers(self.context(system))

    @contextlib.contextmanager
    def broken(self, name: str) -> Iterator[None]:
        """The fault applied for the block. Its probe must say healthy before, broken during and
        healthy again after heal, and the heal must leave nothing behind."""
        __tracebackhide__ = True
        system = self.faults[name].system
        assert self.probe(name), f"{name}: unhealthy before the fault"
        self.fault(name)
        try:
            assert not self.probe(name), f"{name}: still healthy with the fault applied"
            yield
        finally:
            self.heal(name)
        assert self.probe(name), f"{name}: not healthy again after heal"
        assert self.leftovers(system) == [], f"{name}: heal left {self.leftovers(system)}"
