"""Cost at production volume: every check's page accesses, default volume against 10 M rows.

    python -m bench.scale [--scale 1.0] [--seed 42] [--runs 3] [--pg-bin DIR ...]
    make bench-scale SCALE=0.1        # a tenth of the volume, for a quick look

For each PostgreSQL server (the wheel's 18, and the distribution's 15 when installed, or the
`--pg-bin` directories named) it starts a sandbox of its own, and measures with the sandbox's
healthy traffic running:

1. at default volume, warm: each check's shared buffers hit + read and server time, summed over
   the statements the checker's roles ran (pg_stat_statements, reset around each check by the
   `bench.statements` plugin), the median of `--runs` whole-suite runs after a warm-up run;
   each incident marker's and the whole suite's process wall time (median of `--runs`,
   interleaved), and how long `up` takes on the running sandbox (each system's catch-up);
2. loads production volume through the sandbox's superuser (bench/volume/<system>.py), then
   runs VACUUM ANALYZE on each database, as production's maintenance keeps them;
3. cold: PostgreSQL restarted and the OS page cache dropped, then one whole-suite run: the
   first check to touch an index pays its reads, as in the first incident run after a restart;
4. `up` again, then warm again, and the markers' wall time, at production volume;
5. the runbooks' own literal SQL for the same items (bench/literal.py) on the same data, with
   EXPLAIN (ANALYZE, BUFFERS) as the superuser, warm, each run on a new connection as each check
   run is.

It prints one table per server and writes reports/bench-scale-pg<version>.json, its path last.
A row is within bounds when its blocks at volume are at most 2 x default + GROWTH_CONSTANT, its
warm server time at most WARM_MS_LIMIT and its cold server time below half the statement timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bench.literal import FROM_PROSE, LITERAL, RUNBOOK_SYSTEM, literal_params
from bench.volume import loader
from sandbox.paths import Home
from sandbox.postgres import Cluster
from tests.sandbox_handle import Sandbox, temporary_root

REPO = Path(__file__).resolve().parent.parent
DISTRIBUTION_15 = Path("/usr/lib/postgresql/15/bin")
GROWTH_CONSTANT = 64  # blocks: the guards' read-back and an index descent or two
WARM_MS_LIMIT = 50.0
STATEMENT_TIMEOUT_MS = 5000.0  # the suite's default statement timeout
PG_BIN_VARIABLE = "RUNBOOK_SANDBOX_PG_BIN"
TARGET = "bench-scale"
WHOLE_SUITE = "(whole suite)"  # the markers' wall-time row of a run of every check
HEALTH_PROBE = "health_db_down"  # the fault whose probe asks OpsMantik's health route for db_ok
MARKERS = ("ingest_stalled", "event_ingest", "partition_drift", "payments_not_syncing",
           "dunning_spam", "db_maintenance", "trendspark_ingest", "trendspark_stream",
           "telegram_alerts", "scheduler_jobs", "api_errors", "retention", "observability")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    servers = args.pg_bin or [None, *([DISTRIBUTION_15] if (DISTRIBUTION_15 / "postgres").exists()
                                      else [])]
    paths = []
    for server in servers:
        report = measure(server, args.systems, args.scale, args.seed, args.runs)
        print_table(report)
        path = REPO / "reports" / f"bench-scale-pg{report['server_version'].split('.')[0]}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        paths.append(path)
    for path in paths:
        print(path)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("SCALE") or 1.0),
                        help="fraction of production volume to load (default $SCALE or 1.0)")
    parser.add_argument("--seed", type=int, default=42, help="the same seed loads the same rows")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per phase (medians)")
    parser.add_argument("--pg-bin", type=Path, action="append",
                        help="a PostgreSQL binary directory to run on (repeatable)")
    parser.add_argument("--systems", default=None,
                        help="comma-separated sandbox systems (default: every system)")
    return parser


# One server ----------------------------------------------------------------------------------


def measure(server: Path | None, systems: str | None, scale: float, seed: int,
            runs: int) -> dict[str, Any]:
    with temporary_root("scale") as root, _pg_bin(server):
        # The suite finds a target by name in envs/: the sandbox writes this one there.
        box = Sandbox(home=root / "home", env_file=REPO / "envs" / f"{TARGET}.env",
                      systems=systems)
        box.up()
        try:
            version = box.scalar("show server_version", database="postgres")
            with box.superuser("postgres") as conn:
                conn.execute("create extension if not exists pg_stat_statements")
            print(f"PostgreSQL {version}: measuring at default volume", file=sys.stderr)
            default = warm(box, root, runs)
            up_default = timed_up(box)
            markers = [m for m in MARKERS if any(m in c["markers"] for c in default.values())]
            walls_default = walls(box, markers, runs)
            print(f"PostgreSQL {version}: loading scale {scale}", file=sys.stderr)
            started = time.monotonic()
            rows = load(box, scale, seed)
            load_s = time.monotonic() - started
            print(f"PostgreSQL {version}: loaded in {load_s:.0f} s: {rows}", file=sys.stderr)
            up_scaled = timed_up(box)
            restart_cold(box)
            cold = suite_run(box, root, "cold")
            scaled = warm(box, root, runs)
            walls_scaled = walls(box, markers, runs)
            literal = literal_blocks(box)
        finally:
            box.cli("down")
            box.env_file.unlink(missing_ok=True)
    return {
        "scale": scale, "seed": seed, "server_version": version, "load_s": round(load_s, 1),
        "loaded": rows, "up_default_s": up_default, "up_scaled_s": up_scaled,
        "checks": checks_table(default, scaled, cold),
        "runbooks": runbooks_table(scaled, literal),
        "markers": [{"marker": m, "wall_default_s": walls_default[m], "wall_scaled_s": walls_scaled[m]}
                    for m in (*markers, WHOLE_SUITE)],
    }


@contextmanager
def _pg_bin(server: Path | None) -> Iterator[None]:
    previous = os.environ.pop(PG_BIN_VARIABLE, None)
    if server is not None:
        os.environ[PG_BIN_VARIABLE] = str(server)
    try:
        yield
    finally:
        os.environ.pop(PG_BIN_VARIABLE, None)
        if previous is not None:
            os.environ[PG_BIN_VARIABLE] = previous


def load(box: Sandbox, scale: float, seed: int) -> dict[str, dict[str, Any]]:
    """Each system's rows after the load, how long its load took, then its VACUUM ANALYZE.

    Production's tables are vacuumed (autovacuum; RevenueOS and TrendSpark also weekly). Left
    unvacuumed, the freshly loaded tables would have autovacuum working through them during the
    measurements on a 2-core machine, and each check's first read would set their hint bits:
    neither is the checks' cost."""
    loaded = {}
    for system in box.registry:
        started = time.monotonic()
        with box.superuser(system.database) as conn:
            rows = loader(system.name)(conn, scale, seed)
            load_s = round(time.monotonic() - started, 1)
            conn.execute("VACUUM (ANALYZE)")
        loaded[system.name] = {"rows": rows, "load_s": load_s,
                               "vacuum_s": round(time.monotonic() - started - load_s, 1)}
    return loaded


