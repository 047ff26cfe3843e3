"""The HTTP rows of the bad-input matrix (SAFETY.md (b)), through the suite's own client.

Each test asks the hostile target for one misbehaviour through `Api`, judges it the way a health
check does, and asserts the state, the reason, the time it took, and that nothing on the "never"
list happened (a hang, a followed redirect, a retry storm, a secret in the message).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from fixtures.errors import CheckSuiteError
from fixtures.evidence import Evidence
from fixtures.http import Api, make_client
from fixtures.settings import Budget
from tests.conftest import REPO
from tests.hostile import HostileHttp, refused_port, silent_listener
from tests.hostile.routes import nested_gzip_bomb_body

BUDGET = Budget(http_timeout=1.0, http_deadline=3.0)
SECRET = "hostile-canary-token-42"


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileHttp]:
    nested_gzip_bomb_body()  # a few seconds to build: not inside any request's deadline
    with HostileHttp(flaky_failures=1) as server:
        yield server


@pytest.fixture
def target(hostile: HostileHttp) -> HostileHttp:
    hostile.reset()
    return hostile


def api_for(base_url: str, evidence: Evidence | None = None) -> Api:
    return Api(make_client(base_url, BUDGET), evidence or Evidence("t"), BUDGET, None)


def judge(probe: Callable[[], None]) -> tuple[str, str, float]:
    """Run a probe as a check would be run: (state, message, seconds)."""
    started = time.monotonic()
    try:
        probe()
    except AssertionError as exc:
        return "FAIL", str(exc), time.monotonic() - started
    except CheckSuiteError as exc:
        return "UNKNOWN", str(exc), time.monotonic() - started
    return "PASS", "", time.monotonic() - started


def health(api: Api, path: str, evidence: Evidence | None = None) -> Callable[[], None]:
    """IS-1's judgement: 200, a JSON object, ok is exactly true, db_ok true or a WARN."""
    def probe() -> None:
        exchange = api.get(path, headers={"Authorization": f"Bearer {SECRET}"})
        exchange.expect_status(200, source="matrix")
        body = exchange.json_object()
        assert body.get("ok") is True, f"ok is {body.get('ok')!r}, expected true"
        if body.get("db_ok") is not True and evidence is not None:
            evidence.warn(f"db_ok is {body.get('db_ok')!r}")
    return probe


@pytest.mark.parametrize(("path", "reason"), [
    ("/html", "expected JSON, got text/html"),
    ("/truncated-json", "invalid JSON"),
    ("/ok-string", "ok is 'false', expected true"),
    ("/ok-null", "ok is None, expected true"),
    ("/ok-missing", "ok is None, expected true"),
    ("/array", "expected a JSON object, got list"),
    ("/redirect-login", "redirected to /login"),
    ("/redirect-cross", "redirected to http://other-origin.invalid/collect"),
    ("/loop-a", "redirected to /loop-b"),
    ("/unauthorized", "answered 401, expected 200 (matrix): the credentials were refused"),
    ("/forbidden", "the credentials were refused"),
    ("/unavailable", "answered 503"),
    ("/huge", "exceeds the 1024 KiB cap"),
    ("/gzip-bomb", "exceeds the 1024 KiB cap"),
    ("/nested-gzip-bomb", "exceeds the 1024 KiB cap"),
    ("/brotli", "content-encoding 'br' was not asked for"),
    ("/duplicate-ok", "ambiguous body: key 'ok' appears twice in one object"),
    ("/deep-json", "JSON nested deeper than the parser allows"),
    ("/nested-json", "JSON nested 81 levels deep (at most 64 are read)"),
])
def test_bad_answers_fail_with_a_reason(target: HostileHttp, path: str, reason: str):
    state, message, elapsed = judge(health(api_for(target.base_url), path))
    assert (state, reason in message) == ("FAIL", True), message
    assert SECRET not in message
    assert elapsed < BUDGET.http_deadline + 1


def test_redirects_are_never_followed(target: HostileHttp):
    for path in ("/redirect-login", "/redirect-cross", "/loop-a"):
        judge(health(api_for(target.base_url), path))
    assert {r.route for r in target.requests} == {"/redirect-login", "/redirect-cross", "/loop-a"}


def test_wrong_body_and_refusals_are_asked_once(target: HostileHttp):
    for path in ("/truncated-json", "/unauthorized", "/ok-string"):
        judge(health(api_for(target.base_url), path))
    assert [r.route for r in target.requests] == ["/truncated-json", "/unauthorized", "/ok-string"]


def test_db_ok_false_is_a_warning_not_a_pass(target: HostileHttp):
    evidence = Evidence("t")
    state, _, _ = judge(health(api_for(target.base_url), "/db-down", evidence))
    assert state == "PASS"
    assert evidence.warnings == ["db_ok is False"]


