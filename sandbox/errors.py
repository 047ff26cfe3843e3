"""The sandbox's own error: a command failed, and the message says why and what to do."""

from __future__ import annotations


class SandboxError(Exception):
    """A sandbox command failed; the message says why and what to look at."""
