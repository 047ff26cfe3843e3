"""Loads the suite's machinery. Only this root conftest may list pytest_plugins."""

pytest_plugins = (
    "fixtures.target",
    "fixtures.redaction",
    "fixtures.outcomes",
    "fixtures.evidence",
    "fixtures.postgres",
    "fixtures.http",
    "fixtures.attestation",
    "fixtures.deploy",
    "fixtures.recovery",
    "fixtures.publish",
    "fixtures.report",
)
