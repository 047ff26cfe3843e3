"""A hostile endpoint echoes the credential back in every way careless servers do; no output of
the run holds it, or a piece of it, in any form (SAFETY.md P20)."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from dotenv import dotenv_values

from fixtures.disclosure import FRAGMENT, views
from tests.conftest import ChecksPytester
from tests.hostile import HostileHttp

SECRET = "tok&<en>\"'\\/+=%-canary-42"
ECHOES = ("header", "html", "redirect", "json", "text", "base64")
CHECK = '''
import logging
import pytest
pytestmark = [pytest.mark.ingest_stalled, pytest.mark.system("opsmantik")]

@pytest.mark.parametrize("kind", {kinds!r})
def test_is1_echo(kind, api, system_settings, evidence):
    """IS-1: The example passes."""
    secret = system_settings.require("OPSMANTIK_WATCHTOWER_SECRET").value
    exchange = api.get("/echo-everywhere", params={{"as": kind}},
                       headers={{"Authorization": f"Bearer {{secret}}"}})
    logging.getLogger("checks.x").warning("answer %s %s", exchange.headers, exchange.text())
    print(exchange.text(), exchange.headers)
    assert exchange.status == 200 and exchange.text() == secret, f"echo {{exchange.text()!r}}"
'''


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileHttp]:
    with HostileHttp() as server:
        yield server


def disclosed(text: str) -> list[str]:
    """Pieces of the secret readable in text by anyone: as it stands, once decoded (HTML,
    percent, JSON/repr escapes), or base64-decoded at any alignment."""
    readable = [view.text for view in views(text)]
    for token in set(text.replace('"', " ").split()):
        for shift in range(4):
            try:
                readable.append(base64.b64decode(token[shift:] + "===", validate=False)
                                .decode("utf-8", "ignore"))
            except ValueError:
                pass
    return sorted({SECRET[i:i + FRAGMENT] for i in range(len(SECRET) - FRAGMENT + 1)
                   for text in readable if SECRET[i:i + FRAGMENT] in text})


def test_the_secret_round_trips_through_the_env_file(tmp_path):
    env = tmp_path / "x.env"
    env.write_text(f"OPSMANTIK_WATCHTOWER_SECRET={json.dumps(SECRET)}\n")
    assert dotenv_values(env, interpolate=False)["OPSMANTIK_WATCHTOWER_SECRET"] == SECRET


def test_the_oracle_sees_every_form():
    raw = SECRET.encode()
    for form in (SECRET, html.escape(SECRET), quote(SECRET, safe=""), quote_plus(SECRET),
                 json.dumps(SECRET), repr(SECRET), base64.b64encode(b"ab" + raw).decode()):
        assert disclosed(f"x {form} y"), form


def test_an_echoed_credential_reaches_no_output_in_any_form(
    example_pytester: ChecksPytester, hostile: HostileHttp
):
    example_pytester.env_file("sandbox", f"OPSMANTIK_BASE_URL={hostile.base_url}\n"
                              f"OPSMANTIK_WATCHTOWER_SECRET={json.dumps(SECRET)}\n")
    example_pytester.only_check("test_000_echo.py", CHECK.format(kinds=ECHOES))
    paths = {name: example_pytester.path / f"r.{name}" for name in ("html", "xml", "md")}
    run = example_pytester.run("-l", "--tb=long", "--html", str(paths["html"]),
                               "--junitxml", str(paths["xml"]), "--summary-md", str(paths["md"]))
    echoed = [r for r in hostile.requests if r.route == "/echo-everywhere"]
    assert len(echoed) >= len(ECHOES) and all(SECRET in r.headers["authorization"] for r in echoed)
    assert run.ret == 2 and set(run.states().values()) == {"FAIL"}
    outputs = {"terminal": "\n".join(run.outlines + run.errlines), "json": json.dumps(run.results)}
    outputs |= {name: path.read_text() for name, path in paths.items()}
    assert {name: disclosed(text) for name, text in outputs.items()} == dict.fromkeys(outputs, [])
    assert "SECRET LEAK" not in outputs["terminal"]
