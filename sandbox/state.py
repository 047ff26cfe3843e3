"""What a sandbox remembers between commands: ports and secrets, in DIR/state.json (mode 0600).

`ports` holds the loopback port of every listener, by system and listener name, as `up` last
assigned them (the running daemon and processes use exactly these). `pg_bin`, `pg_version` and
`pg_preloaded` say what PostgreSQL `up` last ran: its binaries' directory (every later command
uses these), their version, and the libraries preloaded at its last start.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.files import write_private
from sandbox.paths import Home

# 3: the server binaries and version; 2: ports by system and listener (1 had one app port per
# system). A format-2 home ran on the wheel's binaries, which the empty `pg_bin` stands for, so
# it is read as it is.
FORMAT = 3
READABLE = (2, FORMAT)


class StateError(Exception):
    """The state file is missing or unreadable."""


def new_secret() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class State:
    """Secrets are made once, when the cluster is created, and kept until the home is removed."""

    superuser_password: str
    checks_ro_password: str
    pg_port: int = 0
    ports: dict[str, dict[str, int]] = field(default_factory=dict)
    systems: dict[str, dict[str, str]] = field(default_factory=dict)
    created_at: str = ""
    pg_bin: str = ""  # "": the wheel's
    pg_version: str = ""
    pg_preloaded: list[str] = field(default_factory=list)

    @classmethod
    def fresh(cls) -> State:
        return cls(
            superuser_password=new_secret(),
            checks_ro_password=new_secret(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )


def load(home: Home) -> State:
    try:
        raw: dict[str, Any] = json.loads(home.state.read_text())
    except FileNotFoundError as exc:
        raise StateError(f"no sandbox at {home.root} (no state.json); run `up` first") from exc
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read {home.state}: {exc}") from exc
    if raw.pop("format", None) not in READABLE:
        raise StateError(f"{home.state} was written by another sandbox version; stop it with "
                         f"`python -m sandbox down` and remove {home.root}")
    try:
        return State(**raw)
    except TypeError as exc:
        raise StateError(f"{home.state} is malformed: {exc}") from exc


def save(home: Home, state: State) -> None:
    write_private(home.state, json.dumps({"format": FORMAT, **asdict(state)}, indent=2) + "\n")
