"""The machinery run as a user runs it: pytest in a subprocess on example checks, no target needed."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import ChecksPytester

EXAMPLE_ENV = """\
OPSMANTIK_BASE_URL=http://127.0.0.1:1
OPSMANTIK_WATCHTOWER_SECRET=canary-watchtower-s3cret
"""


@pytest.fixture
def example(example_pytester: ChecksPytester) -> ChecksPytester:
    example_pytester.env_file("sandbox", EXAMPLE_ENV)
    return example_pytester


@pytest.mark.parametrize(
    ("selection", "state", "code"),
    [
        ("test_is1", "PASS", 0),
        ("test_is2", "WARN", 1),
        ("test_is3", "FAIL", 2),
        ("test_is4", "UNKNOWN", 3),
        ("test_is5", "UNKNOWN", 3),
    ],
)
def test_each_state_has_its_exit_code(example: ChecksPytester, selection, state, code):
    run = example.run("-k", selection)
    assert run.ret == code
    assert list(run.states().values()) == [state]
    assert run.results["summary"][state] == 1


def test_worst_state_wins(example: ChecksPytester):
    run = example.run()
    assert run.ret == 3
    assert run.states() == {"IS-1": "PASS", "IS-2": "WARN", "IS-3": "FAIL",
                            "IS-4": "UNKNOWN", "IS-5": "UNKNOWN"}


def test_warn_ok_keeps_a_canary_green(example: ChecksPytester):
    assert example.run("-k", "test_is1 or test_is2", "--checks-warn-ok").ret == 0


def test_findings_read_as_findings(example: ChecksPytester):
    messages = example.run().messages()
    assert messages["IS-3"] == "0 sessions in the last hour, expected at least 1 (example)"
    assert messages["IS-2"] == "lag 12 min, above the warning 10 min (example)"
    assert messages["IS-4"] == "ValueError: harness broke"
    assert "missing setting OPSMANTIK_CRON_SECRET" in messages["IS-5"]
    assert "no request was sent" in messages["IS-5"]


def test_nothing_ran_is_unknown(example: ChecksPytester):
    run = example.run("-k", "no_such_check")
    assert run.ret == 3
    assert run.results["summary"] == {"PASS": 0, "WARN": 0, "FAIL": 0, "UNKNOWN": 0}


def test_mistyped_marker_is_a_usage_error(example: ChecksPytester):
    run = example.run("-m", "ingest_stalld")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    error = next(line for line in run.errlines if "ingest_stalld" in line)
    known = error.split("Known: ", 1)[1].split(", ")
    assert {"event_ingest", "ingest_stalled", "partition_drift"} <= set(known)
    assert not {"needs", "system", "side_effect"} & set(known)  # they describe checks


def test_a_bad_threshold_is_a_usage_error_naming_variable_value_and_source(
    example: ChecksPytester, monkeypatch
):
    monkeypatch.setenv("OPSMANTIK_DLQ_BASELINE_PER_HOUR", "abc")
    run = example.run("-k", "test_is1")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    named = [line for line in run.errlines if "OPSMANTIK_DLQ_BASELINE_PER_HOUR" in line]
    assert len(named) == 1
    assert "'abc' from the environment" in named[0]
    assert run.results == {}  # nothing ran, nothing written


def test_header_says_where_each_setting_comes_from(example: ChecksPytester, monkeypatch):
    example.env_file("sandbox", EXAMPLE_ENV + "OPSMANTIK_PARTITION_LEAD_DAYS=9\n"
                     "OPSMANTIK_DLQ_BASELINE_PER_HOR=3\n")
    monkeypatch.setenv("OPSMANTIK_PARTITION_LEAD_DAYS", "3")
    run = example.run("-k", "test_is1", "--checks-connect-timeout", "1")
    out = "\n".join(run.outlines)
    assert run.ret == 0
    assert re.search(r"system opsmantik: db no database configured, http http://127.0.0.1:1 "
                     r"\(from .*envs/sandbox.env\)", out)
    assert re.search(r"thresholds: OPSMANTIK_PARTITION_LEAD_DAYS 3 \(from the environment, "
                     r"overriding .*envs/sandbox.env\)", out)
    assert ("warning: OPSMANTIK_DLQ_BASELINE_PER_HOR is not a setting of the suite; did you mean "
            "OPSMANTIK_DLQ_BASELINE_PER_HOUR?") in out
    assert "connect_timeout 2s (--checks-connect-timeout, 1s asked" in out


def test_results_json_takes_a_path_after_a_space_even_when_it_exists(example: ChecksPytester):
    existing = example.path / "r.json"
    existing.write_text("{}")
    outcome = example.pytester.runpytest_subprocess("-k", "test_is1", "--results-json", "r.json")
    assert outcome.ret == 0
    assert json.loads(existing.read_text())["summary"]["PASS"] == 1


def test_collection_error_is_unknown(example: ChecksPytester):
    (example.path / "checks_broken").mkdir()
    (example.path / "checks_broken" / "test_broken.py").write_text("def broken(:\n")
    run = example.run("checks", "checks_broken")
    assert run.ret == 3


def test_missing_target_lists_the_known_ones(example: ChecksPytester):
    run = example.run("--target", "prod")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    err = "\n".join(run.errlines)
    assert "envs/prod.env does not exist" in err
    assert "Targets found" in err and "sandbox" in err


def test_side_effects_are_deselected_unless_allowed(example: ChecksPytester):
    run = example.run("-k", "test_is6")
    assert run.states() == {}
    assert [n["item"] for n in run.results["not_run"]] == ["IS-6"]
    allowed = example.run("-k", "test_is6", "--allow-side-effects")
    assert allowed.states() == {"IS-6": "PASS"}


def test_unconfigured_system_is_deselected_and_named(example: ChecksPytester):
    example.env_file("other", "LAUNCHSIN_BASE_URL=http://127.0.0.1:1\n")
    run = example.run("--target", "other", "-v")
    assert run.states() == {}
    assert any("not in this target" in line and "opsmantik" in line for line in run.outlines)


def test_header_names_target_and_source(example: ChecksPytester):
    run = example.run("-k", "test_is1")
    assert any(re.search(r"target: sandbox \(from default\), env file: .*envs/sandbox.env", line)
               for line in run.outlines)
    assert any(line.startswith("budget: connect_timeout 5s (default)") for line in run.outlines)


def test_outputs_default_to_reports(example_pytester: ChecksPytester):
    example_pytester.env_file("sandbox", EXAMPLE_ENV)
    outcome = example_pytester.pytester.runpytest_subprocess("-m", "ingest_stalled", "-k", "is1")
    assert outcome.ret == 0
    names = sorted(p.name for p in (example_pytester.path / "reports").iterdir()
                   if p.name != "history.sqlite")  # the run history, kept across runs
    assert [n.rsplit(".", 1)[1] for n in names] == ["html", "json", "xml"]
    assert all(re.fullmatch(r"\d{8}T\d{6}Z-sandbox-ingest_stalled\.\w+", n) for n in names)


def test_junit_and_html_carry_states(example: ChecksPytester):
    xml_path, html_path = example.path / "r.xml", example.path / "r.html"
    example.run("--junitxml", str(xml_path), "--html", str(html_path))
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(xml_path).iter("testcase")
    }
    assert props["test_is2_warns"]["state"] == "WARN"
    assert props["test_is2_warns"]["item"] == "IS-2"
    page = html_path.read_text()
    blob = json.loads(re.search(r'data-jsonblob="([^"]*)"', page).group(1).replace("&#34;", '"')
                      .replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&#39;", "'"))
    assert blob["tests"]
    assert "Checklist: Runbook 000: example states" in page
    assert "IS-7" in page  # the manual item is listed for a person to tick


def test_results_json_shape(example: ChecksPytester):
    run = example.run()
    doc = run.results
    assert set(doc) >= {"target", "started_at", "finished_at", "db_now", "summary", "checks"}
    check = next(c for c in doc["checks"] if c["item"] == "IS-1")
    assert set(check) >= {"item", "runbook", "system", "nodeid", "state", "message",
                          "duration_s", "evidence"}
    assert check["runbook"] == "000" and check["system"] == "opsmantik"
    assert check["evidence"][0] == {"kind": "value", "name": "answer", "observed": 42, "unit": "",
                                    "expected": "42", "source": "example"}


def test_secrets_never_reach_outputs(example: ChecksPytester):
    """A check prints the secret, fails with it, and logs it: every output stays clean."""
    example.only_check("test_000_leak.py", 
        'import logging, pytest\n'
        'pytestmark = [pytest.mark.ingest_stalled, pytest.mark.system("opsmantik")]\n'
        'def test_is1_leaks(system_settings, evidence):\n'
        '    """IS-1: The example passes."""\n'
        '    secret = system_settings.require("OPSMANTIK_WATCHTOWER_SECRET").value\n'
        '    print("stdout", secret)\n'
        '    logging.getLogger("checks.x").warning("log %s", secret)\n'
        '    evidence.note(f"note {secret}")\n'
        '    assert secret == "other", f"compared {secret}"\n'
    )
    html_path, xml_path = example.path / "r.html", example.path / "r.xml"
    run = example.run("-l", "--tb=long", "--html", str(html_path), "--junitxml", str(xml_path))
    assert run.ret == 2
    everything = "\n".join(run.outlines + run.errlines) + html_path.read_text() + \
        xml_path.read_text() + json.dumps(run.results)
    assert "canary-watchtower-s3cret" not in everything
    assert "***REDACTED***" in everything
    assert "SECRET LEAK" not in everything


def test_environment_table_is_allowlisted(example: ChecksPytester, monkeypatch):
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("GITLAB_USER_EMAIL", "oncall@example.com")
    monkeypatch.setenv("CI_REPOSITORY_URL", "https://gitlab-ci-token:glpat-canary123@git.example/r")
    html_path, xml_path = example.path / "r.html", example.path / "r.xml"
    example.run("-k", "test_is1", "--metadata", "DATABASE_URL", "postgresql://u:pw-canary9@h/db",
                "--html", str(html_path), "--junitxml", str(xml_path))
    outputs = html_path.read_text() + xml_path.read_text()
    for leaked in ("oncall@example.com", "glpat-canary123", "pw-canary9", "DATABASE_URL"):
        assert leaked not in outputs
    assert "Suite version" in html_path.read_text()


def test_reruns_are_refused(example: ChecksPytester):
    # Stands in for pytest-rerunfailures' option, which is not installed here.
    conftest = example.path / "conftest.py"
    conftest.write_text(conftest.read_text() + (
        "\ndef pytest_addoption(parser):\n    parser.addoption('--reruns', type=int, default=0)\n"))
    run = example.run("--reruns", "2")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert any("--reruns is refused" in line for line in run.errlines)


def test_plugins_the_checks_never_use_are_not_loaded(example: ChecksPytester):
    """anyio's plugin costs every incident and canary run about a quarter second."""
    example.only_check("test_000_plugins.py",
        'import pytest\n'
        'pytestmark = [pytest.mark.ingest_stalled, pytest.mark.system("opsmantik")]\n'
        'def test_is1_plugins(request, evidence):\n'
        '    """IS-1: The example passes."""\n'
        '    loaded = [n for n in ("anyio", "platformdirs", "html_fixtures")\n'
        '              if request.config.pluginmanager.has_plugin(n)]\n'
        '    assert loaded == [], f"loaded: {loaded}"\n'
    )
    run = example.run()
    assert run.states() == {"IS-1": "PASS"}, run.messages()


