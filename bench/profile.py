"""Where `portwarden` spends its time: a py-spy profile of one command, summarized as tables.

Usage: python bench/profile.py [--rate 250] [--top 25] -- portwarden ARGS...

py-spy (a bench-only dependency: `pip install py-spy`) samples every thread of the process, the idle
ones included (``--idle`` is not set, so a thread blocked on a lock or a queue is not counted). The
summary has two tables:

- self time: the function on top of the stack when sampled (where the CPU actually is);
- inclusive time: samples whose stack contains the function (what a call costs in all);

both as a share of all samples, so a thread pool shows up as more than 100% of one core when its
threads ran at the same time. The raw collapsed stacks are kept next to the summary when ``--keep``
names a directory, for a flame graph (``flamegraph.pl`` or speedscope).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def frame_name(frame: str) -> str:
    # py-spy raw frames: "function (path/to/module.py:line)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "layers/portwarden/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def summarize(collapsed: Path, top: int) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    lines = [f"samples: {total}", "", "self time (top of stack):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    lines += ["", "inclusive time (on the stack):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=250, help="samples per second per thread")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--keep", type=Path, help="directory to keep the collapsed stacks in")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the command to profile after --")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as work:
        collapsed = Path(work) / "stacks.txt"
        subprocess.run(
            [
                py_spy,
                "record",
                "--rate",
                str(args.rate),
                "--threads",
                "--format",
                "raw",
                "--nonblocking",
                "-o",
                str(collapsed),
                "--",
                *command,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(summarize(collapsed, args.top))
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(collapsed, args.keep / "stacks.txt")


if __name__ == "__main__":
    main()
