"""Command line: `python -m sandbox up|down|status|faults|fault NAME|heal NAME|heal --all`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sandbox import injector, lifecycle
from sandbox.faults import FAULTS, unknown_fault_message
from sandbox.paths import HOME_VARIABLE, Home, default_env_file, default_home
from sandbox.postgres import PostgresError
from sandbox.state import StateError

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    # `serve` is left out of the listing: it is the daemon `up` starts, not for people.
    commands = parser.add_subparsers(dest="command", required=True,
                                     metavar="{up,down,status,faults,fault,heal}")
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", type=Path, default=None,
                      help=f"sandbox directory (default: ${HOME_VARIABLE} or <repo>/.sandbox)")
    up = commands.add_parser("up", parents=[home], help="start (or keep) the sandbox running")
    up.add_argument("--env-file", type=Path, default=None,
                    help="where to write the target's env file (default: <repo>/envs/sandbox.env)")
    commands.add_parser("down", parents=[home], help="stop the daemon and PostgreSQL")
    commands.add_parser("status", parents=[home], help="what runs; exit 0 if up, 1 if not")
    commands.add_parser("faults", parents=[home], help="list the faults and the items each turns red")
    fault = commands.add_parser("fault", parents=[home], help="apply a named fault")
    fault.add_argument("name")
    heal = commands.add_parser("heal", parents=[home], help="revert a fault (or --all)")
    heal.add_argument("name", nargs="?")
    heal.add_argument("--all", action="store_true", help="heal every active fault")
    commands.add_parser("serve", parents=[home])
    return parser


def _list_faults() -> list[str]:
    lines = []
    for fault in FAULTS.values():
        turns = ", ".join(f"{item} {'/'.join(states)}" for item, states in fault.turns.items())
        lines += [f"{fault.name} ({fault.system}): {fault.description}", f"    turns: {turns}"]
    return lines


def _run(args: argparse.Namespace) -> int:
    home = Home.at(getattr(args, "home", None) or default_home())
    if args.command == "up":
        report = lifecycle.up(home, (args.env_file or default_env_file()).resolve())
    elif args.command == "down":
        report = lifecycle.down(home)
    elif args.command == "status":
        report = lifecycle.status(home)
        print("\n".join(report.lines))
        return 0 if report.running else 1
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


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.command == "heal" and bool(args.all) == bool(args.name):
        return "heal needs either a fault name or --all"
    name = getattr(args, "name", None)
    if args.command in ("fault", "heal") and name and name not in FAULTS:
        return unknown_fault_message(name)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    problem = _usage_problem(args)
    if problem:
        print(f"sandbox: error: {problem}", file=sys.stderr)
        return USAGE_ERROR
    try:
        return _run(args)
    except (lifecycle.SandboxError, PostgresError, StateError) as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
