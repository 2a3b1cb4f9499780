"""Where an answer on cached layers spends its time, phase by phase, in one process.

Usage: python bench/cached_phases.py [--rounds 20] [--home HOME] [LAYOUT]

LAYOUT defaults to the base image `bench/sbom_vs_trivy.sh` builds (bench/out/sbom-vs-trivy/
base-debian-pip-npm); HOME to that script's home for the rows on a new layer stack (every layer
fragment and the catalogers' results kept). Each run is `portwarden sbom oci-dir:LAYOUT -o json`
through the console script's own path (`cli.entry.run`, output discarded), after the stored
analyses and layer-stack entries are removed: a new stack whose layers are all cached, as the bench's
`portwarden-base` and `portwarden-layers` rows run it.

Once the full answer of a request like it has kept its plan and the view's catalogers' phase, the
console script answers without the models (``cli.replay``, ``core.replay``); ``--full`` removes the
kept plans before each run, so that the full answer is timed instead.

Printed: the first run in the process (imports, pydantic's schemas, first-use caches: what a fresh
process pays on top of the interpreter), then the median of ``--rounds`` further runs, whole and per
phase (a phase's time includes the phases it calls; phases on the layer-reading threads are
included in the caller's wait; a phase the path taken does not call shows 0).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import io
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "sbom-vs-trivy"

# (module, attribute path) of each phase timed: the early answer's pieces, the answer made without the
# models, then the full analysis's.
PHASES = (
    ("portwarden.cli.stored_sbom", "_remembered"),
    ("portwarden.core.replay.answer", "replayed_document"),
    ("portwarden.core.replay.answer", "_fragments"),
    ("portwarden.core.replay.phase", "still_answered"),
    ("portwarden.core.replay.answer", "_members"),
    ("portwarden.core.image.stacks", "LayerStackCache.save_id"),
    ("portwarden.core.image.rendering", "RenderingRecorder.write"),
    ("portwarden.cli.stored_sbom", "_Wiring.of"),
    ("portwarden.core.services.analyze", "sbom_document"),
    ("portwarden.core.services.analyze", "read_resolved"),
    ("portwarden.core.image.layer_cache", "LayerCache.lookup"),
    ("portwarden.core.image.reader", "squash"),
    ("portwarden.core.services.analyze", "assemble_for_document"),
    ("portwarden.core.analyzers.memo", "CatalogerMemo.run"),
    ("portwarden.core.analyzers.memo", "still_answered"),
    ("portwarden.core.model.analysis", "AnalyzedFile.from_records"),
    ("portwarden.core.services.analyze", "store_new_analysis"),
    ("portwarden.core.sbom.native", "native_json_and_stored_analysis"),
    ("portwarden.core.services.analyze", "_stack_saved"),
    ("portwarden.core.services.analyze", "SbomDocument.write"),
)


def timed(spent: collections.Counter[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - start

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--home", type=Path, default=OUT / "portwarden-home-debian-pip-npm-layers")
    parser.add_argument("layout", nargs="?", type=Path, default=OUT / "base-debian-pip-npm")
    parser.add_argument("--full", action="store_true", help="time the full answer (no kept plan)")
    args = parser.parse_args()
    if not (args.home / "cache" / "fragments").is_dir():
        sys.exit(f"{args.home} holds no layer fragments: run bash bench/sbom_vs_trivy.sh first")

    import os

    os.environ["PORTWARDEN_HOME"] = str(args.home)
    from portwarden.cli.entry import run

    def once() -> float:
        for directory in ("analyses", "stacks", *(("plans",) if args.full else ())):
            shutil.rmtree(args.home / "cache" / directory, ignore_errors=True)
        sys.argv = ["portwarden", "sbom", f"oci-dir:{args.layout}", "-o", "json"]
        saved = sys.stdout
        sys.stdout = io.TextIOWrapper(io.BytesIO())
        start = time.perf_counter()
        try:
            run()
        finally:
            sys.stdout = saved
        return time.perf_counter() - start

    first = once()
    spent: collections.Counter[str] = collections.Counter()
    for module_name, path in PHASES:
        module = importlib.import_module(module_name)
        owner_path, _, attribute = path.rpartition(".")
        owner: Any = module
        for part in filter(None, owner_path.split(".")):
            owner = getattr(owner, part)
        if hasattr(owner, attribute):  # an older checkout (PYTHONPATH) may not have every phase
            setattr(owner, attribute, timed(spent, path, getattr(owner, attribute)))
    per_phase: dict[str, list[float]] = {path: [] for _, path in PHASES}
    totals = []
    for _ in range(args.rounds):
        spent.clear()
        totals.append(once())
        for _, path in PHASES:
            per_phase[path].append(spent[path])
    print(f"{args.layout.name}: first run in the process {first * 1000:.1f} ms")
    print(f"median of {args.rounds} more runs: {statistics.median(totals) * 1000:.1f} ms")
    for path, values in per_phase.items():
        print(f"  {statistics.median(values) * 1000:7.1f} ms  {path}")


if __name__ == "__main__":
    main()
