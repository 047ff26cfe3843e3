"""Time to verdict: wall time of an incident run against a target, as the median of several runs.

    python bench/time_to_verdict.py [--marker ingest_stalled] [--target sandbox] [--runs 5]

Each run is a fresh `python -m pytest -m MARKER --target TARGET` process, as an on-call engineer
would type it; outputs go to a temporary directory. Prints every run and the median.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def one_run(marker: str, target: str, out: Path) -> tuple[float, int]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", marker, "--target", target,
         f"--results-json={out / 'r.json'}", f"--html={out / 'r.html'}",
         f"--junitxml={out / 'r.xml'}"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    return time.monotonic() - started, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marker", default="ingest_stalled")
    parser.add_argument("--target", default="sandbox")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(1, args.runs + 1):
            elapsed, code = one_run(args.marker, args.target, Path(tmp))
            times.append(elapsed)
            print(f"run {number}: {elapsed:.2f} s (exit {code})")
    print(f"median of {args.runs}: {statistics.median(times):.2f} s "
          f"(-m {args.marker} --target {args.target})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
