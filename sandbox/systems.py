"""The systems this sandbox stands in for. Add a new one here (e.g. LaunchSin) and nowhere else
in the core."""

from __future__ import annotations

from sandbox.launchsin import SYSTEM as LAUNCHSIN
from sandbox.opsmantik import SYSTEM as OPSMANTIK
from sandbox.system import System

SYSTEMS: tuple[System, ...] = (OPSMANTIK, LAUNCHSIN)
