"""Fixtures of the suite's own tests: a project copy for pytester runs, and the sandbox."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Its assertions (a command failed, a probe disagrees) must read as findings too.
pytest.register_assert_rewrite("tests.sandbox_handle")

from tests.sandbox_handle import Sandbox, temporary_root  # noqa: E402

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


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One embedded sandbox, every registered system, for the whole test session; stopped at the
    end. RUNBOOK_TEST_SANDBOX_HOME keeps its home (and logs) where you say."""
    configured = os.environ.get("RUNBOOK_TEST_SANDBOX_HOME")
    with contextlib.ExitStack() as stack:
        home = Path(configured) if configured else stack.enter_context(temporary_root("sandbox"))
        box = Sandbox(home, home / "sandbox.env")
        stack.callback(box.cli, "down")
        box.up()
        yield box


@pytest.fixture
def sandbox_pytester(checks_pytester: ChecksPytester, sandbox: Sandbox) -> ChecksPytester:
    """A project copy whose default target is the running sandbox."""
    checks_pytester.env_file("sandbox", sandbox.env_file.read_text())
    return checks_pytester
