"""Cold-start import time of every Lambda handler, as ``python -X importtime`` reports it.

Usage: python bench/handler_imports.py [--rounds 5] [--baseline DIR] [--out FILE]

For each ``functions/<name>/app.py`` of this checkout (and, with ``--baseline``, of another checkout
of the repository, e.g. an older commit exported with ``git archive``), runs a fresh interpreter
that imports the handler module the way Lambda does (the function directory and the layer's package
directory on ``sys.path``) and reads the cumulative microseconds of ``app`` from ``-X importtime``.
Rounds alternate between the checkouts so machine load hits both alike; the median is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)\s*$")


def import_ms(checkout: Path, function: str) -> float:
    environment = {
        **os.environ,
        "PYTHONPATH": f"{checkout / 'functions' / function}{os.pathsep}{checkout / 'layers' / 'portwarden'}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "portwarden",
    }
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=checkout / "functions" / function,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(result.stderr.splitlines()):
        match = _LINE.match(line)
        if match and match.group(3) == "app":
            return int(match.group(2)) / 1000
    raise RuntimeError(f"no import time for {function}: {result.stderr[-500:]}")


def functions(checkout: Path) -> list[str]:
    return sorted(path.parent.name for path in (checkout / "functions").glob("*/app.py"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    checkouts = {"current": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    samples: dict[str, dict[str, list[float]]] = {label: {} for label in checkouts}
    for _ in range(args.rounds):
        for label, checkout in checkouts.items():
            for function in functions(checkout):
                samples[label].setdefault(function, []).append(import_ms(checkout, function))
    medians = {
        label: {function: round(statistics.median(values), 1) for function, values in per.items()}
        for label, per in samples.items()
    }
    names = sorted({function for per in medians.values() for function in per})
    header = f"{'function':<22}" + "".join(f"{label:>12}" for label in checkouts)
    print(header)
    for function in names:
        row = "".join(
            f"{medians[label][function]:>10.1f}ms" if function in medians[label] else f"{'-':>12}"
            for label in checkouts
        )
        print(f"{function:<22}{row}")
    if args.out:
        args.out.write_text(json.dumps(medians, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
