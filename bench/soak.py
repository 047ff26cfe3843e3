"""Canary soak: the canary job's own command line, N times in a row against a live, healthy target,
counting every state other than PASS (on a healthy sandbox, each one is a false alarm).

    python bench/soak.py --env-file /tmp/mine/sandbox.env [--runs 200] [--target sandbox]
                         [--interval 0] [-- extra pytest arguments]

Each run is `.ci/canary TARGET` (the supervisor, --checks-warn-ok, every output, the history), in
a throw-away copy of the project whose envs/TARGET.env is the given env file, so the soak never
touches the checkout's envs/. Prints one line per run (seconds, exit code, what was not PASS),
then the totals; exits 1 if any run raised a false alarm.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def project(root: Path, target: str, env_file: Path) -> Path:
    """The project as the canary job sees it: code linked, envs/ and reports/ private."""
    for name in ("fixtures", "checks", "runbooks"):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    for name in ("pyproject.toml", "conftest.py"):
        shutil.copy(REPO / name, root / name)
    (root / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "canary", root / ".ci" / "canary")
    (root / "envs").mkdir()
    shutil.copy(env_file, root / "envs" / f"{target}.env")
    return root


def one_run(root: Path, target: str, number: int, extra: list[str]) -> tuple[float, int, list[str]]:
    """(seconds, exit code, "ITEM STATE: finding" for every check that was not PASS)."""
    out = root / "reports" / "canary" / f"run-{number:04d}"
    env = {**os.environ, "PYTHON": sys.executable, "CANARY_OUT": str(out)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    started = time.monotonic()
    done = subprocess.run([str(root / ".ci" / "canary"), target, *extra], env=env,
                          capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    results = out / "results.json"
    if not results.exists():
        return took, done.returncode, [f"no results (exit {done.returncode}): {done.stderr[-300:]}"]
    document = json.loads(results.read_text())
    alarms = [f"{c['item']} {c['state']}: {c['message'][:200]}" for c in document["checks"]
              if c["state"] != "PASS"]
    if not document["checks"]:
        alarms.append("no check ran")
    shutil.rmtree(out)  # keep the disk flat over hundreds of runs; the history keeps every state
    return took, done.returncode, alarms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, required=True, help="the live target's env file")
    parser.add_argument("--target", default="sandbox")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between runs")
    parser.add_argument("extra", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runbook-soak-") as tmp:
        root = project(Path(tmp), args.target, args.env_file)
        times, false_alarms = [], 0
        for number in range(1, args.runs + 1):
            took, code, alarms = one_run(root, args.target, number, args.extra)
            times.append(took)
            false_alarms += bool(alarms) or code != 0
            print(f"run {number:4d}: {took:5.1f} s, exit {code}"
                  + (f", not PASS: {'; '.join(alarms)}" if alarms else ""), flush=True)
            if args.interval and number < args.runs:
                time.sleep(args.interval)
        print(f"{args.runs} runs against {args.target}: {false_alarms} with a state other than PASS "
              f"or a non-zero exit; median {statistics.median(times):.1f} s, max {max(times):.1f} s")
    return 1 if false_alarms else 0


if __name__ == "__main__":
    raise SystemExit(main())
