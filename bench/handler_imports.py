"""Cold-start import time of every Lambda handler, as ``python -X importtime`` reports it.

Usage: python bench/handler_imports.py [--rounds 5] [--baseline DIR] [--only NAME ...] [--out FILE]

For each ``functions/<name>/app.py`` of this checkout (and, with ``--baseline``, of another checkout
of the repository, e.g. an older commit exported with ``git archive``), runs a fresh interpreter
that imports the handler module the way Lambda does (the function directory and the layer's package
directory on ``sys.path``) and reads the cumulative microseconds of ``app`` from ``-X importtime``
(wall time) and the CPU time the import took (``time.process_time``: less sensitive to other work
on the machine). Each checkout's package and functions are compiled first (the layer ships bytecode:
``layers/portwarden/Makefile``), so no figure includes compiling sources. Rounds alternate between
the checkouts so machine load hits both alike; medians are printed.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)\s*$")


# The child prints the CPU time of the import; -X importtime writes the wall times to stderr.
_IMPORT = (
    "import time; started = time.process_time(); import app; print((time.process_time() - started) * 1000)"
)


def compile_checkout(checkout: Path) -> None:
    for directory in (checkout / "layers" / "portwarden" / "portwarden", checkout / "functions"):
        # Timestamp-checked (unlike the layer's unchecked hashes): a source edited after a run is
        # compiled again, never shadowed by its old bytecode.
        compileall.compile_dir(directory, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)


def import_ms(checkout: Path, function: str) -> tuple[float, float]:
    """(wall, CPU) milliseconds of importing ``function``'s handler module."""
    environment = {
        **os.environ,
        "PYTHONPATH": f"{checkout / 'functions' / function}{os.pathsep}{checkout / 'layers' / 'portwarden'}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "portwarden",
        # As the template's Globals set it for every function.
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _IMPORT],
        cwd=checkout / "functions" / function,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = float(result.stdout.strip().splitlines()[-1])
    for line in reversed(result.stderr.splitlines()):
        match = _LINE.match(line)
        if match and match.group(3) == "app":
            return int(match.group(2)) / 1000, cpu
    raise RuntimeError(f"no import time for {function}: {result.stderr[-500:]}")


def functions(checkout: Path) -> list[str]:
    return sorted(path.parent.name for path in (checkout / "functions").glob("*/app.py"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these functions")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    checkouts = {"current": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    for checkout in checkouts.values():
        compile_checkout(checkout)
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {label: {} for label in checkouts}
    for _ in range(args.rounds):
        for label, checkout in checkouts.items():
            for function in functions(checkout):
                if args.only and function not in args.only:
                    continue
                samples[label].setdefault(function, []).append(import_ms(checkout, function))
    medians = {
        label: {
            function: {
                "wall_ms": round(statistics.median(wall for wall, _ in values), 1),
                "cpu_ms": round(statistics.median(cpu for _, cpu in values), 1),
            }
            for function, values in per.items()
        }
        for label, per in samples.items()
    }
    names = sorted({function for per in medians.values() for function in per})
    columns = "".join(f"{label + ' wall':>16}{label + ' CPU':>16}" for label in checkouts)
    header = f"{'function':<22}{columns}"
    print(header)
    for function in names:
        row = "".join(
            f"{medians[label][function]['wall_ms']:>14.1f}ms{medians[label][function]['cpu_ms']:>14.1f}ms"
            if function in medians[label]
            else f"{'-':>16}{'-':>16}"
            for label in checkouts
        )
        print(f"{function:<22}{row}")
    print(f"load average {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    if args.out:
        args.out.write_text(json.dumps(medians, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
