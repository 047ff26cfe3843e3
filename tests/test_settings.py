"""Target resolution: explicit file, precedence with sources, secrets found and masked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from fixtures.errors import ConfigError, MissingSetting
from fixtures.settings import (
    Budget,
    load_budget,
    load_target,
    redact_url,
    resolve,
    resolve_target_name,
)
from fixtures.systems import SPECS
from tests.conftest import REPO


@pytest.fixture
def envs(tmp_path: Path) -> Path:
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "prod.env").write_text(
        "OPSMANTIK_DATABASE_URL=postgresql://ro:pw%24x@db.example:5432/postgres\n"
        "OPSMANTIK_BASE_URL=https://app.example\n"
        "OPSMANTIK_CRON_SECRET='s3cret-${HOME}'\n"
        "UNRELATED=ignored\n"
    )
    return tmp_path / "envs"


def test_one_precedence_rule_names_what_it_overrides():
    layers = [("--x", {"A": None}), ("the environment", {"A": "1"}), ("envs/prod.env", {"A": "2"})]
    chosen = resolve("A", layers)
    assert chosen is not None and chosen.value == "1"
    assert chosen.source == "the environment, overriding envs/prod.env"
    same = resolve("A", [("the environment", {"A": "2"}), ("envs/prod.env", {"A": "2"})])
    assert same is not None and same.source == "the environment"
    assert resolve("A", [("the environment", {"A": ""})]) is None  # empty is unset


def test_target_precedence_and_source():
    assert resolve_target_name("prod", {"CHECKS_TARGET": "staging"}) == (
        "prod", "--target, overriding CHECKS_TARGET")
    assert resolve_target_name("prod", {}) == ("prod", "--target")
    assert resolve_target_name(None, {"CHECKS_TARGET": "staging"}) == ("staging", "CHECKS_TARGET")
    assert resolve_target_name(None, {}) == ("sandbox", "default")


def test_bad_target_name_is_rejected():
    with pytest.raises(ConfigError, match=r"Invalid target name '\.\./etc' from --target"):
        resolve_target_name("../etc", {})


def test_values_keep_their_source(envs: Path):
    target = load_target(envs, "prod", {"OPSMANTIK_BASE_URL": "https://override.example"})
    assert target.require("OPSMANTIK_BASE_URL").source == \
        f"the environment, overriding {envs / 'prod.env'}"
    assert target.require("OPSMANTIK_DATABASE_URL").source == str(envs / "prod.env")
    assert target.configured_systems == ("opsmantik",)
    assert target.get("UNRELATED") is None


def test_values_are_not_interpolated(envs: Path):
    assert load_target(envs, "prod", {}).require("OPSMANTIK_CRON_SECRET").value == "s3cret-${HOME}"


def test_missing_file_lists_known_targets(envs: Path):
    with pytest.raises(ConfigError) as info:
        load_target(envs, "staging", {})
    assert "envs/staging.env does not exist" in str(info.value)
    assert "Targets found" in str(info.value) and "prod" in str(info.value)


def test_parent_directory_env_is_never_read(tmp_path: Path):
    (tmp_path / ".env").write_text("OPSMANTIK_BASE_URL=https://wrong.example\n")
    (tmp_path / "project" / "envs").mkdir(parents=True)
    with pytest.raises(ConfigError, match="does not exist"):
        load_target(tmp_path / "project" / "envs", "sandbox", {})


def test_secrets_include_url_passwords(envs: Path):
    secrets = load_target(envs, "prod", {}).secrets()
    assert "pw$x" in secrets and "s3cret-${HOME}" in secrets


def test_reprs_hide_secrets(envs: Path):
    target = load_target(envs, "prod", {})
    assert "s3cret" not in repr(target.require("OPSMANTIK_CRON_SECRET"))
    assert "pw%24x" not in repr(target.require("OPSMANTIK_DATABASE_URL"))
    assert redact_url("postgresql://ro:pw@h/db") == "postgresql://ro:***@h/db"


def test_missing_setting_names_variable_and_file(envs: Path):
    with pytest.raises(MissingSetting, match="OPSMANTIK_WATCHTOWER_SECRET.*prod.env"):
        load_target(envs, "prod", {}).require("OPSMANTIK_WATCHTOWER_SECRET")


def test_secret_in_url_query_is_refused(envs: Path):
    (envs / "leaky.env").write_text("OPSMANTIK_BASE_URL=https://app.example/?apikey=abc\n")
    with pytest.raises(ConfigError, match="secrets must not be in URLs"):
        load_target(envs, "leaky", {})


def test_system_view_gives_endpoints_and_thresholds(envs: Path):
    opsmantik = load_target(envs, "prod", {"OPSMANTIK_DLQ_BASELINE_PER_HOUR": "12"}).system("opsmantik")
    assert opsmantik.base_url.value == "https://app.example"
    assert opsmantik.database_url.source == str(envs / "prod.env")
    assert opsmantik.threshold("OPSMANTIK_DLQ_BASELINE_PER_HOUR") == (
        12.0, "OPSMANTIK_DLQ_BASELINE_PER_HOUR from the environment")
    assert opsmantik.threshold("OPSMANTIK_NEWEST_SESSION_MAX_MINUTES") == (
        15, "default of OPSMANTIK_NEWEST_SESSION_MAX_MINUTES")
    with pytest.raises(KeyError, match="not a declared threshold"):
        opsmantik.threshold("LAUNCHSIN_LAG_WARN_MINUTES")
    with pytest.raises(MissingSetting, match="LAUNCHSIN_BASE_URL"):
        _ = load_target(envs, "prod", {}).system("launchsin").base_url


@pytest.mark.parametrize(("value", "problem"), [
    ("many", "'many' from the environment: expected a number (runbook default 5)"),
    ("-1", "'-1' from the environment: must be >= 0"),
    ("nan", "'nan' from the environment: must be a finite number"),
])
def test_bad_threshold_is_refused_at_load_naming_its_source(envs: Path, value: str, problem: str):
    with pytest.raises(ConfigError, match=re.escape(f"Invalid OPSMANTIK_DLQ_BASELINE_PER_HOUR {problem}")):
        load_target(envs, "prod", {"OPSMANTIK_DLQ_BASELINE_PER_HOUR": value})


def test_a_share_above_one_is_refused(envs: Path):
    (envs / "prod.env").write_text("LAUNCHSIN_DLQ_RATE_WARN=5\n")
    with pytest.raises(ConfigError, match="LAUNCHSIN_DLQ_RATE_WARN '5' from .*prod.env: is a share"):
        load_target(envs, "prod", {})


def test_unknown_system_keys_name_the_nearest_known_one(envs: Path):
    target = load_target(envs, "prod", {"OPSMANTIK_DLQ_BASELINE_PER_HOR": "3", "OPSMANTIK_ZZZ": "1"})
    assert target.unknown == (("OPSMANTIK_DLQ_BASELINE_PER_HOR", "OPSMANTIK_DLQ_BASELINE_PER_HOUR"),
                              ("OPSMANTIK_ZZZ", None))


def test_budget_precedence_and_validation():
    budget = load_budget({"statement_timeout": "3"}, {"statement_timeout": "9", "lock_timeout": "1"},
                         {"CHECKS_LOCK_TIMEOUT": "4"})
    assert (budget.statement_timeout, budget.lock_timeout, budget.http_timeout) == (3, 4, 5)
    assert budget.sources["statement_timeout"] == \
        "--checks-statement-timeout, overriding ini checks_statement_timeout"
    with pytest.raises(ConfigError, match="Invalid statement_timeout 'abc' from CHECKS_STATEMENT"):
        load_budget({}, {}, {"CHECKS_STATEMENT_TIMEOUT": "abc"})


def test_the_header_gives_the_connect_timeout_in_force():
    assert Budget(connect_timeout=1).connect_timeout_in_force == 2
    assert Budget(connect_timeout=3.7).connect_timeout_in_force == 3
    assert Budget(connect_timeout=1).describe().startswith(
        "connect_timeout 2s (default, 1s asked; psycopg's floor")


# The declarations are the one place thresholds live: example.env and the checks follow them.

EXAMPLE_ENV = (REPO / "envs" / "example.env").read_text()
THRESHOLDS = [t for spec in SPECS.values() for t in spec.thresholds]


@pytest.mark.parametrize("threshold", THRESHOLDS, ids=lambda t: t.name)
def test_example_env_gives_each_threshold_its_declared_default(threshold):
    match = re.search(rf"\b{threshold.name}=(\S+)", EXAMPLE_ENV)
    assert match, f"envs/example.env does not list {threshold.name}"
    assert float(match.group(1)) == threshold.default


def test_example_env_lists_exactly_the_declared_variables():
    listed = set(re.findall(r"\b((?:OPSMANTIK|LAUNCHSIN|REVENUEOS|TRENDSPARK)_[A-Z_]+)=", EXAMPLE_ENV))
    assert listed == {name for spec in SPECS.values() for name in spec.known()}


def _docstrings() -> dict[str, str]:
    """Item ID -> the docstring of its check, for every check module."""
    found = {}
    for path in (REPO / "checks").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and (doc := ast.get_docstring(node)):
                found[doc.split(":", 1)[0]] = doc
    return found


@pytest.mark.parametrize("threshold", [t for t in THRESHOLDS if t.stated], ids=lambda t: t.name)
def test_check_docstrings_state_the_declared_default(threshold):
    docstrings = _docstrings()
    for item in threshold.items:
        assert threshold.stated in docstrings[item], f"{item} does not say {threshold.stated!r}"


# Every value usable as typed, or a usage error before any connection that never echoes it.

@pytest.mark.parametrize(("value", "problem"), [
    ("postgresql://ro:pa/ss#w0rd@db.example:5432/postgres",
     "must be percent-encoded in a URL: '#' as %23, '/' as %2F"),
    ("postgresql://ro:pa@ss@db.example:5432/postgres", "'@' as %40"),
    ("postgresql://ro:100%sure@db.example/postgres", "'%' as %25"),
    ("postgresql://ro:pw@db.example:port/postgres", "the host or port of the URL cannot be read"),
    ("postgresql://ro:pw@db1.example:5432,db2.example:port/postgres",
     "the host or port of the URL cannot be read"),
    ("db.example:5432/postgres", "is not a URL"),
    ("postgresql://ro:pw@/postgres", "names no host"),
])
def test_a_url_that_cannot_be_used_as_typed_is_refused_naming_what_to_encode(
    envs: Path, value: str, problem: str
):
    with pytest.raises(ConfigError) as info:
        load_target(envs, "prod", {"OPSMANTIK_DATABASE_URL": value})
    message = str(info.value)
    assert message.startswith("OPSMANTIK_DATABASE_URL from the environment")
    assert problem in message
    assert "pa/ss" not in message and "100%sure" not in message and "pa@ss" not in message


def test_a_database_url_with_several_hosts_a_port_each_is_accepted(envs: Path):
    url = "postgresql://ro:pw@db1.example:5432,db2.example:6543/postgres"
    settings = load_target(envs, "prod", {"OPSMANTIK_DATABASE_URL": url})
    assert settings.system("opsmantik").database_url.value == url


@pytest.mark.parametrize("secret", ["with\nnewline", "tab\there", "café-secret"])
def test_a_secret_that_cannot_be_sent_in_a_header_is_refused_without_its_value(envs: Path, secret):
    with pytest.raises(ConfigError, match="OPSMANTIK_WATCHTOWER_SECRET from the environment holds a "
                                          "control or non-ASCII character") as info:
        load_target(envs, "prod", {"OPSMANTIK_WATCHTOWER_SECRET": secret})
    assert secret not in str(info.value)


def test_url_passwords_are_secrets_as_typed_and_decoded(envs: Path):
    assert {"pw$x", "pw%24x"} <= set(load_target(envs, "prod", {}).secrets())
