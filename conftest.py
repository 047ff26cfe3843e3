"""Loads the suite's machinery. Only this root conftest may list pytest_plugins."""

pytest_plugins = (
    "fixtures.target",
    "fixtures.outcomes",
    "fixtures.evidence",
    "fixtures.postgres",
    "fixtures.http",
    "fixtures.checklist",
    "fixtures.report",
)
