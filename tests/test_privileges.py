"""The checker's own limits are UNKNOWN, not findings (SAFETY.md P22): revoke each kind of grant
the README gives the read-only role, one at a time, on the real sandbox; the checks that need it
end UNKNOWN with the exact statement to run, and PASS again once it is restored."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.conftest import REPO, ChecksPytester
from tests.sandbox_handle import Sandbox

pytestmark = pytest.mark.sandbox

# (database, revoke, restore, -k selection, item, the statement the finding must give)
GRANTS = [
    pytest.param(
        "launchsin", "REVOKE authenticated FROM checks_ro",
        "GRANT authenticated TO checks_ro WITH INHERIT FALSE, SET TRUE",
        "ei13", "EI-13", "grant authenticated to checks_ro with inherit false, set true;",
        id="role membership for SET ROLE"),
    pytest.param(
        "opsmantik", "REVOKE SELECT ON public.sync_dlq FROM checks_ro",
        "GRANT SELECT ON public.sync_dlq TO checks_ro",
        "is4", "IS-4", "grant select on sync_dlq to checks_ro;", id="SELECT on a table"),
    pytest.param(
        "opsmantik", "REVOKE EXECUTE ON FUNCTION public.verify_partition_triggers_exist() FROM checks_ro",
        "GRANT EXECUTE ON FUNCTION public.verify_partition_triggers_exist() TO checks_ro",
        "pd2", "PD-2", "grant execute on function verify_partition_triggers_exist to checks_ro;",
        id="EXECUTE on a function"),
]


@pytest.mark.parametrize(("database", "revoke", "restore", "selection", "item", "grant"), GRANTS)
def test_a_missing_grant_is_unknown_with_the_statement_to_run(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester,
    database: str, revoke: str, restore: str, selection: str, item: str, grant: str,
):
    with sandbox.superuser(database) as admin:
        admin.execute(revoke)
    try:
        run = sandbox_pytester.run("-k", selection)
    finally:
        with sandbox.superuser(database) as admin:
            admin.execute(restore)
    assert run.states() == {item: "UNKNOWN"}, json.dumps(run.messages(), indent=2)
    message = run.messages()[item]
    assert "CheckerLacksPrivilege" in message and "the suite could not look" in message
    assert f"run: {grant}" in message
    assert sandbox_pytester.run("-k", selection).states() == {item: "PASS"}


README = (REPO / "README.md").read_text()
ROLE_SECTION = README.split("## A read-only role", 1)[1].split("\n## ", 1)[0]
RECIPES = re.findall(r"```sql\n(.*?)```", ROLE_SECTION, re.DOTALL)
RECIPE_ROLE = "checks_readme"


def statements(recipe: str) -> list[str]:
    """The recipe's statements, comments dropped, as a person pastes them."""
    code = "\n".join(line.split("--", 1)[0] for line in recipe.splitlines())
    return [" ".join(s.split()) for s in code.split(";") if s.strip()]


def applies(statement: str, system: str, functions: set[str]) -> bool:
    """Cluster-wide statements once (on OpsMantik); a function grant where its functions exist."""
    if statement.startswith(("create role", "alter role")):
        return system == "opsmantik"
    named = set(re.findall(r"public\.(\w+)\(", statement))
    return named <= functions


@pytest.fixture
def readme_role(sandbox: Sandbox) -> Iterator[str]:
    """The README's read-only role, made exactly as written (PostgreSQL 16+ form: the sandbox's
    server is the wheel's 18), under another name, on every system's database."""
    password = secrets.token_urlsafe(18)
    assert len(RECIPES) == 2, "the README's role section should hold the two SQL recipes"
    systems = ("opsmantik", "launchsin")
    try:
        for system in systems:
            with sandbox.superuser(system) as admin:
                functions = {r[0] for r in admin.execute(
                    "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace")}
                for recipe in RECIPES:
                    for statement in statements(recipe):
                        if applies(statement, system, functions):
                            admin.execute(statement.replace("checks_ro", RECIPE_ROLE)
                                          .replace("'...'", f"'{password}'")
                                          .replace("database postgres", f"database {system}"))
        yield password
    finally:
        for system in systems:
            with sandbox.superuser(system) as admin:
                admin.execute(f"DROP OWNED BY {RECIPE_ROLE}")  # no-op where it owns nothing
        with sandbox.superuser("postgres") as admin:
            admin.execute(f"DROP ROLE IF EXISTS {RECIPE_ROLE}")


