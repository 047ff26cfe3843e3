"""The read-only lint: every check's SQL passes it, every escape is refused with its rule."""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path

import pytest

from fixtures.errors import UnsafeOperation
from fixtures.sqllint import lint

CHECKS = Path(__file__).resolve().parent.parent / "checks"


def check_sql_constants():
    """Every module-level SQL string constant under checks/, as the checks run it: imported, so
    that constants built from others (f-strings, concatenations) are read whole."""
    for path in sorted(CHECKS.glob("*.py")):
        with warnings.catch_warnings():  # the checks' markers are registered by their own config
            warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
            module = importlib.import_module(f"checks.{path.stem}")
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, str) and value.lstrip().lower().startswith(
                    ("select", "with", "values", "explain")):
                yield pytest.param(value, id=f"{path.stem}.{name}")


@pytest.mark.parametrize("sql", list(check_sql_constants()))
def test_every_check_query_passes_the_lint(sql):
    lint(sql)


def test_there_are_check_queries_to_lint():
    assert len(list(check_sql_constants())) >= 15


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("insert into t values (1)", "starts with INSERT"),
        ("select 1; commit; insert into t values (1)", "more than one statement"),
        ("set default_transaction_read_only = off", "starts with SET"),
        ("with gone as (delete from t returning id) select id from gone", "data-modifying"),
        ("select * from sessions", "select \\*"),
        ("select s.* from sessions s", "select \\*"),
        ("select dblink_exec('x', 'drop table t')", "writes, locks"),
        ("select lo_create(0)", "writes, locks"),
        ("select pg_advisory_lock(1)", "writes, locks"),
        ("select pg_notify('c', 'x')", "writes, locks"),
        ("select set_config('default_transaction_read_only', 'off', false)", "writes, locks"),
        ("select id from sessions for update", "row-locking"),
        ("explain analyze select 1", "EXPLAIN ANALYZE"),
        ("lock table sessions in access exclusive mode", "starts with LOCK"),
        ("begin", "starts with BEGIN"),
        ("select id into t2 from sessions", "data-modifying"),
    ],
)
def test_escapes_are_refused_with_their_rule(sql, rule):
    with pytest.raises(UnsafeOperation, match=rule):
        lint(sql)


def test_literals_and_comments_do_not_trip_it():
    lint("select count(*) from t where note = 'insert; delete' -- update later\n")
    lint("select $$drop table$$ as text")


# Tables that grow with traffic: a query on them must be bounded by a window on the database's
# clock (or a limit), and on the partitioned ones by the month key so the planner prunes.
LARGE_TABLES = {"sessions": "created_month", "events": "session_month", "canonical_events": None,
                "processed_signals": None, "sync_dlq": None}


@pytest.mark.parametrize("sql", list(check_sql_constants()))
def test_queries_on_large_tables_are_bounded(sql):
    from fixtures.sqllint import code_of

    code = code_of(sql).lower()
    for table, month_key in LARGE_TABLES.items():
        if re.search(rf"\bpublic\.{table}\b", code):
            assert "now()" in code or re.search(r"\blimit\b", code), f"{table}: no time window"
            if month_key:
                assert month_key in code, f"{table}: no {month_key} bound to prune partitions"
