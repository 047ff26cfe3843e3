"""The runbooks' decision tables: read from runbooks/*.md, evaluated on a run's states."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.checklist import RunbookError, load_runbooks, parse_runbook
from fixtures.diagnosis import HEALTHY, NO_CONCLUSION, corrections, diagnose
from fixtures.results import CheckId, CheckResult, Ledger, State
from tests.conftest import REPO

RUNBOOKS = load_runbooks(REPO / "runbooks")


def ledger(runbook: str, **states: str) -> Ledger:
    """A ledger with one result per item: ledger("000", IS_2="FAIL") (underscores for dashes)."""
    found = Ledger()
    for key, state in states.items():
        item = key.replace("_", "-")
        found.record(CheckResult(f"node::{item}", CheckId(item, runbook, "x"), State(state), ""))
    return found


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS), ids=str)
def test_every_runbook_has_a_decision_table_naming_only_its_own_items(runbook: str):
    book = RUNBOOKS[runbook]
    assert book.decisions, f"runbooks/{book.path.name} has no ## Diagnosis table"
    for decision in book.decisions:
        unknown = [item for item in decision.items() if book.item(item) is None]
        assert not unknown, f"{decision.id} names items not in the checklist: {unknown}"
        manual = [item for item in decision.items() if book.item(item).mode == "manual"]
        assert not manual, f"{decision.id} rests on manual items, which have no state: {manual}"
        assert decision.conclusion and decision.next_step


def test_a_matching_row_gives_the_runbooks_conclusion_and_next_step():
    found = diagnose(RUNBOOKS["000"], ledger("000", IS_2="FAIL", IS_3="PASS", IS_10="FAIL",
                                              IS_13="FAIL", IS_1="PASS"))
    assert [d.decision for d in found] == ["IS-D3"]
    assert found[0].conclusion == ("ingestion is stalled after the producer: "
                                   "the worker processes nothing")
    assert found[0].next_step.startswith("mitigation 3: check the QStash signing keys")
    assert found[0].because == ("IS-2 FAIL", "IS-3 PASS", "IS-10 FAIL")


def test_a_repeated_id_is_one_conclusion_reached_either_way():
    either = [diagnose(RUNBOOKS["000"], ledger("000", IS_4=a, IS_11=b))
              for a, b in (("FAIL", "PASS"), ("PASS", "FAIL"), ("FAIL", "FAIL"))]
    assert [[d.decision for d in found] for found in either] == [["IS-D7"]] * 3


def test_an_item_that_did_not_run_satisfies_no_condition():
    found = diagnose(RUNBOOKS["000"], ledger("000", IS_3="FAIL"))  # IS-2 not run: D1 and D5 need it
    assert [d.conclusion for d in found] == [NO_CONCLUSION]
    assert found[0].because == ("IS-3 FAIL",)


def test_all_pass_is_healthy_and_names_the_open_manual_items():
    found = diagnose(RUNBOOKS["000"], ledger("000", IS_1="PASS", IS_2="PASS"))
    assert [d.conclusion for d in found] == [HEALTHY]
    assert "IS-14, IS-15, IS-16" in found[0].next_step


def test_no_result_for_the_runbook_concludes_nothing():
    assert diagnose(RUNBOOKS["001"], ledger("000", IS_2="FAIL")) == []


def test_corrections_are_collected_once_per_item():
    found = ledger("000", IS_5="WARN")
    found.results["node::IS-5"].evidence = [
        {"kind": "correction", "says": "a", "does": "b"}, {"kind": "correction", "says": "a", "does": "b"}]
    assert [(c.item, c.says, c.does) for c in corrections(found)] == [("IS-5", "a", "b")]


@pytest.mark.parametrize(("row", "problem"), [
    ("| IS-D1 | IS-2 BROKEN | x | y |", "cannot read the condition 'IS-2 BROKEN'"),
    ("| IS-D1 | IS-2 FAIL | x | y |\n| IS-D1 | IS-3 FAIL | other | y |", "repeated with another"),
])
def test_a_bad_decision_table_names_the_file_and_row(tmp_path: Path, row: str, problem: str):
    path = tmp_path / "000-x.md"
    path.write_text(f"# x\n\n- marker: `x`\n\n| ID | Healthy state | Mode | Runs | How |\n"
                    f"|---|---|---|---|---|\n| IS-2 | a | auto | read-only | b |\n\n"
                    f"## Diagnosis\n\n{row}\n")
    with pytest.raises(RunbookError, match=problem) as info:
        parse_runbook(path)
    assert "000-x.md" in str(info.value)


def test_a_runbook_of_several_incidents_gives_each_item_its_marker(tmp_path: Path):
    path = tmp_path / "003-x.md"
    path.write_text("# x\n\n- marker: `a`, `b`\n\n| ID | Healthy state | Mode | Runs | How | Marker |\n"
                    "|---|---|---|---|---|---|\n| RO-1 | one | auto | read-only | q | `a` |\n"
                    "| RO-2 | two | auto | read-only | q | b |\n")
    runbook = parse_runbook(path)
    assert runbook.markers == ("a", "b")
    assert [(i.id, i.marker) for i in runbook.items] == [("RO-1", "a"), ("RO-2", "b")]
    path.write_text(path.read_text().replace("| b |", "| c |"))
    with pytest.raises(RunbookError, match="RO-2 has marker 'c', not one of the runbook's markers"):
        parse_runbook(path)