def test_extra_fields_are_forward_compatible(target: HostileHttp):
    assert judge(health(api_for(target.base_url), "/extra-fields"))[0] == "PASS"


def test_a_transient_503_is_retried_and_both_attempts_are_evidence(target: HostileHttp):
    evidence = Evidence("t")
    state, _, _ = judge(health(api_for(target.base_url, evidence), "/flaky"))
    assert state == "PASS"
    attempts = [(e["attempt"], e["status"]) for e in evidence.entries if e["kind"] == "http"]
    assert attempts == [(1, 503), (2, 200)]


def test_a_persistent_503_stops_within_attempts_and_budget(target: HostileHttp):
    state, _, elapsed = judge(health(api_for(target.base_url), "/unavailable"))
    assert state == "FAIL"
    assert len(target.requests) == 3
    assert elapsed < BUDGET.http_deadline + 1


def test_rate_limit_never_sleeps_past_the_deadline(target: HostileHttp):
    state, message, elapsed = judge(health(api_for(target.base_url), "/rate-limited"))
    assert state == "UNKNOWN"
    assert "rate limited (429, Retry-After 3600)" in message
    assert elapsed < 1


@pytest.mark.parametrize(("path", "reason", "within"), [
    ("/slowdrip", "exceeded while reading the body", BUDGET.http_deadline),  # beats per-read timeouts
    ("/silent", "stage read", BUDGET.http_timeout),
    ("/short-body", "stage read", BUDGET.http_deadline),  # transient: retried, then given up
])
def test_no_complete_answer_in_time_is_unknown(target: HostileHttp, path, reason, within):
    state, message, elapsed = judge(health(api_for(target.base_url), path))
    assert state == "UNKNOWN"
    assert reason in message
    assert elapsed < within + 1


def test_a_silent_tcp_listener_is_a_read_timeout():
    with silent_listener() as (host, port):
        state, message, elapsed = judge(health(api_for(f"http://{host}:{port}"), "/api/health"))
    assert state == "UNKNOWN"
    assert "ReadTimeout" in message
    assert elapsed < BUDGET.http_timeout + 1


def test_a_refused_port_is_unknown_fast():
    state, message, elapsed = judge(health(api_for(f"http://127.0.0.1:{refused_port()}"), "/"))
    assert state == "UNKNOWN"
    assert "Connection refused" in message or "ConnectError" in message
    assert elapsed < 2


@pytest.mark.parametrize("mode", ["self_signed", "wrong_host", "expired"])
def test_bad_certificates_are_refused_never_bypassed(mode):
    with HostileHttp(tls=mode) as server:  # type: ignore[arg-type]
        state, message, _ = judge(health(api_for(server.base_url), "/ok"))
        assert server.requests == []  # the handshake failed: no request was ever sent in clear
    assert state == "UNKNOWN"
    assert "stage tls" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message


def test_the_runner_proxy_environment_is_ignored(target: HostileHttp, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{refused_port()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{refused_port()}")
    assert judge(health(api_for(target.base_url), "/ok"))[0] == "PASS"


def test_unsafe_methods_need_the_side_effect_opt_in(target: HostileHttp):
    state, message, _ = judge(lambda: api_for(target.base_url).post("/echo", json_body={}))
    assert state == "UNKNOWN"
    assert "side_effect" in message and "--allow-side-effects" in message
    assert target.requests == []


def test_credentials_are_masked_in_evidence(target: HostileHttp):
    evidence = Evidence("t")
    judge(health(api_for(target.base_url, evidence), "/ok"))
    assert SECRET not in repr(evidence.entries)
    assert evidence.entries[0]["request_headers"]["authorization"] == "[secure]"


PEAK_MEMORY = """
import resource, sys
from fixtures.evidence import Evidence
from fixtures.http import Api, make_client
from fixtures.settings import Budget
budget = Budget(http_timeout=5.0, http_deadline=20.0)
api = Api(make_client(sys.argv[1], budget), Evidence("t"), budget, None)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    api.get("/nested-gzip-bomb")
except AssertionError as exc:
    print("FAIL", exc, file=sys.stderr)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_a_nested_high_ratio_body_is_decoded_within_the_cap(target: HostileHttp):
    """512 MiB behind two gzip layers: the runner's peak memory grows by the cap plus a margin."""
    done = subprocess.run([sys.executable, "-c", PEAK_MEMORY, target.base_url], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=True)
    grown_kib = int(done.stdout.strip())
    assert "exceeds the 1024 KiB cap" in done.stderr
    assert grown_kib < 1024 + 8 * 1024, f"peak memory grew by {grown_kib} KiB"