def test_the_readme_role_recipes_run_every_read_only_check(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester, readme_role: str
):
    login = f"checks_ro:{quote(sandbox.state.checks_ro_password, safe='')}@"
    env = [line.replace(login, f"{RECIPE_ROLE}:{readme_role}@")
           if line.startswith(("OPSMANTIK_", "LAUNCHSIN_")) else line
           for line in sandbox.env_file.read_text().splitlines()]
    assert sum(f"{RECIPE_ROLE}:" in line for line in env) == 2
    sandbox_pytester.env_file("sandbox", "\n".join(env) + "\n")
    run = sandbox_pytester.run("-m", "ingest_stalled or partition_drift or event_ingest")
    lacking = {item: m for item, m in run.messages().items() if "CheckerLacksPrivilege" in m}
    assert lacking == {}
    assert {item: s for item, s in run.states().items() if s != "PASS"} == {}, run.messages()


# The session's identity (SAFETY.md P26): the role in effect must be the configured login, not a
# superuser, not a writer; otherwise every database check of the system is UNKNOWN naming it.
IMPOSTOR = "checks_impostor"


@pytest.fixture
def impostor(sandbox: Sandbox) -> Iterator[str]:
    """A login whose role in effect is another (as a proxy substituting identity would make it),
    and which may write a table."""
    password = secrets.token_urlsafe(18)
    with sandbox.superuser("opsmantik") as admin:
        admin.execute(f"CREATE ROLE {IMPOSTOR} LOGIN PASSWORD '{password}'")
        admin.execute(f"GRANT CONNECT ON DATABASE opsmantik TO {IMPOSTOR}")
        admin.execute(f"GRANT checks_ro TO {IMPOSTOR}")
        admin.execute(f"GRANT USAGE ON SCHEMA public TO {IMPOSTOR}")
        admin.execute(f"GRANT SELECT, INSERT ON public.watchtower_checks TO {IMPOSTOR}")
    try:
        yield password
    finally:
        with sandbox.superuser("opsmantik") as admin:
            admin.execute(f"DROP OWNED BY {IMPOSTOR}")
            admin.execute(f"DROP ROLE {IMPOSTOR}")


def run_as(sandbox: Sandbox, pytester: ChecksPytester, url: str):
    env = [f"OPSMANTIK_DATABASE_URL={url}" if line.startswith("OPSMANTIK_DATABASE_URL=") else line
           for line in sandbox.env_file.read_text().splitlines()]
    pytester.env_file("sandbox", "\n".join(env) + "\n")
    return pytester.run("-m", "partition_drift")


def test_a_superuser_session_is_refused(sandbox: Sandbox, sandbox_pytester: ChecksPytester):
    run = run_as(sandbox, sandbox_pytester, sandbox.superuser_url("opsmantik"))
    db_items = {item: m for item, m in run.messages().items() if item != "PD-1"}
    assert set(run.states().values()) == {"UNKNOWN"}
    assert all("session identity refused" in m and "postgres is a superuser" in m
               for m in db_items.values()), db_items


def test_a_writer_or_substituted_role_is_refused(
    sandbox: Sandbox, sandbox_pytester: ChecksPytester, impostor: str
):
    url = re.sub(r"//checks_ro:[^@]+@", f"//{IMPOSTOR}:{impostor}@", sandbox.checks_ro_url("opsmantik"))
    run = run_as(sandbox, sandbox_pytester, url)
    assert run.states()["PD-2"] == "UNKNOWN"
    assert f"{IMPOSTOR} may write watchtower_checks" in run.messages()["PD-2"]
    with sandbox.superuser("opsmantik") as admin:  # now a proxy-like swap of the role in effect
        admin.execute(f"REVOKE INSERT ON public.watchtower_checks FROM {IMPOSTOR}")
        admin.execute(f"ALTER ROLE {IMPOSTOR} SET role = 'checks_ro'")
    run = run_as(sandbox, sandbox_pytester, url)
    assert (f"the role in effect is checks_ro (session user {IMPOSTOR}), not the configured "
            f"login {IMPOSTOR}") in run.messages()["PD-2"]
