"""The database rows of the bad-input matrix that need no server: refused and silent endpoints."""

from __future__ import annotations

import time

import pytest

from fixtures.connecting import connect
from fixtures.errors import DatabaseUnavailable
from fixtures.settings import Budget
from tests.hostile import refused_port, silent_listener

PASSWORD = "db-canary-pw-77"
BUDGET = Budget(connect_timeout=2.0)


def test_refused_port_is_unknown_at_once_naming_host_port_and_stage():
    port = refused_port()
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as info:
        connect(f"postgresql://checks_ro:{PASSWORD}@127.0.0.1:{port}/opsmantik", BUDGET)
    assert time.monotonic() - started < 1
    message = str(info.value)
    assert f"127.0.0.1:{port}/opsmantik as checks_ro (stage connect)" in message
    assert "Connection refused" in message
    assert PASSWORD not in message


def test_silent_server_is_a_connect_timeout_not_a_hang():
    with silent_listener() as (host, port):
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as info:
            connect(f"postgresql://checks_ro:{PASSWORD}@{host}:{port}/opsmantik", BUDGET)
        elapsed = time.monotonic() - started
    assert elapsed < BUDGET.connect_timeout + 1
    assert "(stage connect)" in str(info.value)
    assert PASSWORD not in str(info.value)
