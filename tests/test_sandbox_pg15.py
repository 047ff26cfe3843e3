"""The sandbox on PostgreSQL 15, the oldest server Supabase runs: `up --pg-bin` on the
distribution's binaries, every automated item green against it exactly as on the wheel's server,
and a home initialised by one major version refused to the binaries of another.

One sandbox of its own and one run of the whole suite; skipped, with the command that installs
it, where the distribution's PostgreSQL 15 is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import binaries
from sandbox.cli import USAGE_ERROR
from sandbox.paths import Home
from tests.conftest import ChecksPytester
from tests.sandbox_handle import Sandbox, temporary_root

# The healthy run's own assertions, as over the wheel's server; imported under a name pytest
# does not collect here.
from tests.test_sandbox_checks import (
    test_healthy_sandbox_passes_every_item as assert_healthy_run,
)

PG15 = Path("/usr/lib/postgresql/15/bin")
INSTALL = "apt-get install postgresql-15"

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not (PG15 / "postgres").exists(),
                       reason=f"PostgreSQL 15 is not installed ({PG15}); to install it: {INSTALL}"),
]


@pytest.fixture(scope="module")
def pg15() -> Iterator[Sandbox]:
    """Every registered system on PostgreSQL 15, in a home of its own."""
    with temporary_root("pg15") as root:
        box = Sandbox(root / "home", root / "pg15.env")
        try:
            box.up("--pg-bin", str(PG15))
            yield box
        finally:
            box.cli("down")


def test_status_and_state_name_the_server_it_runs(pg15: Sandbox) -> None:
    state = pg15.state
    assert (state.pg_bin, state.pg_version.split(".")[0]) == (str(PG15), "15")
    assert state.pg_preloaded == ["pg_stat_statements"]
    line = next(line for line in pg15.ok("status").splitlines() if line.startswith("postgres: "))
    assert f"PostgreSQL {state.pg_version} from {PG15}, pg_stat_statements preloaded" in line
    assert pg15.scalar("SHOW server_version_num", database="postgres").startswith("15")
    assert pg15.scalar("SHOW shared_preload_libraries", database="postgres") == "pg_stat_statements"


def test_every_automated_item_passes_on_15(pg15: Sandbox, checks_pytester: ChecksPytester) -> None:
    checks_pytester.env_file("sandbox", pg15.env_file.read_text())
    assert_healthy_run(pg15, checks_pytester)


def test_binaries_of_another_major_version_are_refused(pg15: Sandbox) -> None:
    wheel = binaries.server_at(binaries.bin_dir(), binaries.WHEEL)
    home = Home.at(pg15.home)
    refused = pg15.cli("up", "--env-file", str(pg15.env_file), "--pg-bin", str(wheel.binaries))
    assert (refused.returncode, refused.stdout) == (USAGE_ERROR, "")
    assert refused.stderr == (
        f"sandbox: error: {home.pgdata} was initialised by PostgreSQL 15, but --pg-bin "
        f"{wheel.binaries} is PostgreSQL {wheel.version}: run `python -m sandbox down --home "
        f"{home.root}`, remove {home.root} and `up` again, or use another --home\n")
    assert pg15.state.pg_bin == str(PG15)  # nothing changed: it still runs on 15
    assert pg15.cli("status").returncode == 0
