"""Alternating wall-time and peak-RSS measurements of shell commands.

Usage: python bench/measure.py --rounds N [--timeout S] --out DIR NAME=COMMAND [NAME=COMMAND ...]

Each round runs every command once, in the order given, so that drifting machine load hits all of
them alike. A command's peak RSS is the child's ru_maxrss from wait4 (the process the command
execs; ``exec`` is prepended so that no shell stays in between); CPU time (user + system) is
reported too, being steadier than wall time on a shared machine. stdout goes to DIR/NAME.out, the
figures to DIR/measurements.json; the summary (median and best per command) is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path


def run_once(command: str, stdout_path: Path, timeout: float) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS in KiB, exit status) of one run."""
    with stdout_path.open("wb") as stdout:
        start = time.perf_counter()
        process = subprocess.Popen(["/bin/sh", "-c", f"exec {command}"], stdout=stdout)
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a run is killed")
    parser.add_argument("commands", nargs="+", help="NAME=COMMAND")
    args = parser.parse_args()
    commands = dict(item.split("=", 1) for item in args.commands)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    for round_number in range(1, args.rounds + 1):
        for name, command in commands.items():
            wall, cpu, rss, code = run_once(command, args.out / f"{name}.out", args.timeout)
            if code != 0:
                sys.exit(f"{name} failed with exit status {code}: {command}")
            results[name].append({"wall_s": wall, "cpu_s": cpu, "max_rss_kib": rss})
            print(
                f"round {round_number}: {name:<14} {wall:7.2f} s wall {cpu:7.2f} s cpu {rss / 1024:8.1f} MiB",
                file=sys.stderr,
            )
    summary = {
        name: {
            "wall_s_median": statistics.median(r["wall_s"] for r in runs),
            "wall_s_best": min(r["wall_s"] for r in runs),
            "cpu_s_median": statistics.median(r["cpu_s"] for r in runs),
            "max_rss_mib_median": statistics.median(r["max_rss_kib"] for r in runs) / 1024,
            "max_rss_mib_max": max(r["max_rss_kib"] for r in runs) / 1024,
            "runs": runs,
        }
        for name, runs in results.items()
    }
    (args.out / "measurements.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
