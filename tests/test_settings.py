"""Target resolution: explicit file, precedence with sources, secrets found and masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.errors import ConfigError, MissingSetting
from fixtures.settings import load_budget, load_target, redact_url, resolve_target_name


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


def test_target_precedence_and_source():
    assert resolve_target_name("prod", {"CHECKS_TARGET": "staging"}) == ("prod", "--target")
    assert resolve_target_name(None, {"CHECKS_TARGET": "staging"}) == ("staging", "CHECKS_TARGET")
    assert resolve_target_name(None, {}) == ("sandbox", "default")


def test_bad_target_name_is_rejected():
    with pytest.raises(ConfigError, match=r"Invalid target name '\.\./etc' from --target"):
        resolve_target_name("../etc", {})


def test_values_keep_their_source(envs: Path):
    target = load_target(envs, "prod", {"OPSMANTIK_BASE_URL": "https://override.example"})
    assert target.require("OPSMANTIK_BASE_URL").source == "process environment"
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


def test_threshold_from_target_or_default(envs: Path):
    target = load_target(envs, "prod", {"OPSMANTIK_DLQ_BASELINE_PER_HOUR": "12"})
    assert target.number("OPSMANTIK_DLQ_BASELINE_PER_HOUR", 5) == (
        12.0, "OPSMANTIK_DLQ_BASELINE_PER_HOUR from process environment")
    assert target.number("OPSMANTIK_NEWEST_SESSION_MAX_MINUTES", 15)[0] == 15


def test_bad_threshold_names_its_source(envs: Path):
    target = load_target(envs, "prod", {"OPSMANTIK_DLQ_BASELINE_PER_HOUR": "many"})
    with pytest.raises(ConfigError, match="'many' from process environment"):
        target.number("OPSMANTIK_DLQ_BASELINE_PER_HOUR", 5)


def test_budget_precedence_and_validation():
    budget = load_budget({"statement_timeout": "3"}, {"statement_timeout": "9", "lock_timeout": "1"},
                         {"CHECKS_LOCK_TIMEOUT": "4"})
    assert (budget.statement_timeout, budget.lock_timeout, budget.http_timeout) == (3, 4, 5)
    assert budget.sources["statement_timeout"] == "--checks-statement-timeout"
    with pytest.raises(ConfigError, match="Invalid statement_timeout 'abc' from CHECKS_STATEMENT"):
        load_budget({}, {}, {"CHECKS_STATEMENT_TIMEOUT": "abc"})
