"""Time to verdict: the incident command against the pytest floor, side by side in one call.

    python bench/time_to_verdict.py [--marker ingest_stalled] [--target sandbox] [--runs 5]

Interleaves, round by round, three whole processes in the same venv: the incident command as an
on-call engineer types it (`python -m pytest -m MARKER --target TARGET`, writing its three
reports), pytest running one trivial test in an empty directory (the floor every pytest run
pays), and `python -c "import pytest, httpx, psycopg"`. Interleaving spreads the noise of a
shared machine over all three. Prints every round, the medians, and each median's difference to
the trivial run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRIVIAL_TEST = "def test_trivial():\n    assert True\n"


def timed(command: list[str], cwd: Path) -> tuple[float, int]:
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    return time.monotonic() - started, done.returncode


def commands(marker: str, target: str, out: Path) -> dict[str, Callable[[], tuple[float, int]]]:
    trivial = out / "trivial"
    trivial.mkdir()
    (trivial / "test_trivial.py").write_text(TRIVIAL_TEST)
    incident = [sys.executable, "-m", "pytest", "-q", "-m", marker, "--target", target,
                f"--results-json={out / 'r.json'}", f"--html={out / 'r.html'}",
                f"--junitxml={out / 'r.xml'}"]
    return {
        f"-m {marker} (3 reports)": lambda: timed(incident, REPO),
        "pytest, one trivial test": lambda: timed([sys.executable, "-m", "pytest", "-q", "-p",
                                                   "no:cacheprovider"], trivial),
        "import pytest, httpx, psycopg": lambda: timed(
            [sys.executable, "-c", "import pytest, httpx, psycopg"], REPO),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marker", default="ingest_stalled")
    parser.add_argument("--target", default="sandbox")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = commands(args.marker, args.target, Path(tmp))
        times: dict[str, list[float]] = {name: [] for name in runs}
        for number in range(1, args.runs + 1):
            line = []
            for name, run in runs.items():
                elapsed, code = run()
                times[name].append(elapsed)
                line.append(f"{name}: {elapsed:.2f} s (exit {code})")
            print(f"round {number}: " + "; ".join(line))
    floor = statistics.median(times["pytest, one trivial test"])
    print(f"\nmedians of {args.runs} interleaved runs (target {args.target}):")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<32} {median:.2f} s  ({median - floor:+.2f} s against the trivial run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
