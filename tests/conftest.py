"""Fixtures of the suite's own tests: a project copy for pytester runs, and the sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("pyproject.toml", "conftest.py")
EXAMPLES = Path(__file__).resolve().parent / "examples"


@dataclass
class Run:
    """One inner pytest run: its exit code, output and JSON results."""

    ret: int
    outlines: list[str]
    errlines: list[str]
    results: dict[str, Any]

    def states(self) -> dict[str, str]:
        return {c["item"]: c["state"] for c in self.results.get("checks", [])}

    def messages(self) -> dict[str, str]:
        return {c["item"]: c["message"] for c in self.results.get("checks", [])}


class ChecksPytester:
    """A throw-away copy of the project (code linked, envs/ private) run in a subprocess."""

    def __init__(self, pytester: pytest.Pytester, source: Path = REPO) -> None:
        """Link fixtures/ from the repo, checks/ and runbooks/ from `source` (an example)."""
        self.pytester = pytester
        self.path = pytester.path
        for name in PROJECT_FILES:
            shutil.copy(REPO / name, self.path / name)
        (self.path / "fixtures").symlink_to(REPO / "fixtures", target_is_directory=True)
        for name in ("checks", "runbooks"):
            (self.path / name).symlink_to(source / name, target_is_directory=True)
        (self.path / "envs").mkdir()

    def only_check(self, module: str, text: str) -> None:
        """Replace the linked checks with one module of the test's own."""
        (self.path / "checks").unlink()
        (self.path / "checks").mkdir()
        (self.path / "checks" / module).write_text(text)

    def env_file(self, name: str, text: str) -> Path:
        path = self.path / "envs" / f"{name}.env"
        path.write_text(text)
        return path

    def run(self, *args: str, timeout: float = 300) -> Run:
        results = self.path / "results.json"
        results.unlink(missing_ok=True)
        outcome = self.pytester.runpytest_subprocess(
            f"--results-json={results}", "-p", "no:cacheprovider", *args, timeout=timeout
        )
        data = json.loads(results.read_text()) if results.exists() else {}
        return Run(outcome.ret, outcome.outlines, outcome.errlines, data)


@pytest.fixture
def checks_pytester(pytester: pytest.Pytester) -> ChecksPytester:
    """The real checks, runbooks and machinery in a throw-away directory."""
    return ChecksPytester(pytester)


@pytest.fixture
def example_pytester(pytester: pytest.Pytester) -> ChecksPytester:
    """The machinery with the example checks of tests/examples/states (no target needed)."""
    return ChecksPytester(pytester, EXAMPLES / "states")


@dataclass
class Sandbox:
    home: Path
    env_file: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "sandbox", *args, "--home", str(self.home)],
            cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, f"sandbox {' '.join(args)} failed:\n{result.stderr}"
        return result

    def dsn(self, *, superuser: bool = False, database: str = "opsmantik") -> str:
        """checks_ro's URL from the env file, or the superuser's from the sandbox state."""
        if not superuser:
            line = next(line for line in self.env_file.read_text().splitlines()
                        if line.startswith("OPSMANTIK_DATABASE_URL="))
            return line.split("=", 1)[1].replace("/opsmantik", f"/{database}")
        state = json.loads((self.home / "state.json").read_text())
        return (f"postgresql://postgres:{state['superuser_password']}@127.0.0.1:"
                f"{state['pg_port']}/{database}")

    def fault(self, name: str) -> None:
        self.cli("fault", name)

    def heal(self, name: str) -> None:
        self.cli("heal", name)


def assert_fault_round_trip(box: Any, name: str, probe: Callable[[Any], bool]) -> None:
    """The fault breaks what its probe looks at, and heal restores it. `box` runs the sandbox
    CLI with `.ok(*args)`."""
    assert probe(box), f"{name}: unhealthy before the fault"
    box.ok("fault", name)
    try:
        assert not probe(box), f"{name}: still healthy with the fault applied"
    finally:
        box.ok("heal", name)
    assert probe(box), f"{name}: not healthy again after heal"


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One embedded sandbox for the whole test session, stopped at the end."""
    home = Path(os.environ.get("RUNBOOK_TEST_SANDBOX_HOME") or tmp_path_factory.mktemp("sandbox"))
    env_file = home / "sandbox.env"
    up = subprocess.run(
        [sys.executable, "-m", "sandbox", "up", "--home", str(home), "--env-file", str(env_file)],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )
    assert up.returncode == 0, f"sandbox up failed:\n{up.stdout}\n{up.stderr}"
    box = Sandbox(home, env_file)
    yield box
    subprocess.run([sys.executable, "-m", "sandbox", "down", "--home", str(home)],
                   cwd=REPO, capture_output=True, timeout=120, check=False)


@pytest.fixture
def sandbox_pytester(checks_pytester: ChecksPytester, sandbox: Sandbox) -> ChecksPytester:
    """A project copy whose default target is the running sandbox."""
    checks_pytester.env_file("sandbox", sandbox.env_file.read_text())
    return checks_pytester
