"""SAFETY.md's promises that need a real target, against the running sandbox."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fixtures.connecting import APPLICATION_NAME
from tests.conftest import ChecksPytester
from tests.hostile import refused_port, silent_listener
from tests.sandbox_handle import Sandbox

pytestmark = pytest.mark.sandbox

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
UNTOUCHED_BY_TRAFFIC = """
select (select md5(string_agg(id::text || name, ',' order by id)) from public.sites) as sites,
       (select count(*) from public.watchtower_checks) as watchtower_checks,
       (select count(*) from public.sync_dlq) as sync_dlq,
       (select count(*) from pg_class where relname like 'sessions_%' or relname like 'events_%')
           as partitions
"""


def requests_since(sandbox: Sandbox, offset: int) -> list[dict[str, str]]:
    lines = (sandbox.home / "requests.jsonl").read_text().splitlines()[offset:]
    return [json.loads(line) for line in lines]


def request_count(sandbox: Sandbox) -> int:
    path = sandbox.home / "requests.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


class BackendCounter:
    """Samples how many backends the suite holds per database while a run goes on."""

    def __init__(self, dsn: str) -> None:
        self.dsn, self.peak, self._stop = dsn, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            while not self._stop.wait(0.05):
                row = admin.execute(
                    "select coalesce(max(n), 0) from (select count(*) as n from pg_stat_activity "
                    "where application_name = %s group by datname) per_db", (APPLICATION_NAME,),
                ).fetchone()
                self.peak = max(self.peak, row[0] if row else 0)

    def __enter__(self) -> BackendCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def fingerprint(sandbox: Sandbox) -> tuple[object, ...] | None:
    with psycopg.connect(sandbox.superuser_url("opsmantik"), autocommit=True) as admin:
        return admin.execute(UNTOUCHED_BY_TRAFFIC).fetchone()


def test_default_run_writes_nothing_and_sends_only_safe_methods(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester
):
    before, offset = fingerprint(sandbox), request_count(sandbox)
    with BackendCounter(sandbox.superuser_url("opsmantik")) as backends:
        run = sandbox_pytester.run()
    assert run.ret == 0, run.messages()
    assert fingerprint(sandbox) == before
    methods = {r["method"] for r in requests_since(sandbox, offset)}
    assert methods and methods <= SAFE_METHODS, methods
    assert backends.peak == 1  # one connection per system per run


def test_the_report_identifies_itself(sandbox: Sandbox, sandbox_pytester: ChecksPytester):
    run = sandbox_pytester.run("-m", "partition_drift")
    clock = run.results["clock"]["opsmantik"]
    assert clock["db_host"] == "127.0.0.1"
    assert abs(clock["skew_ms"]) < 5000
    assert run.results["db_now"]["opsmantik"] == clock["db_now"]
    assert run.results["suite_version"]
    notes = [e["text"] for c in run.results["checks"] for e in c["evidence"]
             if e["kind"] == "note" and e["text"].startswith("session:")]
    assert len(notes) == len(run.results["checks"])  # each check its own transaction and now()
    assert all("read-only on" in n for n in notes)


def test_results_do_not_depend_on_the_runners_time_zone(sandbox_pytester: ChecksPytester, monkeypatch):
    baseline = sandbox_pytester.run("-m", "partition_drift or ingest_stalled")
    monkeypatch.setenv("PGTZ", "America/Sao_Paulo")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    shifted = sandbox_pytester.run("-m", "partition_drift or ingest_stalled")
    assert shifted.states() == baseline.states()
    assert set(shifted.states().values()) == {"PASS"}


def test_a_missing_secret_sends_no_request(sandbox: Sandbox, sandbox_pytester: ChecksPytester):
    env = "\n".join(line for line in sandbox.env_file.read_text().splitlines()
                    if not line.startswith("OPSMANTIK_CRON_SECRET="))
    sandbox_pytester.env_file("sandbox", env + "\n")
    offset = request_count(sandbox)
    run = sandbox_pytester.run("--allow-side-effects", "-k", "test_is12b")
    assert run.states() == {"IS-12b": "UNKNOWN"}
    assert "missing setting OPSMANTIK_CRON_SECRET" in run.messages()["IS-12b"]
    assert not [r for r in requests_since(sandbox, offset) if r["path"].startswith("/api/cron")]


def with_values(env: str, **overrides: str) -> str:
    """The env file text with some variables replaced."""
    lines = [line for line in env.splitlines() if line.split("=", 1)[0] not in overrides]
    return "\n".join(lines + [f"{k}={v}" for k, v in overrides.items()]) + "\n"


@pytest.fixture
def broken_targets(sandbox: Sandbox) -> Iterator[dict[str, tuple[str, str, float]]]:
    """name -> (env text, expected stage/reason, deadline in seconds) for a new user's mistakes."""
    real, dsn = sandbox.env_file.read_text(), sandbox.checks_ro_url("opsmantik")
    password = re.search(r"checks_ro:([^@]+)@", dsn).group(1)  # type: ignore[union-attr]
    with silent_listener() as (host, silent):
        refused = refused_port()
        yield {
            "refused": (with_values(real, OPSMANTIK_DATABASE_URL=re.sub(r":\d+/", f":{refused}/", dsn),
                                    OPSMANTIK_BASE_URL=f"http://127.0.0.1:{refused}"),
                        f"127.0.0.1:{refused}/opsmantik as checks_ro (stage connect)", 10),
            "silent": (with_values(real, OPSMANTIK_DATABASE_URL=re.sub(r":\d+/", f":{silent}/", dsn)),
                       f"{host}:{silent}/opsmantik as checks_ro (stage connect)", 20),
            "wrong_password": (with_values(real, OPSMANTIK_DATABASE_URL=dsn.replace(
                                   password, "wrong-x9-q7z3k-0")),
                               "password authentication failed for user", 10),
        }


