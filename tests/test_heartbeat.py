"""The dead-man switch against a loopback receiver standing in for Healthchecks.io: /start when
the run begins, the bare URL on success, /fail otherwise, the verdict line as the body; the URL's
key redacted everywhere; a receiver that is down, refusing or slow never changes the run."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fixtures.heartbeat import ATTEMPTS, BODY_CAP, DEADLINE_S, Heartbeat, secrets_in
from tests.conftest import ChecksPytester
from tests.hostile import refused_port
from tests.loopback import PING_KEY as KEY
from tests.loopback import Receiver, ping_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with ping_receiver() as state:
        yield state


@pytest.fixture
def example(example_pytester: ChecksPytester) -> ChecksPytester:
    example_pytester.env_file("sandbox", "OPSMANTIK_BASE_URL=http://127.0.0.1:1\n")
    return example_pytester


def test_a_green_run_pings_start_then_success_with_its_verdict(example: ChecksPytester, receiver):
    run = example.run("-k", "test_is1", "--heartbeat-url", receiver.url)
    assert run.ret == 0
    assert receiver.paths() == ["/start", "/"]
    (_, start_rid, _), (_, end_rid, body) = receiver.pings
    assert start_rid == end_rid and len(start_rid) == 36  # one run id pairs the two
    assert body == "verdict: PASS (1 PASS, 0 WARN, 0 FAIL, 0 UNKNOWN) on target sandbox"
    assert "heartbeat: success ping sent" in run.outlines


@pytest.mark.parametrize(("args", "ending"), [
    (["-k", "test_is3"], "/fail"),  # FAIL
    (["-k", "test_is4"], "/fail"),  # UNKNOWN
    (["-k", "test_is2"], "/fail"),  # WARN pages unless the canary accepts it
    (["-k", "test_is2", "--checks-warn-ok"], "/"),
    (["-k", "nothing_matches"], "/fail"),  # no check ran: never green
])
def test_anything_but_a_green_exit_pings_fail(example: ChecksPytester, receiver, args, ending):
    example.run(*args, "--heartbeat-url", receiver.url)
    assert receiver.paths() == ["/start", ending]


def test_the_environment_variable_works_and_the_key_is_never_shown(example: ChecksPytester, receiver,
                                                                   monkeypatch):
    monkeypatch.setenv("CHECKS_HEARTBEAT_URL", receiver.url)
    receiver.status = 500  # a failing receiver: its warning must not carry the URL either
    html, md = example.path / "r.html", example.path / "s.md"
    run = example.run("-k", "test_is1 or test_is3", "--html", str(html), "--summary-md", str(md))
    assert receiver.paths() == ["/start"] * ATTEMPTS + ["/fail"] * ATTEMPTS
    everything = "\n".join(run.outlines + run.errlines) + html.read_text() + md.read_text()
    assert KEY not in everything and "SECRET LEAK" not in everything
    assert "warning: heartbeat /fail ping not delivered: answered 500" in run.errlines
    assert run.ret == 2  # the run's own verdict, whatever the receiver did


@pytest.mark.parametrize("receiver_problem", ["refused", "refusing", "slow"])
def test_a_broken_receiver_never_changes_the_verdict_and_is_bounded(example: ChecksPytester, receiver,
                                                                     receiver_problem):
    url = receiver.url
    if receiver_problem == "refused":
        url = f"http://127.0.0.1:{refused_port()}/ping/{KEY}"
    elif receiver_problem == "refusing":
        receiver.status = 404  # a wrong key: not retried
    else:
        receiver.delay = 6  # past the 5 s timeout, every attempt
    started = time.monotonic()
    run = example.run("-k", "test_is1", "--heartbeat-url", url)
    assert run.ret == 0 and run.states() == {"IS-1": "PASS"}
    assert run.outlines[-1].startswith("verdict: PASS")
    assert any(line.startswith("warning: heartbeat") for line in run.errlines), run.errlines
    if receiver_problem == "refusing":
        assert receiver.paths() == ["/start", "/"]
    assert time.monotonic() - started < 2 * DEADLINE_S + 15  # two pings, each bounded


def test_a_bad_heartbeat_url_is_a_usage_error_that_does_not_echo_it(example: ChecksPytester):
    run = example.run("--heartbeat-url", f"ftp://host/{KEY}")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert any("Invalid heartbeat URL from --heartbeat-url: expected an http(s) URL" in line
               for line in run.errlines)
    assert KEY not in "\n".join(run.errlines + run.outlines)


def test_the_body_is_capped_and_the_key_is_what_is_secret(receiver):
    Heartbeat(receiver.url).finish(ok=False, summary="x" * (BODY_CAP * 3))
    assert len(receiver.pings[0][2]) == BODY_CAP
    assert secrets_in(receiver.url) == [KEY]  # not "http://127...": every report has that
    assert secrets_in("https://user:pw-canary@hc.example/abc") == ["pw-canary"]
