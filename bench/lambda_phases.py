"""What the analysis state machine's functions cost on the benchmark images: AnalyzeLayer per layer and
Assemble (their duration is the bill), next to the command line's cold `sbom` on the same image.

Usage: python bench/lambda_phases.py [--rounds 3] [--images image image-rpm] [--stores local|moto]
                                     [--rebuilt] [--out FILE]

The images are the ones bench/sbom_vs_trivy.sh compares with Trivy (bench/out/sbom-vs-trivy/<name>,
built by bench/build_bench_image.py when missing). Each is pushed to a local registry (Debian's
docker-registry on 127.0.0.1). Every round starts with empty stores (no layer fragment cached: every
layer is read, as for a first push) and analyzes each image once:

- ``--stores local`` (default): the phase functions the handlers call (``resolve_phase``, then
  ``analyze_layer_phase`` for each layer, then ``assemble_phase``) one after the other in this
  process, against the embedded store, each timed (wall and CPU); the blob store counts its requests
  (on AWS, S3 requests: each one a round trip and a line on the bill). This is the functions' own
  work, without AWS latency or a cold container's start.
- ``--stores moto``: the real handlers under the real analysis state machine in moto, each invocation
  timed. moto runs every state on a thread of its own, so each invocation also builds the botocore
  sessions pynamodb keeps per thread (a warm Lambda container does not): these figures overstate.

With ``--rebuilt`` (local stores), each round then analyzes, on the same stores, the image rebuilt on
the same layers with another label (bench/relabel_layout.py: new config and manifest digests): what a
push of an image relabelled or rebuilt on unchanged layers costs, reported as ``rebuilt:<function>``.

Reported per image: the median over rounds of each function's time, the sum of AnalyzeLayer over the
layers and the largest one (a Map runs them in parallel on AWS), the blob requests, and the command
line's cold `sbom -o json --no-cache` over the same layout, timed in its own process in the same round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.push_burst import timed_handlers  # noqa: E402
from bench.relabel_layout import relabel  # noqa: E402

from tests.support.aws import ecr_push_event, fake_aws_environment, moto_stack, registry_environment  # noqa: E402
from tests.support.registry import push_layout, run_registry  # noqa: E402

IMAGES_DIR = ROOT / "bench" / "out" / "sbom-vs-trivy"


def _ensure_images() -> None:
    if (
        not (IMAGES_DIR / "image" / "index.json").exists()
        or not (IMAGES_DIR / "image-rpm" / "index.json").exists()
    ):
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "build_bench_image.py"), str(IMAGES_DIR)], check=True
        )


def _source_tag(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_bytes())
    name: str = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    return name


def _cli_cold(layout: Path, home: Path) -> tuple[float, float]:
    """Wall and CPU seconds of the command line's cold analysis of ``layout``."""
    portwarden = Path(sys.executable).parent / "portwarden"
    command = [str(portwarden), "sbom", f"oci-dir:{layout}", "-o", "json", "--no-cache"]
    before = os.times()
    started = time.perf_counter()
    subprocess.run(
        command, env={**os.environ, "PORTWARDEN_HOME": str(home)}, stdout=subprocess.DEVNULL, check=True
    )
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