@pytest.mark.parametrize("mistake", ["refused", "silent", "wrong_password"])
def test_a_broken_target_is_unknown_fast_and_leaks_nothing(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester, broken_targets, mistake: str
):
    env, reason, deadline = broken_targets[mistake]
    sandbox_pytester.env_file("broken", env)
    html = sandbox_pytester.path / "r.html"
    started = time.monotonic()
    run = sandbox_pytester.run("--target", "broken", "-m", "partition_drift", "--html", str(html))
    elapsed = time.monotonic() - started
    assert run.ret == 3
    assert set(run.states().values()) == {"UNKNOWN"}
    assert all(reason in message for message in run.messages().values()), run.messages()
    assert elapsed < deadline
    secret = re.search(r"checks_ro:([^@]+)@", env).group(1)  # type: ignore[union-attr]
    outputs = "\n".join(run.outlines + run.errlines) + html.read_text() + json.dumps(run.results)
    assert secret not in outputs


def test_the_tripwire_catches_a_leak_the_scrubber_missed(sandbox: Sandbox, sandbox_pytester: ChecksPytester):
    """Negative control: with every scrubbing switched off, the run must not end green."""
    conftest = sandbox_pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + (
        "\nimport fixtures.redaction\n"
        "fixtures.redaction.Redactor.scrub = lambda self, text: text\n"
    ))
    sandbox_pytester.only_check("test_002_leak.py", 
        "import pytest\n"
        "pytestmark = [pytest.mark.partition_drift, pytest.mark.system('opsmantik')]\n"
        "def test_pd2_leaks(system_settings):\n"
        "    '''PD-2: The trigger verify function returns true, as the verify script requires.'''\n"
        "    secret = system_settings.require('OPSMANTIK_WATCHTOWER_SECRET').value\n"
        "    assert secret == 'x', 'leaked ' + secret\n"
    )
    html = sandbox_pytester.path / "r.html"
    run = sandbox_pytester.run("--html", str(html))
    assert run.ret == 3
    assert any("SECRET LEAK" in line for line in run.errlines)
    assert Path(html).exists()
