"""Every byte capped (SAFETY.md P28): what a check fetches, records, finds and reports stays within
fixed bounds whatever the target holds, and a run's memory does not grow with the size of a cell.

The sandbox test writes 50 MB values where the checks look (ten dead letters' error class and
message and a connection's name in LaunchSin, ten job types in RevenueOS, a trigger's definition
and a trigger function's body in OpsMantik), runs those runbooks as a user runs them, with every
report, and measures the run's peak memory; everything it wrote is removed afterwards. The other
tests hold each cap to its number without a target.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fixtures.evidence import (
    CHECK_EVIDENCE_BYTES,
    FINDING_CHARS,
    RUN_EVIDENCE_BYTES,
    SAMPLE_ROWS,
    TEXT_CHARS,
    Evidence,
    RunAllowance,
    bounded,
    cut,
    json_bytes,
    page_bytes,
)
from fixtures.http import Exchange
from fixtures.markdown import SUMMARY_MAX_BYTES, summary_markdown
from fixtures.redaction import Redactor
from fixtures.report import REPORT_MAX_BYTES, oversized
from fixtures.results import Ledger, RunFacts
from fixtures.verdict import RunSummary
from fixtures.verdicts import CheckFailed, excerpt
from sandbox import kit
from tests.conftest import ChecksPytester
from tests.sandbox_handle import Sandbox

HUGE_BYTES = 50 * 1024 * 1024
# Free text as a hostile target stores it: a quote, markup, an accent and an emoji, each of which
# an escaping step makes longer (11 bytes, 7 characters).
HOSTILE = '"<&é😀 x'
HOSTILE_REPEATS = HUGE_BYTES // len(HOSTILE.encode())
HOSTILE_SIZE = HOSTILE_REPEATS * len(HOSTILE.encode())
MARK = "byte-caps-test"  # tags every row the sandbox test adds, so that it removes exactly those
HUGE_ROWS = 10
# A healthy run of these runbooks peaks at about 75 MB; one 50 MB cell read whole would pass this.
PEAK_RSS_KIB = 160 * 1024
# Runbooks 000 to 002 whole, and of runbook 003 the check that shows job types.
SELECTED = ("-m", "ingest_stalled or event_ingest or partition_drift or payments_not_syncing",
            "-k", "not test_ro or test_ro2_")
# The run as a child of its own process, so that RUSAGE_CHILDREN is the run's alone.
PEAK_RSS = """
import resource, subprocess, sys
code = subprocess.call([sys.executable, *sys.argv[1:]])
print("peak-rss-kib", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""


# In memory: values, entries, findings ------------------------------------------------------------

def test_a_huge_cell_is_cut_where_it_is_recorded_saying_how_long_it_was():
    evidence = Evidence("t")
    huge = "x" * HUGE_BYTES
    evidence.sql("select message from t", {}, [{"message": huge, "n": n} for n in range(1000)], 0.1)
    [entry] = evidence.entries
    assert entry["row_count"] == 1000
    assert entry["rows"] == [{"message": cut(huge, TEXT_CHARS), "n": n} for n in range(SAMPLE_ROWS)]
    cell = entry["rows"][0]["message"]
    assert len(cell) < TEXT_CHARS + 50 and cell.endswith(f"(cut: {HUGE_BYTES:,} characters in all)")


def test_nested_values_are_cut_in_breadth_and_depth():
    deep: object = "bottom"
    for _ in range(10_000):
        deep = [deep]
    shown = bounded({"wide": list(range(1000)), "deep": deep, "raw": b"\x00" * 5000})
    assert shown["wide"][-1] == "… cut: 980 more items" and len(shown["wide"]) == SAMPLE_ROWS + 1
    assert "nested deeper than 8 levels" in json.dumps(shown["deep"])
    assert shown["raw"].endswith("(cut: 5,000 bytes in all)")
    assert json_bytes(shown) < 8 * TEXT_CHARS


def test_a_checks_evidence_stays_in_its_budget_and_keeps_room_for_its_findings():
    evidence = Evidence("t")
    rows = [{"a": "x" * 5000, "b": "y" * 5000, "c": "z" * 5000} for _ in range(50)]
    for _ in range(300):  # cut tighter and tighter, then left out
        evidence.sql("select a, b, c from t", {}, rows, 0.1)
    evidence.value("lag", 42, expected="at most 30", source="runbook")
    assert sum(json_bytes(e) for e in evidence.entries if e["kind"] != "cut") <= CHECK_EVIDENCE_BYTES
    [marker] = [e for e in evidence.entries if e["kind"] == "cut"]
    assert marker["entries"] > 0 and marker["bytes"] > 0
    assert "capped at 64 KiB" in marker["why"]
    assert evidence.entries[-1]["kind"] == "value"  # the measured value after the rows still fits


def test_a_secret_across_the_cut_is_scrubbed_before_it():
    secret = "s3cr3t-token-value-42"
    text = "a" * (TEXT_CHARS - 5) + secret + "b" * 100
    evidence = Evidence("t", scrub=Redactor([secret]).scrub)
    evidence.note(text)
    recorded = evidence.entries[0]["text"]
    assert recorded.startswith("a" * (TEXT_CHARS - 5)) and secret[:5] not in recorded


def test_a_finding_is_one_bounded_line_that_says_how_long_it_was():
    failed = CheckFailed("connections silent: " + "n" * HUGE_BYTES)
    assert len(str(failed)) < FINDING_CHARS + 50
    assert str(failed).endswith(f"(cut: {HUGE_BYTES + 20:,} characters in all)")
    evidence = Evidence("t")
    evidence.warn("w" * HUGE_BYTES)
    assert len(evidence.warnings[0]) < FINDING_CHARS + 50


def test_a_quoted_value_is_an_excerpt_with_its_length():
    assert excerpt("short") == "short"
    assert excerpt("d" * TEXT_CHARS, HUGE_BYTES) == "d" * 120 + f"… ({HUGE_BYTES:,} bytes)"
    # Cut by the SQL and its size not selected: at least what was read.
    assert excerpt("d" * TEXT_CHARS).endswith(f"… (at least {TEXT_CHARS:,} bytes)")
    # Whole, short in characters, multibyte: quoted whole.
    assert excerpt("é" * 100, 200) == "é" * 100
    # Not cut by the SQL but longer than an excerpt: its exact size.
    assert excerpt("é" * 200) == "é" * 120 + "… (400 bytes)"


def test_the_runs_evidence_gives_way_to_a_marker_once_its_budget_is_spent():
    allowance = RunAllowance(budget=10_000)
    entries = [{"kind": "note", "text": "n" * 900} for _ in range(30)]
    first = allowance.fit("check-1", entries)
    second = allowance.fit("check-2", entries)
    assert sum(page_bytes(e) for e in first + second if e["kind"] != "cut") <= 10_000
    marker = second[-1]
    assert marker["kind"] == "cut" and "run's evidence is capped" in marker["why"]
    assert marker["bytes"] > 0 and marker["entries"] == len(entries) - (len(second) - 1)
    # A later, worse phase of the same check is charged instead of the earlier one, not as well.
    assert allowance.fit("check-2", second) == second


# The report files ---------------------------------------------------------------------------------

HOSTILE_CHECKS = f'''
"""Runbook 000 (example): every check meets a hostile target."""

import pytest

from fixtures.verdicts import CheckFailed

pytestmark = [pytest.mark.ingest_stalled, pytest.mark.system("opsmantik")]
HUGE = {HOSTILE!r} * 200_000


@pytest.mark.parametrize("copy", range(60))
def test_is1_passes(evidence, copy):
    """IS-1: The example passes."""
    evidence.sql("select message from hostile", {{}}, [{{"message": HUGE}}] * 2000, 0.1)
    for n in range(300):
        evidence.value(f"value {{n}}: {{HUGE}}", HUGE, expected=HUGE, source=HUGE)
    evidence.correction(says=HUGE, does=HUGE)


def test_is2_warns(evidence):
    """IS-2: The example is past a warning line."""
    evidence.warn(HUGE)


def test_is3_fails(evidence):
    """IS-3: The example fails."""
    raise CheckFailed("hostile finding: " + HUGE)
'''


def test_every_report_file_stays_under_its_bound(example_pytester: ChecksPytester):
    example_pytester.env_file("sandbox", "OPSMANTIK_BASE_URL=http://127.0.0.1:1\n")
    example_pytester.only_check("test_000_states.py", HOSTILE_CHECKS)
    reports = {suffix: example_pytester.path / f"r.{suffix}" for suffix in ("html", "xml", "md")}
    run = example_pytester.run(f"--html={reports['html']}", f"--junitxml={reports['xml']}",
                               f"--summary-md={reports['md']}")
    reports["json"] = example_pytester.path / "results.json"
    assert run.states() == {"IS-1": "PASS", "IS-2": "WARN", "IS-3": "FAIL"}
    assert {name: path.stat().st_size < REPORT_MAX_BYTES for name, path in reports.items()} == \
        dict.fromkeys(reports, True)
    checks = run.results["checks"]
    assert all(json_bytes(c["evidence"]) < CHECK_EVIDENCE_BYTES + 1024 for c in checks)
    assert sum(page_bytes(e) for c in checks for e in c["evidence"] if e["kind"] != "cut") \
        <= RUN_EVIDENCE_BYTES
    whys = {e["why"] for c in checks for e in c["evidence"] if e["kind"] == "cut"}
    assert any("this check's evidence" in why for why in whys)
    assert any("the run's evidence" in why for why in whys)
    assert "cut: " in reports["html"].read_text() and "bytes more" in reports["html"].read_text()
    assert "characters in all" in run.messages()["IS-3"]
    assert not [line for line in run.errlines if "over the" in line]  # no oversized warning


def test_an_output_over_the_bound_is_reported(tmp_path: Path):
    small, large = tmp_path / "small.json", tmp_path / "large.html"
    small.write_text("{}")
    with large.open("wb") as out:
        out.truncate(REPORT_MAX_BYTES + 1)
    assert oversized([small, large]) == [
        f"warning: {large} is {REPORT_MAX_BYTES + 1:,} bytes, over the 8 MiB each report is held to"]


def test_the_markdown_summary_is_cut_with_a_marker():
    now = datetime.now(UTC)
    facts = RunFacts("prod", "envs/prod.env", "abc", "", now, now, "sre@host")
    summary = RunSummary(facts, Ledger(), exit_code=3, aborted="a" * (SUMMARY_MAX_BYTES * 2))
    text = summary_markdown(summary, [])
    assert len(text.encode()) < SUMMARY_MAX_BYTES
    assert re.search(r"… cut: [\d,]+ bytes more", text)


# Hostile JSON bodies ----------------------------------------------------------------------------

def answer(body: bytes) -> Exchange:
    return Exchange("GET", "/api/health", 200, {"content-type": "application/json"}, body, 0.01)


def test_a_key_given_twice_is_an_ambiguous_body():
    with pytest.raises(CheckFailed, match="ambiguous body: key 'ok' appears twice in one object"):
        answer(b'{"ok": false, "ok": true}').json_object()


@pytest.mark.parametrize("opening", [b"[", b'{"a": '])
def test_json_ten_thousand_levels_deep_fails_in_one_short_line(opening: bytes):
    closing = b"]" if opening == b"[" else b"}"
    body = b'{"ok": true, "x": ' + opening * 10_000 + b"1" + closing * 10_000 + b"}"
    with pytest.raises(CheckFailed) as failed:
        answer(body).json_object()
    assert "JSON nested deeper than the parser allows" in str(failed.value)
    assert len(str(failed.value)) < 200


# Against the sandbox: 50 MB cells and definitions --------------------------------------------------

def launchsin_rows(conn: psycopg.Connection[Any]) -> None:
    """Ten dead letters with a 50 MB error class and message, and an active connection with a
    50 MB name that delivers nothing."""
    found = conn.execute("SELECT org_id, project_id, id FROM public.source_connections"
                         " WHERE is_active ORDER BY id LIMIT 1").fetchone()
    assert found is not None
    org, project, connection = found
    conn.execute("""INSERT INTO public.source_connections (org_id, project_id, type, name, config_json)
                    VALUES (%s, %s, 'webhook', repeat(%s, %s), jsonb_build_object('test', %s::text))""",
                 (org, project, HOSTILE, HOSTILE_REPEATS, MARK))
    conn.execute("""INSERT INTO public.dlq_events (connection_id, payload_json, error_message, status,
                                                   created_at, error_class, last_error_message)
                    SELECT %s, jsonb_build_object('test', %s::text), 'huge', 'dead',
                           now() - interval '2 hours', 'HUGE_' || n || repeat('X', %s), repeat(%s, %s)
                    FROM generate_series(1, %s) AS n""",
                 (connection, MARK, HUGE_BYTES, HOSTILE, HOSTILE_REPEATS, HUGE_ROWS))


def revenueos_jobs(conn: psycopg.Connection[Any]) -> None:
    """Ten completed jobs whose job type is 50 MB."""
    conn.execute("""INSERT INTO public.jobs_queue (job_type, payload, status, created_at)
                    SELECT n || repeat(%s, %s), jsonb_build_object('test', %s::text), 'completed',
                           now() - interval '1 hour'
                    FROM generate_series(1, %s) AS n""", (HOSTILE, HOSTILE_REPEATS, MARK, HUGE_ROWS))


def opsmantik_definitions(conn: psycopg.Connection[Any]) -> None:
    """The sessions drift guard with a 50 MB argument (its function ignores it), and the events
    drift guard's function with a 50 MB comment in its body."""
    argument = ("x'" * (HUGE_BYTES // 2)).replace("'", "''")
    conn.execute(("CREATE OR REPLACE TRIGGER sessions_set_created_month BEFORE INSERT ON public.sessions"
                  " FOR EACH ROW EXECUTE FUNCTION public.trg_sessions_set_created_month"
                  f"('{argument}')").encode())
    found = conn.execute("SELECT prosrc FROM pg_proc"
                         " WHERE proname = 'trg_events_set_session_month_from_session'").fetchone()
    assert found is not None
    body = "-- " + "y" * HUGE_BYTES + "\n" + found[0]
    conn.execute(("CREATE OR REPLACE FUNCTION public.trg_events_set_session_month_from_session()"
                  " RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public"
                  f" AS $body${body}$body$").encode())


def remove_huge_values(sandbox: Sandbox) -> None:
    """Everything the test added, gone; the drift guards as triggers.sql defines them."""
    with sandbox.superuser(sandbox.system("launchsin").database) as conn:
        conn.execute("DELETE FROM public.dlq_events WHERE payload_json ->> 'test' = %s", (MARK,))
        conn.execute("DELETE FROM public.source_connections WHERE config_json ->> 'test' = %s", (MARK,))
    with sandbox.superuser(sandbox.system("revenueos").database) as conn:
        conn.execute("DELETE FROM public.jobs_queue WHERE payload ->> 'test' = %s", (MARK,))
    with sandbox.superuser(sandbox.system("opsmantik").database) as conn:
        kit.run_script(conn, "sandbox.opsmantik", "triggers.sql")


@contextmanager
def huge_values(sandbox: Sandbox) -> Iterator[None]:
    try:
        with sandbox.superuser(sandbox.system("launchsin").database) as conn:
            launchsin_rows(conn)
        with sandbox.superuser(sandbox.system("revenueos").database) as conn:
            revenueos_jobs(conn)
        with sandbox.superuser(sandbox.system("opsmantik").database) as conn:
            opsmantik_definitions(conn)
        yield
    finally:
        remove_huge_values(sandbox)


def huge_values_left(sandbox: Sandbox) -> dict[str, object]:
    """What would tell a later test that this one left something behind."""
    return {
        "launchsin": sandbox.scalar(
            "SELECT (SELECT count(*) FROM public.dlq_events WHERE payload_json ->> 'test' = %(m)s)"
            " + (SELECT count(*) FROM public.source_connections WHERE config_json ->> 'test' = %(m)s)",
            {"m": MARK}, database=sandbox.system("launchsin").database),
        "revenueos": sandbox.scalar("SELECT count(*) FROM public.jobs_queue WHERE payload ->> 'test' = %s",
                                    (MARK,), database=sandbox.system("revenueos").database),
        "opsmantik": sandbox.scalar(
            "SELECT (SELECT max(length(prosrc)) > 100000 FROM pg_proc"
            "        WHERE proname = 'trg_events_set_session_month_from_session')"
            "    OR (SELECT coalesce(sum(tgnargs), 0) > 0 FROM pg_trigger"
            "        WHERE tgname = 'sessions_set_created_month')",
            database=sandbox.system("opsmantik").database),
    }


@pytest.mark.sandbox
def test_fifty_megabyte_values_leave_verdicts_reports_and_memory_bounded(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester
):
    path = sandbox_pytester.path
    reports = {suffix: path / f"r.{suffix}" for suffix in ("json", "html", "xml", "md")}
    with huge_values(sandbox):
        outcome = sandbox_pytester.pytester.run(
            sys.executable, "-c", PEAK_RSS, "-m", "pytest", "-p", "no:cacheprovider", *SELECTED,
            f"--results-json={reports['json']}", f"--html={reports['html']}",
            f"--junitxml={reports['xml']}", f"--summary-md={reports['md']}", timeout=600)
    assert huge_values_left(sandbox) == {"launchsin": 0, "revenueos": 0, "opsmantik": False}
    results = json.loads(reports["json"].read_text())
    states = {c["item"]: c["state"] for c in results["checks"]}
    messages = {c["item"]: c["message"] for c in results["checks"]}
    # The connection with a 50 MB name delivers nothing (FAIL), ten dead letters are of an unknown
    # class (WARN); everything else, the huge definitions and job types included, is healthy.
    assert {"IS-7", "PD-3", "RO-2"} <= set(states)
    assert states == {item: "PASS" for item in states} | {
        "EI-2": "FAIL", "EI-3": "FAIL", "EI-4": "FAIL", "EI-8": "WARN"}, json.dumps(messages, indent=2)
    assert f"… ({HOSTILE_SIZE:,} bytes) (webhook, " in messages["EI-3"]
    # 'HUGE_1' to 'HUGE_9', then 'HUGE_10', before the 50 MB of X.
    assert re.search(rf"'HUGE_\d+X+… \(({HUGE_BYTES + 6:,}|{HUGE_BYTES + 7:,}) bytes\)'",
                     messages["EI-8"]), messages["EI-8"]
    assert max(len(m) for m in messages.values()) <= 1000
    sizes = {name: report.stat().st_size for name, report in reports.items()}
    assert all(size < REPORT_MAX_BYTES for size in sizes.values()), sizes
    peak = [int(line.split()[1]) for line in outcome.outlines if line.startswith("peak-rss-kib")]
    assert peak and peak[0] < PEAK_RSS_KIB, f"peak RSS {peak} KiB; report sizes {sizes}"
