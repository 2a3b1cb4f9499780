"""A timeline of one `portwarden` command's layer reads: when each stage ran and the CPU it used.

Usage: python bench/read_timeline.py [--runs 3] -- sbom oci-dir:LAYOUT -o json --no-cache

Runs the command in this process (stdout discarded) with the layer-reading stages wrapped: for each
layer, the parsing thread (``read_layer``), the inflating thread (``Inflater._run``), the hashing
threads (``ChunkHasher._run``: the diff_id and, where there is one, the compressed blob's digest),
each with its start and end (seconds since the process started) and the CPU its thread used
(``time.thread_time``). Also: when the first layer read began, when the last one ended, and the
process's total wall and CPU time. Each run is a fresh process (a cold start).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, os, sys, threading, time
T0 = time.perf_counter()
# The interpreter's own start-up, before this line, from the process's start time.
with open("/proc/self/stat") as f:
    start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
with open("/proc/uptime") as f:
    uptime = float(f.read().split()[0])
BOOT = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
if os.environ.get("TIMELINE_SWITCH_INTERVAL"):
    sys.setswitchinterval(float(os.environ["TIMELINE_SWITCH_INTERVAL"]))
events = []
lock = threading.Lock()

def runqueue_wait():
    # Time spent runnable but waiting for a core (machine load), as opposed to blocked
    # (waiting for the GIL, a queue, I/O).
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[1]) / 1e9

def wrap(owner, name, label):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start, cpu, queued = time.perf_counter(), time.thread_time(), runqueue_wait()
        try:
            return original(*args, **kwargs)
        finally:
            # The layer a stage belongs to: the digest names the inflater's and hasher's threads,
            # and is the parsing call's argument.
            where = kwargs.get("digest") or threading.current_thread().name.split("-", 2)[-1]
            with lock:
                events.append((label, where[:19], start - T0,
                               time.perf_counter() - T0, time.thread_time() - cpu,
                               runqueue_wait() - queued))
    setattr(owner, name, wrapper)

import importlib.abc
class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname == "portwarden.core.image.reader":
            sys.meta_path.remove(self)
            events.append(("import reader", "main", time.perf_counter() - T0, 0.0, 0.0, 0.0))
        return None
sys.meta_path.insert(0, Hook())

import portwarden.core.image.inflate as inflate
import portwarden.core.image.layer as layer
wrap(inflate.Inflater, "_run", "inflate")
wrap(inflate.ChunkHasher, "_run", "hash")
wrap(layer, "read_layer", "parse")
import portwarden.core.image.reader as reader
reader.read_layer = layer.read_layer
wrap(reader, "read_image", "read_image")
import portwarden.core.services.acquire as acquire
import portwarden.core.services.analyze as analyze
import portwarden.core.image.sources as sources
wrap(analyze, "plan_analysis", "plan")
wrap(analyze, "analyze_image", "analyze")
wrap(acquire, "open_source", "open_source")
for cls in (sources.OciLayoutSource,):
    wrap(cls, "resolve", "resolve")
sys.argv = ["portwarden", *sys.argv[1:]]
sys.stdout = open(os.devnull, "w")
from portwarden.cli.entry import run
try:
    run()
except SystemExit:
    pass
end = time.perf_counter() - T0
cpu = os.times()
sys.stderr.write(json.dumps({"events": events, "end": end, "boot": BOOT,
                             "cpu": cpu.user + cpu.system}) + "\n")
"""


def _summary(
    runs: list[list[list[float | str]]], phases: list[tuple[float, float, float, float, float]]
) -> None:
    """Medians over the runs: the process, the read phase, and per layer and stage."""
    if phases:
        wall, cpu, first, reads, stage_cpu = (statistics.median(p[i] for p in phases) for i in range(5))
        print(
            f"medians over {len(phases)} runs: process {wall:.3f} s wall, {cpu:.3f} s CPU; first layer "
            f"read at {first:.3f} s; read phase {reads:.3f} s wall, "
            f"{stage_cpu:.3f} s CPU in the layer threads"
        )

    table: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for events in runs:
        for label, where, start, end, cpu, _ in events:
            if label in ("parse", "inflate", "hash"):
                table.setdefault((str(where), str(label)), []).append((float(cpu), float(end) - float(start)))
    print("medians over the runs (layer, stage: CPU s / span s):")
    for (where, label), values in sorted(table.items()):
        cpu = statistics.median(v[0] for v in values)
        span = statistics.median(v[1] for v in values)
        print(f"  {where:19} {label:8} {cpu:.3f} / {span:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [a for a in args.command if a != "--"]
    collected: list[list[list[float | str]]] = []
    phases: list[tuple[float, float, float, float, float]] = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "PORTWARDEN_HOME": home}
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, *command], env=env, capture_output=True, text=True
            )
        if done.returncode not in (0, 1):
            sys.stderr.write(done.stderr)
            raise SystemExit(done.returncode)
        result = json.loads(done.stderr.strip().splitlines()[-1])
        boot = result["boot"]
        print(
            f"run {run + 1}: interpreter start {boot:.3f} s before the script; "
            f"total {result['end'] + boot:.3f} s wall, {result['cpu']:.3f} s CPU"
        )
        events = sorted(result["events"], key=lambda e: e[2])
        collected.append(events)
        reads = [e for e in events if e[0] == "parse"]
        for label, thread, start, end, cpu, queued in events:
            if not end:
                print(f"  {label:11} {thread:24.24} {start + boot:6.3f}")
                continue
            blocked = end - start - cpu - queued
            print(
                f"  {label:11} {thread:24.24} {start + boot:6.3f} .. {end + boot:6.3f}  "
                f"cpu {cpu:.3f}  waiting for a core {queued:.3f}  blocked {blocked:.3f}"
            )
        if reads:
            first, last = min(e[2] for e in reads), max(e[3] for e in reads)
            stages = [e for e in events if e[0] in ("parse", "inflate", "hash")]
            stage_cpu = sum(e[4] for e in stages)
            queued = sum(e[5] for e in stages)
            print(
                f"  reads {first + boot:.3f} .. {last + boot:.3f} s: {last - first:.3f} s wall, "
                f"{stage_cpu:.3f} s CPU in the layer threads ({stage_cpu / (last - first):.2f} cores), "
                f"{queued:.3f} s waiting for a core"
            )
            phases.append((result["end"] + boot, result["cpu"], first + boot, last - first, stage_cpu))
    _summary(collected, phases)


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent.parent)
    main()
