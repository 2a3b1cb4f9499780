"""What the analysis state machine's functions cost on the benchmark images: AnalyzeLayer per layer and
Assemble (their duration is the bill), next to the command line's cold `sbom` on the same image.

Usage: python bench/lambda_phases.py [--rounds 3] [--images image image-rpm] [--out FILE]

The images are the ones bench/sbom_vs_trivy.sh compares with Trivy (bench/out/sbom-vs-trivy/<name>,
built by bench/build_bench_image.py when missing). Each is pushed to a local registry (Debian's
docker-registry on 127.0.0.1, mirrored for the functions as the test suite does); every round starts
a fresh stack under moto (so no layer fragment is cached: every layer is read, as for a first push)
and runs one ECR push of each image through the real state machine with our handlers in-process.
Each handler invocation is timed (wall time; the functions of one execution run one at a time here,
AnalyzeLayer items included, so nothing else of ours runs meanwhile). Reported per image: the median
over rounds of each function's time, the sum of AnalyzeLayer over the layers and the largest one (a
Map runs them in parallel on AWS), and the command line's cold `sbom -o json --no-cache` over the
same layout, timed in its own process in the same round. Durations include moto's S3 and DynamoDB
calls in the same process, so they overstate a real Lambda's a little.
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

from tests.support.aws import ecr_push_event, moto_stack, registry_environment  # noqa: E402
from tests.support.registry import push_layout, run_registry  # noqa: E402

IMAGES_DIR = ROOT / "bench" / "out" / "sbom-vs-trivy"
PHASES = ("ResolveFunction", "AnalyzeLayerFunction", "AssembleFunction", "MatchFunction", "EvaluateFunction")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", nargs="+", default=["image", "image-rpm"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    _ensure_images()
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "layers" / "portwarden")], check=True
    )

    # per image: per round, {function: [seconds per invocation]} and the command line's (wall, cpu)
    rounds: dict[str, list[dict[str, list[float]]]] = defaultdict(list)
    cli: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with (
        tempfile.TemporaryDirectory(prefix="lambda-phases-") as scratch,
        pytest.MonkeyPatch.context() as patch,
    ):
        work = Path(scratch)
        for name, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }.items():
            patch.setenv(name, value)
        with run_registry(work / "registry") as registry:
            digests = {}
            for image in args.images:
                layout = IMAGES_DIR / image
                push_layout(layout, registry, f"team/{image}", "1.0", source_tag=_source_tag(layout))
                index = json.loads((layout / "index.json").read_bytes())
                digests[image] = index["manifests"][0]["digest"]
            environment = registry_environment(
                registry.host,
                PORTWARDEN_WORK_DIR=str(work / "functions"),
                PORTWARDEN_ECR_REPOSITORY_PREFIXES="team/",
                LOG_LEVEL="ERROR",
                POWERTOOLS_METRICS_DISABLED="true",
                POWERTOOLS_TRACE_DISABLED="true",
            )
            for round_number in range(1, args.rounds + 1):
                for image in args.images:
                    durations: dict[str, list[float]] = defaultdict(list)
                    with moto_stack(patch, **environment) as stack:
                        timed_handlers(stack, durations)
                        started = stack.start_push(ecr_push_event(digests[image], repository=f"team/{image}"))
                        finished = stack.wait(started["execution_arn"], timeout=1800)
                    if finished["status"] != "SUCCEEDED":
                        print(f"{image}: execution {finished['status']}", file=sys.stderr)
                        return 1
                    rounds[image].append(dict(durations))
                    cli[image].append(
                        _cli_cold(IMAGES_DIR / image, work / f"cli-home-{image}-{round_number}")
                    )
                    layers = durations["AnalyzeLayerFunction"]
                    print(
                        f"round {round_number} {image}: AnalyzeLayer {len(layers)} x "
                        f"{', '.join(f'{1000 * s:.0f}' for s in layers)} ms, "
                        f"Assemble {1000 * sum(durations['AssembleFunction']):.0f} ms, "
                        f"cli cold {cli[image][-1][0]:.2f} s",
                        flush=True,
                    )
    report: dict[str, Any] = {"rounds": args.rounds, "load_average": os.getloadavg(), "images": {}}
    for image in args.images:
        per_function = {
            function: round(1000 * statistics.median(sum(r.get(function, [0.0])) for r in rounds[image]), 1)
            for function in PHASES
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
            "cli_cold_wall_ms": round(1000 * statistics.median(w for w, _ in cli[image]), 1),
            "cli_cold_cpu_ms": round(1000 * statistics.median(c for _, c in cli[image]), 1),
        }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
