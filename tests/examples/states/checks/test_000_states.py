"""Runbook 000 (example): one check per state, for the suite's own tests."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.ingest_stalled, pytest.mark.system("opsmantik")]


def test_is1_passes(evidence):
    """IS-1: The example passes."""
    evidence.value("answer", 42, expected="42", source="example")
    assert 42 == 42


def test_is2_warns(evidence):
    """IS-2: The example is past a warning line."""
    evidence.warn("lag 12 min, above the warning 10 min (example)")


def test_is3_fails(evidence):
    """IS-3: The example fails."""
    observed = 0
    evidence.value("sessions in the last hour", observed, expected="at least 1", source="example")
    evidence.correction(says="the example passes", does="the example fails")
    assert observed > 0, f"{observed} sessions in the last hour, expected at least 1 (example)"


def test_is4_breaks(evidence):
    """IS-4: The example breaks."""
    raise ValueError("harness broke")


def test_is5_needs_setting(system_settings, evidence):
    """IS-5: The example needs a setting."""
    secret = system_settings.require("OPSMANTIK_CRON_SECRET").value
    evidence.note(f"would send Bearer {secret}")


@pytest.mark.side_effect("writes to the example target")
def test_is6_side_effect(evidence):
    """IS-6: The example changes the target."""
    evidence.note("side effect performed")