def timed_up(box: Sandbox) -> float:
    """`up` on the running sandbox: each system catches up on its traffic, as after a restart."""
    started = time.monotonic()
    box.up()
    return round(time.monotonic() - started, 2)


def restart_cold(box: Sandbox) -> None:
    """PostgreSQL restarted (shared buffers empty) and the OS page cache dropped (as root)."""
    cluster = Cluster(Home.at(box.home))
    cluster.stop()
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        print(f"the OS page cache was not dropped ({exc.strerror}): cold means shared buffers "
              "only", file=sys.stderr)
    cluster.start(box.state.pg_port)
    time.sleep(5)  # the apps' pools notice the restart on their next use; let traffic resume
    # OpsMantik's health route is the first to use its pooled connection after the restart, and
    # says db_ok false once: IS-1 would report the restart, not the volume. Asked until it
    # answers for the database again (a connection check, no page of the data read).
    if HEALTH_PROBE in box.faults:
        deadline = time.monotonic() + 30
        while not box.probe(HEALTH_PROBE) and time.monotonic() < deadline:
            time.sleep(0.5)


# Check runs ----------------------------------------------------------------------------------


def checker_logins(box: Sandbox) -> list[str]:
    return sorted({unquote(urlsplit(url).username or "") for name, url in box.env.items()
                   if name.endswith("_DATABASE_URL") and url} - {""})


