"""Cold-start import time of the functions as ``sam build`` packages them, with and without bytecode.

Usage: python bench/layer_imports.py [--build .aws-sam/build] [--rounds 5] [--python python3.11]

Run ``bash scripts/sam-check.sh`` (or ``sam build``) first. For each built function
(``<build>/<Name>Function/app.py``) a fresh interpreter imports the handler the way Lambda does: the
function directory and the layer's ``python/`` directory on ``sys.path``, nothing else (``-I -S``),
and no bytecode written (``-B``: Lambda's ``/opt`` and ``/var/task`` are read-only). It does so
against the built layer, and against a copy of it without any ``__pycache__`` (what a layer that
ships sources only costs: every module compiled at every cold start). Rounds alternate between the
two so machine load hits both alike; medians of ``-X importtime``'s cumulative time of ``app``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)\s*$")


def import_ms(python: str, function_dir: Path, layer: Path) -> float:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "portwarden",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    script = f"import sys; sys.path[:0] = [{str(function_dir)!r}, {str(layer)!r}]; import app"
    result = subprocess.run(
        [python, "-I", "-S", "-B", "-X", "importtime", "-c", script],
        cwd=function_dir,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(result.stderr.splitlines()):
        match = _LINE.match(line)
        if match and match.group(3) == "app":
            return int(match.group(2)) / 1000
    raise RuntimeError(f"no import time for {function_dir.name}: {result.stderr[-500:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / ".aws-sam" / "build")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default="python3.11", help="the functions' runtime")
    args = parser.parse_args()
    layer = args.build / "PortwardenLayer" / "python"
    if not layer.is_dir():
        parser.error(f"no built layer at {layer}: run scripts/sam-check.sh (or sam build) first")
    functions = sorted(path.parent for path in args.build.glob("*Function/app.py"))
    with tempfile.TemporaryDirectory() as scratch:
        sources_only = Path(scratch) / "python"
        shutil.copytree(layer, sources_only, ignore=shutil.ignore_patterns("__pycache__"))
        layers = {"bytecode": layer, "sources only": sources_only}
        samples: dict[str, dict[str, list[float]]] = {label: {} for label in layers}
        for _ in range(args.rounds):
            for label, path in layers.items():
                for function in functions:
                    measured = import_ms(args.python, function, path)
                    samples[label].setdefault(function.name, []).append(measured)
    print(f"{'function':<28}" + "".join(f"{label:>16}" for label in layers))
    for function in functions:
        row = "".join(f"{statistics.median(samples[label][function.name]):>14.1f}ms" for label in layers)
        print(f"{function.name:<28}{row}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
