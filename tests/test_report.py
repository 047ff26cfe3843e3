"""The report as incident proof, run as a user runs it (pytest in a subprocess on the example
checks): the verdict first, the runbook's diagnosis, corrections, attested manual items, the
Markdown summary, and the page as a real browser draws it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ChecksPytester

EXAMPLE_ENV = "OPSMANTIK_BASE_URL=http://127.0.0.1:1\n"
ATTESTED = "rolled back deploy 4f2a; on call"


@pytest.fixture
def example(example_pytester: ChecksPytester) -> ChecksPytester:
    example_pytester.env_file("sandbox", EXAMPLE_ENV)
    return example_pytester


def test_the_json_carries_verdict_diagnosis_corrections_and_attestations(example: ChecksPytester):
    run = example.run("--attest", f"IS-7={ATTESTED}")
    doc = run.results
    assert doc["verdict"] == "UNKNOWN" and run.ret == 3
    assert [d["decision"] for d in doc["diagnosis"]] == ["IS-D1", "IS-D2"]
    assert doc["diagnosis"][0] == {
        "runbook": "000", "decision": "IS-D1", "conclusion": "the example fails while its neighbour passes",
        "next_step": "fix the example", "because": ["IS-3 FAIL", "IS-1 PASS"]}
    assert doc["corrections"] == [{"runbook": "000", "item": "IS-3", "says": "the example passes",
                                   "does": "the example fails"}]
    [attested] = doc["attested"]
    assert (attested["item"], attested["text"]) == ("IS-7", ATTESTED) and attested["by"]


def test_the_terminal_ends_with_the_verdict_line(example: ChecksPytester):
    run = example.run("-k", "test_is1 or test_is2")
    assert run.outlines[-1] == "verdict: WARN (1 PASS, 1 WARN, 0 FAIL, 0 UNKNOWN) on target sandbox"
    assert any("runbook 000: the example is past its warning line (because IS-2 WARN)" in line
               for line in run.outlines)


def test_a_healthy_run_says_so_and_leaves_the_manual_box_open(example: ChecksPytester):
    markdown = example.path / "s.md"
    run = example.run("-k", "test_is1", "--summary-md", str(markdown))
    assert [d["conclusion"] for d in run.results["diagnosis"]] == [
        "healthy: every automated item passes"]
    text = markdown.read_text()
    assert text.startswith("## runbook-checks: PASS on sandbox")
    assert "- [ ] IS-7: A person ticks this" in text


def test_the_markdown_summary_is_short_and_complete(example: ChecksPytester):
    markdown = example.path / "s.md"
    html_path = example.path / "r.html"
    example.run("--summary-md", str(markdown), "--html", str(html_path),
                "--attest", f"IS-7={ATTESTED}")
    text = markdown.read_text()
    assert text.startswith("## runbook-checks: UNKNOWN on sandbox")
    assert "- **Runbook 000: the example fails while its neighbour passes** (because IS-3 FAIL, " \
           "IS-1 PASS). Next: fix the example" in text
    assert "| FAIL | IS-3 | The example fails. 0 sessions in the last hour" in text
    assert "| UNKNOWN | IS-4 |" in text and "| PASS |" not in text
    assert "| 000 IS-3 | the example passes | the example fails |" in text
    assert f"- [x] IS-7: {ATTESTED}" in text
    assert f"`{html_path}`" in text
    assert len(text.splitlines()) < 40


@pytest.mark.parametrize(("args", "problem"), [
    (["--attest", "IS-3=looked at it"], "IS-3 is an automated item of runbook 000"),
    (["--attest", "XX-9=done"], "XX-9 is not an item of any runbook. Manual items: IS-7"),
    (["--attest", "IS-7"], "'IS-7' is not an attestation"),
])
def test_attesting_what_cannot_be_attested_is_a_usage_error(example: ChecksPytester, args, problem):
    run = example.run(*args)
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert any(problem in line for line in run.errlines), run.errlines


def test_an_attest_file_names_its_bad_line(example: ChecksPytester):
    attest = example.path / "attest.txt"
    attest.write_text("# done during the incident\nIS-7: rolled back\nIS-2: fine\n")
    run = example.run("--attest-file", str(attest))
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert any(f"{attest}:3: IS-2 is an automated item" in line for line in run.errlines)


def test_an_attestation_is_scrubbed_like_everything_else(example: ChecksPytester):
    example.env_file("sandbox", EXAMPLE_ENV + "OPSMANTIK_CRON_SECRET=canary-cron-s3cret\n")
    run = example.run("-k", "test_is1", "--attest", "IS-7=pasted canary-cron-s3cret by mistake")
    assert run.results["attested"][0]["text"] == "pasted ***REDACTED*** by mistake"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed: `make test` as root installs it, or apt-get install chromium")
    return found


def rendered(path) -> str:
    """The page after its scripts ran, as headless Chromium draws it."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout


def test_the_rendered_page_leads_with_the_verdict_and_shows_the_evidence(example: ChecksPytester):
    html_path = example.path / "r.html"
    example.run("--html", str(html_path))
    dom = rendered(html_path)
    text = re.sub(r"<[^>]+>", " ", dom)
    verdict = text.index("UNKNOWN: 1 PASS, 1 WARN, 1 FAIL, 2 UNKNOWN")
    diagnosis = text.index("Runbook 000: the example fails while its neighbour passes")
    checklist = text.index("Checklist: Runbook 000: example states")
    evidence = text.index("sessions in the last hour = 0")  # IS-3's evidence, drawn by the script
    environment = text.index("Environment (Python, platform, packages, plugins)")
    assert verdict < diagnosis < checklist < evidence < environment
    for state, item in (("PASS", "IS-1"), ("WARN", "IS-2"), ("FAIL", "IS-3"), ("UNKNOWN", "IS-4")):
        assert re.search(rf"{state}\s+{item}\b", text), f"{item} is not shown {state}"
    assert "This runbook needs these corrections" in text
    assert '<details id="environment-details">' in dom