def test_an_id_built_from_a_secret_is_refused_before_anything_runs(example: ChecksPytester):
    example.only_check("test_000_ids.py",
        'import pytest\n'
        'pytestmark = [pytest.mark.ingest_stalled, pytest.mark.system("opsmantik")]\n'
        '@pytest.mark.parametrize("x", [1], ids=["canary-watchtower-s3cret"])\n'
        'def test_is1_by_id(x, evidence):\n'
        '    """IS-1: The example passes."""\n'
    )
    html_path, xml_path = example.path / "r.html", example.path / "r.xml"
    run = example.run("--html", str(html_path), "--junitxml", str(xml_path))
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert any("this check's id contains a secret" in line and "***REDACTED***" in line
               for line in run.errlines)
    written = [p.read_text() for p in (html_path, xml_path) if p.exists()]
    everything = "\n".join(run.outlines + run.errlines + written) + json.dumps(run.results)
    assert "canary-watchtower-s3cret" not in everything
    assert run.states() == {}


def test_findings_and_reasons_are_one_line_without_a_traceback(example: ChecksPytester):
    html_path, xml_path = example.path / "r.html", example.path / "r.xml"
    run = example.run("-k", "test_is3 or test_is4", "--html", str(html_path), "--junitxml", str(xml_path))
    outputs = "\n".join(run.outlines + run.errlines) + html_path.read_text() + xml_path.read_text()
    assert "ValueError: harness broke (in the check's call; --checks-tracebacks shows where)" in outputs
    assert 'raise ValueError("harness broke")' not in outputs  # no source line of a traceback
    assert "assert observed > 0" not in outputs  # the finding, not the assertion's code
    debugging = example.run("-k", "test_is4", "--checks-tracebacks")
    assert any('raise ValueError("harness broke")' in line for line in debugging.outlines)