def suite_run(box: Sandbox, root: Path, label: str) -> dict[str, dict[str, Any]]:
    """One whole-suite run with the statement-cost plugin: per node id, cost and state."""
    costs, results = root / f"{label}-costs.jsonl", root / f"{label}-results.json"
    costs.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_STATEMENTS_DSN": box.superuser_url("postgres"),
           "BENCH_CHECKER_ROLES": ",".join(checker_logins(box)), "BENCH_STATEMENTS_OUT": str(costs)}
    run = subprocess.run([sys.executable, "-m", "pytest", "--target", TARGET, "-q",
                          "-p", "bench.statements", f"--results-json={results}"],
                         cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=900)
    if not results.exists() or not costs.exists():
        raise SystemExit(f"the {label} run wrote no results (exit {run.returncode}):\n"
                         f"{run.stdout[-3000:]}{run.stderr[-3000:]}")
    states = {c["nodeid"]: c["state"] for c in json.loads(results.read_text())["checks"]}
    by_node = {}
    for line in costs.read_text().splitlines():
        cost = json.loads(line)
        cost["state"] = states.get(cost["nodeid"], "NOT RUN")
        by_node[cost["nodeid"]] = cost
    return by_node


def warm(box: Sandbox, root: Path, runs: int) -> dict[str, dict[str, Any]]:
    """A warm-up run, then the median of `runs` runs per check (the last run's state)."""
    suite_run(box, root, "warm-up")
    measured = [suite_run(box, root, f"warm-{i}") for i in range(runs)]
    merged = {}
    for nodeid, last in measured[-1].items():
        samples = [run[nodeid] for run in measured if nodeid in run]
        merged[nodeid] = {**last, "blocks": statistics.median(s["blocks"] for s in samples),
                          "server_ms": statistics.median(s["server_ms"] for s in samples)}
    return merged


def walls(box: Sandbox, markers: Sequence[str], runs: int) -> dict[str, float]:
    """Each incident marker's whole-process wall time, and the whole suite's (WHOLE_SUITE), median
    of `runs`, interleaved."""
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        for marker in (*markers, WHOLE_SUITE):
            selected = [] if marker == WHOLE_SUITE else ["-m", marker]
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", "pytest", *selected, "--target", TARGET, "-q"],
                           cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False, timeout=600)
            times[marker].append(time.monotonic() - started)
    return {marker: round(statistics.median(samples), 2) for marker, samples in times.items()}


# The runbooks' literal SQL ---------------------------------------------------------------------


def literal_blocks(box: Sandbox) -> dict[str, dict[str, int]]:
    """Per runbook and item, the buffers its literal SQL touches (warm: the second execution)."""
    measured: dict[str, dict[str, int]] = {}
    for runbook, items in LITERAL.items():
        system = next((s for s in box.registry if s.name == RUNBOOK_SYSTEM[runbook]), None)
        if system is None:
            continue
        params = literal_params(runbook, box.env)
        for item, statement in items.items():
            plan = None
            # Each run on a new connection, as each check run is: the catalog caches of a
            # backend start empty, the shared buffers stay warm.
            for _ in range(2):
                with box.superuser(system.database) as conn:
                    row = conn.execute(f"explain (analyze, buffers, format json) {statement}",
                                       params or None).fetchone()
                assert row is not None
                plan = row[0][0]["Plan"]
            assert plan is not None
            measured.setdefault(runbook, {})[item] = (plan.get("Shared Hit Blocks", 0)
                                                      + plan.get("Shared Read Blocks", 0))
    return measured


# Tables --------------------------------------------------------------------------------------


