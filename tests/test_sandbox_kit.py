"""The sandbox's contract and kit, proven on a throw-away system with three listeners: two ASGI
apps and an external process (Python's own file server), on a sandbox of its own that
RUNBOOK_SANDBOX_SYSTEMS limits to this system.

This sandbox is also where `up` restarts what died and `down` stops everything: the session's
sandbox must stay up for the other modules. Every test starts from a running sandbox whatever
ran before it, so the order of the tests does not matter.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox import external, kit, lifecycle, listeners, procs
from sandbox import state as state_file
from sandbox.errors import SandboxError
from sandbox.paths import Home
from sandbox.system import App, AppFactory, Context, Fault, Process, System
from sandbox.systems import REGISTERED, SYSTEMS_VARIABLE, selected
from tests.sandbox_handle import Sandbox, temporary_root

pytestmark = pytest.mark.sandbox

NAME = "kitdemo"
FAULT = "kitdemo_front_down"
SELECTION = f"{__name__}:SYSTEM"  # how RUNBOOK_SANDBOX_SYSTEMS names a system defined here
FILES = "kitdemo-files"  # the directory under the home the file server serves
GREETING = "hello from the file server\n"
BROKEN_TABLE = "public.kitdemo_broken"


def provision(ctx: Context) -> str:
    created = kit.ensure_database(ctx)
    served = ctx.home.root / FILES
    served.mkdir(exist_ok=True)
    (served / "hello.txt").write_text(GREETING)
    return f"database {ctx.system.database} {'created' if created else 'ready'}"


def text_app(text: str, *, breaks: bool) -> AppFactory:
    """An app that says `text`, or answers 503 while the fault is active if it `breaks`."""
    def create(ctx: Context) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            broken = breaks and FAULT in ctx.active_faults()
            await PlainTextResponse(text, status_code=503 if broken else 200)(scope, receive, send)
        return app
    return create


def file_server(ctx: Context, port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
            "--directory", str(ctx.home.root / FILES)]


def front_healthy(ctx: Context) -> bool:
    with httpx.Client(base_url=ctx.url("front"), timeout=10) as client:
        answers = client.get("/").status_code == 200
    with ctx.superuser() as conn:
        row = conn.execute(f"SELECT to_regclass('{BROKEN_TABLE}') IS NULL").fetchone()
    return answers and row == (True,)


SYSTEM = System(
    name=NAME,
    database=NAME,
    database_variable="KITDEMO_DATABASE_URL",
    new_settings=dict,
    provision=provision,
    env=lambda ctx: {"KITDEMO_GREETING": GREETING.strip()},
    apps={"front": App(text_app("front", breaks=True), url_variable="KITDEMO_FRONT_URL"),
          "admin": App(text_app("admin", breaks=False), url_variable="KITDEMO_ADMIN_URL")},
    processes={"files": Process(file_server, url_variable="KITDEMO_FILES_URL")},
    faults=(Fault(FAULT, NAME, "The front answers 503, and a table appears in the database.", {},
                  kit.statement(f"CREATE TABLE {BROKEN_TABLE} ()"),
                  kit.statement(f"DROP TABLE {BROKEN_TABLE}"), front_healthy),),
)


@pytest.fixture(scope="module")
def kit_home() -> Iterator[Sandbox]:
    with temporary_root("kit") as root:
        box = Sandbox(root / "home", root / "kit.env", systems=SELECTION)
        try:
            yield box
        finally:
            box.cli("down")


@pytest.fixture
def box(kit_home: Sandbox) -> Sandbox:
    """The throw-away sandbox, running (started again if a test before stopped it)."""
    if not lifecycle.is_running(Home.at(kit_home.home)):
        kit_home.up()
    return kit_home


def answer(box: Sandbox, listener: str, path: str = "/") -> tuple[int, str]:
    with box.http(NAME, listener) as client:
        response = client.get(path)
    return response.status_code, response.text


def test_the_variable_chooses_the_systems(tmp_path) -> None:
    assert selected({}) == REGISTERED
    assert [s.name for s in selected({SYSTEMS_VARIABLE: " launchsin , opsmantik "})] == [
        "launchsin", "opsmantik"]
    assert selected({SYSTEMS_VARIABLE: SELECTION}) == (SYSTEM,)
    for spec, message in [("nosuch", "unknown system 'nosuch' in RUNBOOK_SANDBOX_SYSTEMS"),
                          ("opsmantik,opsmantik", "names a system twice"),
                          ("tests.no_such_module:SYSTEM", "cannot load"),
                          (f"{__name__}:NAME", "is a str, not a sandbox.system.System")]:
        with pytest.raises(SandboxError, match=message):
            selected({SYSTEMS_VARIABLE: spec})
    wrong = Sandbox(tmp_path, tmp_path / "env", systems="nosuch").cli("faults")
    assert (wrong.returncode, wrong.stdout) == (1, "")
    assert "registered: opsmantik, launchsin" in wrong.stderr


def test_a_home_of_the_one_port_per_system_era_says_what_to_do(tmp_path) -> None:
    home = Home.at(tmp_path)
    home.state.write_text('{"format": 1, "superuser_password": "x", "checks_ro_password": "y",'
                          ' "pg_port": 5432, "app_ports": {"opsmantik": 8000}}')
    with pytest.raises(state_file.StateError, match="written by another sandbox version; stop it"
                       r" with `python -m sandbox down` and remove"):
        state_file.load(home)
    assert lifecycle.status(home).lines[0].startswith("sandbox: down (")


def test_up_starts_every_listener_and_writes_their_urls(box: Sandbox) -> None:
    ports = box.state.ports
    assert list(ports) == [NAME] and sorted(ports[NAME]) == ["admin", "files", "front"]
    env = box.env
    assert {name: env[f"KITDEMO_{name.upper()}_URL"] for name in ports[NAME]} == {
        name: f"http://127.0.0.1:{port}" for name, port in ports[NAME].items()}
    assert env["KITDEMO_DATABASE_URL"].startswith("postgresql://checks_ro:")
    assert env["KITDEMO_DATABASE_URL"].endswith(f"/{NAME}")
    assert env["KITDEMO_GREETING"] == GREETING.strip()
    assert not [name for name in env if not name.startswith("KITDEMO_")]  # only the chosen system
    assert answer(box, "front") == (200, "front")
    assert answer(box, "admin") == (200, "admin")
    assert answer(box, "files", "/hello.txt") == (200, GREETING)
    assert box.scalar("SELECT current_database()", database=NAME) == NAME


def test_status_and_up_list_every_listener(box: Sandbox) -> None:
    home = Home.at(box.home)
    ports, server = box.state.ports[NAME], external.pid(home, NAME, "files")
    lines = box.ok("status").splitlines()
    assert lines[0].startswith("sandbox: up")
    assert lines[3:6] == [
        f"{NAME}: front http://127.0.0.1:{ports['front']}",
        f"{NAME}: admin http://127.0.0.1:{ports['admin']}",
        f"{NAME}: files http://127.0.0.1:{ports['files']}, running (pid {server}), "
        f"log {home.process_log(NAME, 'files')}",
    ]
    summary = box.up().splitlines()[1]
    assert f"{NAME} front http://127.0.0.1:{ports['front']}" in summary
    assert f"{NAME} admin http://127.0.0.1:{ports['admin']}" in summary
    assert f"{NAME} files http://127.0.0.1:{ports['files']} (pid {server})" in summary  # kept


def test_fault_and_heal_round_trip_through_the_probe(box: Sandbox) -> None:
    assert box.ok("faults").startswith(f"{FAULT} ({NAME}): ")
    with box.broken(FAULT):
        assert answer(box, "front")[0] == 503
        assert answer(box, "admin") == (200, "admin")
        assert box.cli("probe", FAULT).returncode == 1
    assert box.cli("probe", FAULT).returncode == 0


def test_a_fault_of_a_system_this_sandbox_does_not_run_is_refused(box: Sandbox) -> None:
    unknown = box.cli("fault", "cors_reject")
    assert unknown.returncode == 2 and f"known faults: {FAULT}" in unknown.stderr
    elsewhere = Sandbox(box.home, box.env_file).cli("fault", "cors_reject")  # every system
    assert elsewhere.returncode == 1
    assert f"does not run opsmantik (it runs {NAME})" in elsewhere.stderr


def test_up_restarts_a_dead_daemon_and_process(box: Sandbox) -> None:
    home = Home.at(box.home)
    ports = box.state.ports[NAME]
    daemon, server = listeners.daemon_pid(home), external.pid(home, NAME, "files")
    assert daemon is not None and server is not None
    for pid in (daemon, server):
        os.kill(pid, signal.SIGKILL)
    assert procs.wait_until(lambda: not procs.alive(daemon) and not procs.alive(server), 5)
    status = box.cli("status")
    assert status.returncode == 1 and status.stdout.startswith("sandbox: degraded")
    box.up()
    assert listeners.daemon_pid(home) not in (None, daemon)
    assert external.pid(home, NAME, "files") not in (None, server)
    assert box.state.ports[NAME] == ports  # free again, so kept: the env file stays valid
    assert answer(box, "front") == (200, "front")
    assert answer(box, "files", "/hello.txt") == (200, GREETING)


def test_down_stops_every_listener_and_process(box: Sandbox) -> None:
    home = Home.at(box.home)
    pids = [procs.read_pid(home.pgdata / "postmaster.pid"), listeners.daemon_pid(home),
            external.pid(home, NAME, "files")]
    ports = list(box.state.ports[NAME].values())
    assert all(procs.alive(pid) for pid in pids)
    stopped = box.ok("down")
    assert stopped.startswith("stopped daemon (pid ")
    assert f"{NAME} files (pid {pids[2]})" in stopped and f"postgres (pid {pids[0]})" in stopped
    assert not any(procs.alive(pid) for pid in pids)  # a zombie left for init to reap does not count
    assert not any(procs.listening(port) for port in ports)
    assert not home.process_pid(NAME, "files").exists()
    assert box.cli("status").returncode == 1
    refused = box.cli("fault", FAULT)
    assert refused.returncode == 1 and "not running" in refused.stderr
    assert box.ok("down") == "sandbox was not running\n"
