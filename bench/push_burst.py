"""A push burst through the serverless stack under moto: N ECR push events -> N analyses, each once.

Usage: python bench/push_burst.py [--images 1000] [--redeliver 50] [--max-running 64] [--out FILE]

A local registry (Debian's docker-registry on 127.0.0.1) holds N small images sharing a base layer;
the template's ECR rule routes N push events (plus ``--redeliver`` messages delivered twice, and
one push outside the repository prefixes) to the push queue; a consumer feeds StartAnalysis in
batches of ten, keeping at most ``--max-running`` executions running (the consumer's concurrency);
the real analysis state machine runs every execution with our handlers in-process.

Printed (and written as JSON to ``--out``): executions started, succeeded and failed; how many
times each image was claimed (Resolve without ``skip``) and assembled; images left ``analyzing``;
dead letters; and per function the invocation count and the mean and p95 in-process duration, the
figures docs/deploy.md's cost estimate starts from.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portwarden.core.model.records import AnalysisStatus
from tests.support.aws import (
    MotoStack,
    PushQueue,
    ecr_push_event,
    fake_aws_environment,
    moto_stack,
    registry_environment,
)
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file
from tests.support.registry import push_image, run_registry


def timed_handlers(stack: MotoStack, durations: dict[str, list[float]]) -> None:
    lock = threading.Lock()
    for name, handler in list(stack.handlers.items()):

        def wrapped(event: dict[str, Any], context: Any, _handler: Any = handler, _name: str = name) -> Any:
            started = time.perf_counter()
            try:
                return _handler(event, context)
            finally:
                with lock:
                    durations[_name].append(time.perf_counter() - started)

        stack.handlers[name] = wrapped


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--redeliver", type=int, default=50)
    parser.add_argument("--max-running", type=int, default=64)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="push-burst-") as scratch, pytest.MonkeyPatch.context() as patch:
        work = Path(scratch)
        fake_aws_environment(patch)
        with run_registry(work / "registry") as registry:
            base = build_layer([file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\n")])
            started = time.perf_counter()
            images = []
            for n in range(args.images):
                image = build_image([base, build_layer([file("srv/build.txt", f"build {n}")])], ConfigSpec())
                push_image(image, registry, f"team/app{n}", "1.0")
                images.append(image)
            pushed = time.perf_counter() - started
            environment = registry_environment(
                registry.host,
                PORTWARDEN_WORK_DIR=str(work / "functions"),
                PORTWARDEN_ECR_REPOSITORY_PREFIXES="team/",
                LOG_LEVEL="ERROR",
                POWERTOOLS_METRICS_DISABLED="true",
                POWERTOOLS_TRACE_DISABLED="true",
            )
            with moto_stack(patch, **environment) as stack:
                durations: dict[str, list[float]] = defaultdict(list)
                timed_handlers(stack, durations)
                queue = PushQueue.create(stack)
                events = [
                    ecr_push_event(image.digest, repository=f"team/app{n}") for n, image in enumerate(images)
                ]
                events.append(ecr_push_event(images[0].digest, repository="scratch/app"))
                started = time.perf_counter()
                queue.publish(events)
                batches = queue.consume(redeliver=args.redeliver, max_running=args.max_running, timeout=7200)
                executions = stack.executions()
                finished = [stack.wait(e["executionArn"], timeout=1800) for e in executions]
                elapsed = time.perf_counter() - started
                statuses = Counter(e["status"] for e in finished)
                outputs = [json.loads(e.get("output") or "{}") for e in finished]
                claims = Counter(
                    out["resolved"]["image_digest"]
                    for out in outputs
                    if "resolved" in out and not out["resolved"]["skip"]
                )
                skipped = sum(1 for out in outputs if out.get("resolved", {}).get("skip"))
                assembled = Counter(call.event["image_digest"] for call in stack.calls("AssembleFunction"))
                analyzed = sum(
                    1
                    for image in images
                    if (record := stack.stores.catalog.get_image(image.digest)) is not None
                    and record.analysis_status is AnalysisStatus.ANALYZED
                )
                stuck = len(stack.stores.catalog.list_images_by_status(AnalysisStatus.ANALYZING))
                figures = {
                    "images": args.images,
                    "redelivered_messages": args.redeliver,
                    "push_seconds": round(pushed, 1),
                    "burst_seconds": round(elapsed, 1),
                    "consumer_batches": batches,
                    "executions": len(executions),
                    "execution_statuses": dict(statuses),
                    "images_claimed_once": sum(1 for image in images if claims[image.digest] == 1),
                    "resolves_that_skipped": skipped,
                    "images_assembled_once": sum(1 for image in images if assembled[image.digest] == 1),
                    "images_assembled_more_than_once": sum(
                        1 for image in images if assembled[image.digest] > 1
                    ),
                    "images_analyzed": analyzed,
                    "images_left_analyzing": stuck,
                    "dead_letters": len(queue.dead_letters()),
                    "functions": {
                        name: {
                            "invocations": len(values),
                            "mean_ms": round(1000 * statistics.fmean(values), 1),
                            "p95_ms": round(1000 * percentile(values, 0.95), 1),
                        }
                        for name, values in sorted(durations.items())
                    },
                }
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    ok = (
        figures["executions"] == args.images
        and figures["images_claimed_once"] == args.images
        and figures["images_assembled_once"] == args.images
        and figures["images_left_analyzing"] == 0
        and figures["dead_letters"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
