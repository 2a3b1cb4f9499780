"""ECR pushes through the queue: a burst is buffered and each image claimed once; failures retried.

The template's ECR rule routes events to a moto SQS queue with the template's redrive policy; a
consumer feeds StartAnalysis the way Lambda's event source does (batches of ten, partial batch
responses). The real analysis state machine runs every execution against a local registry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portwarden.adapters.aws.sfn import StepFunctionsStarter
from portwarden.core.errors import StoreError
from portwarden.core.model.records import AnalysisStatus
from portwarden.core.services.pipeline import AnalysisRequest
from tests.support.aws import (
    ECR_REGISTRY,
    MotoStack,
    PushQueue,
    ecr_push_event,
    moto_stack,
    registry_environment,
)
from tests.support.ocibuild import ConfigSpec, Image, build_image, build_layer, file
from tests.support.registry import RunningRegistry, push_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

BASE = build_layer([file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\n")])


def image(n: int) -> Image:
    return build_image(
        [BASE, build_layer([file("srv/build.txt", f"build {n}")])], ConfigSpec(cmd=("/bin/sh",))
    )


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, anonymous_registry: RunningRegistry, tmp_path: Path
) -> Iterator[MotoStack]:
    environment = registry_environment(
        anonymous_registry.host,
        PORTWARDEN_WORK_DIR=str(tmp_path / "work"),
        PORTWARDEN_ECR_REPOSITORY_PREFIXES="team/,prod/",
    )
    with moto_stack(monkeypatch, **environment) as running:
        yield running


def test_a_push_burst_is_buffered_and_every_image_is_claimed_once(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    images = [image(n) for n in range(30)]
    for n, built in enumerate(images):
        push_image(built, anonymous_registry, f"team/app{n}", "1.0")
    events = [ecr_push_event(built.digest, repository=f"team/app{n}") for n, built in enumerate(images)]
    outside = [ecr_push_event(images[0].digest, repository="scratch/app")]  # not under team/ or prod/
    queue = PushQueue.create(stack)

    queue.publish(events + outside)
    queue.consume(redeliver=5)  # at-least-once delivery: five messages come a second time
    for execution in stack.executions():
        assert stack.wait(execution["executionArn"])["status"] == "SUCCEEDED"

    assert len(stack.executions()) == len(images)  # one per push; redeliveries and scratch/ start none
    assembled = Counter(call.event["image_digest"] for call in stack.calls("AssembleFunction"))
    assert assembled == Counter({built.digest: 1 for built in images})
    statuses = Counter(stack.stores.catalog.get_image(b.digest).analysis_status for b in images)  # type: ignore[union-attr]
    assert statuses == Counter({AnalysisStatus.ANALYZED: len(images)})
    assert stack.stores.catalog.list_images_by_status(AnalysisStatus.ANALYZING) == []
    assert queue.dead_letters() == []


def test_a_start_that_fails_is_delivered_again_and_a_hopeless_message_lands_in_the_dead_letter_queue(
    stack: MotoStack, anonymous_registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky, fine = image(1), image(2)
    push_image(flaky, anonymous_registry, "team/flaky", "1.0")
    push_image(fine, anonymous_registry, "team/fine", "1.0")
    original = StepFunctionsStarter.start
    attempts: Counter[str] = Counter()

    def throttled_once(
        self: StepFunctionsStarter, request: AnalysisRequest, *, name: str | None = None
    ) -> Any:
        attempts[request.source] += 1
        if "team/flaky" in request.source and attempts[request.source] == 1:
            raise StoreError("cannot start an analysis (ThrottlingException)")
        return original(self, request, name=name)

    monkeypatch.setattr(StepFunctionsStarter, "start", throttled_once)
    queue = PushQueue.create(stack)
    broken = ecr_push_event(fine.digest, repository="team/fine")
    broken["detail"]["image-digest"] = "sha256:not-a-digest"

    queue.publish(
        [
            ecr_push_event(flaky.digest, repository="team/flaky"),
            ecr_push_event(fine.digest, repository="team/fine"),
            broken,
        ]
    )
    queue.consume()

    # The throttled start went back to the queue and succeeded on its second delivery.
    assert sorted(attempts.values()) == [1, 2]
    for execution in stack.executions():
        assert stack.wait(execution["executionArn"])["status"] == "SUCCEEDED"
    assert {e["name"].split("-")[0][:16] for e in stack.executions()} == {
        flaky.digest.removeprefix("sha256:")[:16],
        fine.digest.removeprefix("sha256:")[:16],
    }
    # The malformed message was refused on every delivery and now waits in the dead-letter queue.
    (dead,) = queue.dead_letters()
    assert dead["detail"]["image-digest"] == "sha256:not-a-digest"
    record = stack.stores.catalog.get_image(flaky.digest)
    assert record is not None and record.repo_tags == (f"{ECR_REGISTRY}/team/flaky:1.0",)