def within(default: float, scaled: float) -> bool:
    return scaled <= 2 * default + GROWTH_CONSTANT


def checks_table(default: dict[str, dict[str, Any]], scaled: dict[str, dict[str, Any]],
                 cold: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for nodeid, at_scale in scaled.items():
        before = default.get(nodeid, {"blocks": 0, "state": "NOT RUN"})
        first = cold.get(nodeid, {"server_ms": None, "state": "NOT RUN"})
        rows.append({
            "item": at_scale["item"], "runbook": at_scale["runbook"],
            "marker": ",".join(m for m in at_scale["markers"] if m in MARKERS),
            "blocks_default": before["blocks"], "blocks_scaled": at_scale["blocks"],
            "growth": round(at_scale["blocks"] / before["blocks"], 2) if before["blocks"] else None,
            "within_bounds": within(before["blocks"], at_scale["blocks"])
                             and at_scale["server_ms"] <= WARM_MS_LIMIT
                             and (first["server_ms"] or 0) < STATEMENT_TIMEOUT_MS / 2,
            "server_ms_scaled_warm": at_scale["server_ms"], "server_ms_scaled_cold": first["server_ms"],
            "state_default": before["state"], "state_scaled": at_scale["state"],
            "state_scaled_cold": first["state"],
        })
    return sorted(rows, key=lambda r: (r["runbook"], _item_order(r["item"])))


def _item_order(item: str) -> tuple[str, int, str]:
    prefix, _, rest = item.partition("-")
    digits = "".join(c for c in rest if c.isdigit())
    return prefix, int(digits or 0), rest


def runbooks_table(scaled: dict[str, dict[str, Any]],
                   literal: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    rows = []
    for runbook, items in literal.items():
        ours = sum(c["blocks"] for c in scaled.values()
                   if c["runbook"] == runbook and c["item"] in items)
        theirs = sum(items.values())
        rows.append({"runbook": runbook, "items": sorted(items, key=_item_order),
                     "items_from_prose": sorted(FROM_PROSE.get(runbook, ()), key=_item_order),
                     "project_blocks": ours, "literal_blocks": theirs,
                     "literal_over_project": round(theirs / ours, 1) if ours else None})
    return rows


def print_table(report: dict[str, Any]) -> None:
    print(f"\nPostgreSQL {report['server_version']}, scale {report['scale']} "
          f"(loaded in {report['load_s']} s; `up` {report['up_default_s']} s at default volume, "
          f"{report['up_scaled_s']} s at scale)")
    header = (f"{'item':<8} {'marker':<22} {'blocks':>8} {'at scale':>9} {'ratio':>6} "
              f"{'warm ms':>8} {'cold ms':>8} {'state':<8} bounds")
    print(header)
    print("-" * len(header))
    for r in report["checks"]:
        ratio = "-" if r["growth"] is None else f"{r['growth']:.2f}"
        cold = "-" if r["server_ms_scaled_cold"] is None else f"{r['server_ms_scaled_cold']:.1f}"
        print(f"{r['item']:<8} {r['marker'][:22]:<22} {r['blocks_default']:>8.0f} "
              f"{r['blocks_scaled']:>9.0f} {ratio:>6} {r['server_ms_scaled_warm']:>8.1f} "
              f"{cold:>8} {r['state_scaled']:<8} {'ok' if r['within_bounds'] else 'OVER'}")
    print("\nrunbook  items                      ours  literal  literal/ours")
    for r in report["runbooks"]:
        print(f"{r['runbook']:<8} {','.join(r['items'])[:24]:<24} {r['project_blocks']:>7.0f} "
              f"{r['literal_blocks']:>8} {r['literal_over_project'] or '-':>12}")
    print("\nmarker                  wall default  wall at scale  ratio")
    for r in report["markers"]:
        print(f"{r['marker']:<22} {r['wall_default_s']:>11.2f}s {r['wall_scaled_s']:>13.2f}s "
              f"{r['wall_scaled_s'] / r['wall_default_s']:>6.2f}")


if __name__ == "__main__":
    sys.exit(main())
