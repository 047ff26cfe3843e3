"""Runbooks and checks stay one to one: every automated item has exactly one check, and back."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from fixtures.checklist import load_runbooks
from fixtures.run import DOC_ID

REPO = Path(__file__).resolve().parent.parent
RUNBOOKS = load_runbooks(REPO / "runbooks")
CHECK_MODULES = sorted((REPO / "checks").glob("test_*.py"))
REGISTERED = set(re.findall(r'"(\w+): runbook', (REPO / "pyproject.toml").read_text()))


def checks_of(path: Path) -> dict[str, str]:
    """item ID -> test function name, from the docstrings of a check module."""
    tree = ast.parse(path.read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            match = DOC_ID.match(ast.get_docstring(node) or "")
            assert match, f"{path.name}::{node.name} has no item ID at the start of its docstring"
            assert match.group(1) not in found, f"{match.group(1)} checked twice in {path.name}"
            found[match.group(1)] = node.name
    return found


def test_every_runbook_has_a_check_module():
    numbers = {p.name[5:8] for p in CHECK_MODULES}
    assert set(RUNBOOKS) == numbers


@pytest.mark.parametrize("path", CHECK_MODULES, ids=lambda p: p.name)
def test_checks_and_checklist_match(path: Path):
    runbook = RUNBOOKS[path.name[5:8]]
    checked = checks_of(path)
    automated = {i.id for i in runbook.items if i.mode != "manual"}
    assert set(checked) == automated, "runbook items and checks differ"
    for item_id, function in checked.items():
        slug = item_id.lower().replace("-", "")
        assert function.startswith(f"test_{slug}_"), f"{function} should start test_{slug}_"


@pytest.mark.parametrize("path", CHECK_MODULES, ids=lambda p: p.name)
def test_module_names_its_runbook_and_marker(path: Path):
    runbook = RUNBOOKS[path.name[5:8]]
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert doc.startswith(f"Runbook {runbook.number}"), "module docstring must name its runbook"
    for marker in runbook.markers:
        assert marker in REGISTERED, f"marker {marker} is not registered"
        assert f"pytest.mark.{marker}" in path.read_text()


@pytest.mark.parametrize("runbook", RUNBOOKS.values(), ids=lambda r: r.number)
def test_items_state_the_healthy_state(runbook):
    for item in runbook.items:
        assert not re.match(r"(?i)(check|ensure|verify|make sure)\b", item.healthy), item.id
        assert item.mode in ("auto", "proxy", "manual"), item.id
        assert item.runs in ("read-only", "side effect", "person"), item.id
