"""Start-up cost of the command line: `--version`, `--help`, and the import cost of each command.

Usage: python bench/startup.py [--rounds 7]

1. Whole processes (the console script, as a user runs it): `portwarden --version`, `portwarden
   --help` and `portwarden COMMAND --help`, alternating, median wall and CPU time per command line.
2. The import cost of each command, in a fresh process after the command line itself
   (`portwarden.cli.main`, which registers the commands lazily and imports none of their modules):
   its module (what naming the command, `COMMAND --help` included, adds), then the modules its
   function imports when it runs (on top of its module; `--help` pays for none of them); median CPU
   time of each import alone, over the rounds.

3. The floor of any answer that builds a pydantic model: a fresh interpreter that imports pydantic,
   declares one model with a constrained field and validates it (median wall and CPU time), next to
   a bare interpreter. An answer that loads pydantic cannot be quicker than that. Measured with
   pydantic's plugin discovery off, as the commands run: with pydantic's own plugin loader, and
   after ``import portwarden`` (``portwarden.startup`` puts a loader that imports no package
   metadata in its place, as every command and function has it); and once with discovery on.

Run it on an installed package (bytecode compiled): the script compiles the package's sources first,
as pip does at install, since a checkout run with PYTHONDONTWRITEBYTECODE compiles every module at
every start.
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "layers" / "portwarden" / "portwarden"
PORTWARDEN = Path(sys.executable).parent / "portwarden"
COMMAND_LINES = [
    ["--version"],
    ["--help"],
    ["sbom", "--help"],
    ["scan", "--help"],
    ["policy", "--help"],
    ["registry", "--help"],
]

MEASURE_IMPORT = """
import resource, sys, time
import portwarden.cli.main
for name in sys.argv[1].split(","):
    if name:
        __import__(name)
before = resource.getrusage(resource.RUSAGE_SELF)
for name in sys.argv[2:]:
    __import__(name)
after = resource.getrusage(resource.RUSAGE_SELF)
print((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
"""


PYDANTIC_FLOOR = """
from pydantic import BaseModel, Field


class Floor(BaseModel):
    count: int = Field(default=1, gt=0)


Floor(count=2)
"""


def run_once(
    argv: list[str], program: str | None = None, environment: dict[str, str] | None = None
) -> tuple[float, float]:
    start = time.perf_counter()
    command = [str(PORTWARDEN), *argv] if program is None else [program, *argv]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{program or 'portwarden'} {' '.join(argv)} failed")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def command_imports() -> dict[str, tuple[str, list[str]]]:
    """Per command function (``commands_*.py``), its module and the portwarden modules it imports in
    its body."""
    found: dict[str, tuple[str, list[str]]] = {}
    for source in sorted((PACKAGE / "cli").glob("commands_*.py")):
        tree = ast.parse(source.read_text())
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            modules = sorted(
                {
                    inner.module
                    for inner in ast.walk(node)
                    if isinstance(inner, ast.ImportFrom)
                    and inner.module
                    and inner.module.startswith("portwarden")
                }
            )
            if modules:
                module = f"portwarden.cli.{source.stem}"
                found[f"{source.stem.removeprefix('commands_')}.{node.name}"] = (module, modules)
    return found


def import_cost(modules: list[str], after: tuple[str, ...] = ()) -> float:
    """CPU seconds to import ``modules`` once the command line and ``after`` are imported."""
    output = subprocess.run(
        [sys.executable, "-c", MEASURE_IMPORT, ",".join(after), *modules],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(output.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(PACKAGE)], check=True, stdout=subprocess.DEVNULL
    )
    runs: dict[str, list[tuple[float, float]]] = {" ".join(argv): [] for argv in COMMAND_LINES}
    for _ in range(args.rounds):
        for argv in COMMAND_LINES:
            runs[" ".join(argv)].append(run_once(argv))
    print(f"load average {os.getloadavg()[0]:.1f}, {args.rounds} rounds, medians")
    print(f"{'portwarden ...':<20} {'wall s':>7} {'cpu s':>7}")
    for name, results in runs.items():
        wall = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        print(f"{name:<20} {wall:7.3f} {cpu:7.3f}")
    print()
    repeats = max(3, args.rounds // 2)
    print(f"{'command (function)':<28} {'module cpu s':>12} {'run cpu s':>10}  modules the function imports")
    for command, (module, modules) in command_imports().items():
        own = statistics.median(import_cost([module]) for _ in range(repeats))
        body = statistics.median(import_cost(modules, (module,)) for _ in range(repeats))
        names = ", ".join(m.removeprefix("portwarden.") for m in modules)
        print(f"{command:<28} {own:12.3f} {body:10.3f}  {names}")
    print()
    # The commands and the functions run with pydantic's plugin discovery off (cli.entry, the
    # template); the last row is what the first model costs with it on (every installed
    # distribution's metadata scanned for entry points).
    quiet = {**os.environ, "PYDANTIC_DISABLE_PLUGINS": "__all__"}
    discovering = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    floors = {
        "python (bare interpreter)": (["-c", "pass"], quiet),
        "python + pydantic, one model": (["-c", PYDANTIC_FLOOR], quiet),
        "  after portwarden's start-up": (["-c", "import portwarden\n" + PYDANTIC_FLOOR], quiet),
        "  plugin discovery on": (["-c", PYDANTIC_FLOOR], discovering),
    }
    floor_runs: dict[str, list[tuple[float, float]]] = {name: [] for name in floors}
    for _ in range(args.rounds):
        for name, (argv, environment) in floors.items():
            floor_runs[name].append(run_once(argv, sys.executable, environment))
    print(f"{'floor':<30} {'wall s':>7} {'cpu s':>7}")
    for name, results in floor_runs.items():
        wall = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        print(f"{name:<30} {wall:7.3f} {cpu:7.3f}")


if __name__ == "__main__":
    main()
