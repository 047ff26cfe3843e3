"""The env file `up` writes: what the checks read to find the sandbox, as they would a real
target's (DESIGN.md 2)."""

from __future__ import annotations

from pathlib import Path

from sandbox import db
from sandbox.files import write_private
from sandbox.roles import CHECKS_ROLE
from sandbox.system import Context

HEADER = (
    "# written by `python -m sandbox up`; "
    "the sandbox's own secrets, regenerated at every fresh up\n"
)


def variables(ctx: Context) -> dict[str, str]:
    """One system's variables: checks_ro's database URL, each listener's URL, then the rest."""
    system, state = ctx.system, ctx.state
    env = {system.database_variable: db.url(CHECKS_ROLE, state.checks_ro_password, state.pg_port,
                                            system.database)}
    env |= {listener.url_variable: ctx.url(name)
            for name, listener in system.listeners.items() if listener.url_variable}
    return env | system.env(ctx)


def write(path: Path, contexts: list[Context]) -> None:
    lines = [f"{name}={value}" for ctx in contexts for name, value in variables(ctx).items()]
    write_private(path, HEADER + "\n".join(lines) + "\n")
