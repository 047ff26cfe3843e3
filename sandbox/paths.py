"""Where the sandbox keeps its files: one home directory per sandbox, plus the env file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HOME_VARIABLE = "RUNBOOK_SANDBOX_HOME"


def default_home() -> Path:
    configured = os.environ.get(HOME_VARIABLE)
    return Path(configured) if configured else REPO_ROOT / ".sandbox"


def default_env_file() -> Path:
    return REPO_ROOT / "envs" / "sandbox.env"


@dataclass(frozen=True)
class Home:
    """The files of one sandbox. Everything it runs or remembers lives under `root`."""

    root: Path

    @classmethod
    def at(cls, path: Path) -> Home:
        return cls(path.expanduser().resolve())

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def faults(self) -> Path:
        return self.root / "faults.json"

    @property
    def faults_ack(self) -> Path:
        return self.root / "faults.ack"

    @property
    def lock(self) -> Path:
        return self.root / "sandbox.lock"

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def pg_log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def serve_log(self) -> Path:
        return self.root / "serve.log"

    @property
    def serve_pid(self) -> Path:
        return self.root / "serve.pid"

    @property
    def processes(self) -> Path:
        """The pid files of the systems' external processes, one per process."""
        return self.root / "processes"

    def process_pid(self, system: str, listener: str) -> Path:
        return self.processes / f"{system}-{listener}.pid"

    def process_log(self, system: str, listener: str) -> Path:
        return self.root / f"{system}-{listener}.log"

    @property
    def requests_log(self) -> Path:
        return self.root / "requests.jsonl"

    @property
    def telegram_log(self) -> Path:
        return self.root / "telegram.jsonl"