class CountingBlobs:
    """A blob store that counts its requests (on AWS each is an S3 request)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.requests: dict[str, int] = defaultdict(int)

    def get(self, key: str) -> bytes | None:
        self.requests["get"] += 1
        data: bytes | None = self._inner.get(key)
        return data

    def put(self, key: str, data: bytes) -> None:
        self.requests["put"] += 1
        self._inner.put(key, data)

    def exists(self, key: str) -> bool:
        self.requests["exists"] += 1
        found: bool = self._inner.exists(key)
        return found


def _timed(call: Any) -> tuple[Any, float, float]:
    """The call's result, wall seconds and CPU seconds (this process: the phases' threads included)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _local_round(
    reference: str, client: Any, work: Path, rebuilt: str | None = None
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """One analysis through the phase functions on empty local stores: seconds per call and function
    (CPU seconds under ``<function>-cpu``), and the blob requests; then, with ``rebuilt``, the analysis
    of that image on the same stores (its functions named ``rebuilt:<function>``)."""
    from portwarden.adapters.local.sqlite import LocalStore
    from portwarden.core.services.acquire import ImageAccess
    from portwarden.core.services.pipeline import (
        AnalysisRequest,
        analyze_layer_phase,
        assemble_phase,
        resolve_phase,
    )

    store = LocalStore(work)
    try:
        blobs = CountingBlobs(store.blobs)
        access = ImageAccess(registry_client=lambda _ref: client, work_dir=work / "tmp")
        durations: dict[str, list[float]] = defaultdict(list)

        def record(function: str, wall: float, cpu: float) -> None:
            durations[function].append(wall)
            durations[f"{function}-cpu"].append(cpu)

        for prefix, source in [("", reference), ("rebuilt:", rebuilt)]:
            if source is None:
                continue
            request = AnalysisRequest(source=source)
            pointer, wall, cpu = _timed(
                lambda request=request: resolve_phase(request, access, blobs=blobs, catalog=store.catalog)
            )
            record(f"{prefix}ResolveFunction", wall, cpu)
            for task in pointer.layers:
                if task.cached:
                    continue  # passed over by the Map
                _, wall, cpu = _timed(
                    lambda task=task, request=request: analyze_layer_phase(
                        request.source, task, access, blobs=blobs
                    )
                )
                record(f"{prefix}AnalyzeLayerFunction", wall, cpu)
            _, wall, cpu = _timed(
                lambda pointer=pointer: assemble_phase(
                    pointer, access, blobs=blobs, catalog=store.catalog, analyses=store.analyses
                )
            )
            record(f"{prefix}AssembleFunction", wall, cpu)
            if not prefix:
                counted = dict(blobs.requests)
        return durations, counted
    finally:
        store.close()


def _moto_round(
    digest: str, repository: str, patch: Any, environment: dict[str, str]
) -> dict[str, list[float]]:
    durations: dict[str, list[float]] = defaultdict(list)
    with moto_stack(patch, **environment) as stack:
        timed_handlers(stack, durations)
        started = stack.start_push(ecr_push_event(digest, repository=repository))
        finished = stack.wait(started["execution_arn"], timeout=1800)
    if finished["status"] != "SUCCEEDED":
        raise SystemExit(f"{repository}: execution {finished['status']}")
    return durations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", nargs="+", default=["image", "image-rpm"])
    parser.add_argument("--stores", choices=["local", "moto"], default="local")
    parser.add_argument("--rebuilt", action="store_true", help="also the image rebuilt on the same layers")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.rebuilt and args.stores != "local":
        parser.error("--rebuilt measures the local stores")
    _ensure_images()
    # As an install would have them: compiled once, not on every start.
    package = ROOT / "layers" / "portwarden"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)

    # per image: per round, {function: [seconds per invocation]}, the blob requests, and the command
    # line's (wall, cpu)
    rounds: dict[str, list[dict[str, list[float]]]] = defaultdict(list)
    requests: dict[str, list[dict[str, int]]] = defaultdict(list)
    cli: dict[str, list[tuple[float, float]]] = defaultdict(list)
    scratch_directory = tempfile.TemporaryDirectory(prefix="lambda-phases-")
    with scratch_directory as scratch, pytest.MonkeyPatch.context() as patch:
        work = Path(scratch)
        fake_aws_environment(patch)
        with run_registry(work / "registry") as registry:
            digests, rebuilt_digests = {}, {}
            for image in args.images:
                layout = IMAGES_DIR / image
                push_layout(layout, registry, f"team/{image}", "1.0", source_tag=_source_tag(layout))
                index = json.loads((layout / "index.json").read_bytes())
                digests[image] = index["manifests"][0]["digest"]
                if args.rebuilt:
                    relabelled = work / f"rebuilt-{image}"
                    rebuilt_digests[image] = relabel(layout, relabelled, "bench.rebuilt", "1")
                    push_layout(
                        relabelled, registry, f"team/{image}", "rebuilt", source_tag=_source_tag(layout)
                    )
            environment = registry_environment(
                registry.host,
                PORTWARDEN_WORK_DIR=str(work / "functions"),
                PORTWARDEN_ECR_REPOSITORY_PREFIXES="team/",
                LOG_LEVEL="ERROR",
                POWERTOOLS_METRICS_DISABLED="true",
                POWERTOOLS_TRACE_DISABLED="true",
            )
            client = registry.client()
            for round_number in range(1, args.rounds + 1):
                for image in args.images:
                    if args.stores == "local":
                        reference = f"{registry.host}/team/{image}@{digests[image]}"
                        rebuilt = (
                            f"{registry.host}/team/{image}@{rebuilt_digests[image]}" if args.rebuilt else None
                        )
                        durations, counted = _local_round(
                            reference, client, work / f"store-{image}-{round_number}", rebuilt
                        )
                        requests[image].append(counted)
                    else:
                        durations = _moto_round(digests[image], f"team/{image}", patch, environment)
                    rounds[image].append(dict(durations))
                    cli_home = work / f"cli-home-{image}-{round_number}"
                    cli[image].append(_cli_cold(IMAGES_DIR / image, cli_home))
                    layers = durations["AnalyzeLayerFunction"]
                    rebuilt_line = (
                        f", rebuilt: Resolve {1000 * sum(durations['rebuilt:ResolveFunction']):.0f} ms, "
                        f"AnalyzeLayer {len(durations.get('rebuilt:AnalyzeLayerFunction', []))} x, "
                        f"Assemble {1000 * sum(durations['rebuilt:AssembleFunction']):.0f} ms"
                        if args.rebuilt
                        else ""
                    )
                    print(
                        f"round {round_number} {image}: AnalyzeLayer {len(layers)} x "
                        f"{', '.join(f'{1000 * s:.0f}' for s in layers)} ms, "
                        f"Assemble {1000 * sum(durations['AssembleFunction']):.0f} ms, "
                        f"cli cold {cli[image][-1][0]:.2f} s{rebuilt_line}",
                        flush=True,
                    )
    report: dict[str, Any] = {
        "rounds": args.rounds,
        "stores": args.stores,
        "load_average": os.getloadavg(),
        "images": {},
    }
    for image in args.images:
        names = sorted({name for r in rounds[image] for name in r})
        per_function = {
            name: round(1000 * statistics.median(sum(r.get(name, [0.0])) for r in rounds[image]), 1)
            for name in names
        }
        layer_sum = statistics.median(sum(r["AnalyzeLayerFunction"]) for r in rounds[image])
        layer_max = statistics.median(max(r["AnalyzeLayerFunction"]) for r in rounds[image])
        assemble = statistics.median(sum(r["AssembleFunction"]) for r in rounds[image])
        report["images"][image] = {
            "layers": len(rounds[image][0]["AnalyzeLayerFunction"]),
            "median_ms_per_function": per_function,
            "analyze_layer_sum_ms": round(1000 * layer_sum, 1),
            "analyze_layer_largest_ms": round(1000 * layer_max, 1),
            "analyze_layers_plus_assemble_ms": round(1000 * (layer_sum + assemble), 1),
            "blob_requests": requests[image][0] if requests[image] else None,
            "cli_cold_wall_ms": round(1000 * statistics.median(w for w, _ in cli[image]), 1),
            "cli_cold_cpu_ms": round(1000 * statistics.median(c for _, c in cli[image]), 1),
        }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
