"""The Watch and AnalysisUpdates functions under moto, against the real local registry (images pushed
as skopeo would, over the registry API), with the real analysis state machine.

A watched tag pushed to a new digest → the Watch round adds it and starts its analysis, ``tag_update``
(old and new digests) is on the notification queue; the analysis execution's end → AnalysisUpdates
queues ``analysis_update`` for the new digest. A watched repository gets a new tag → it is added and
analyzed. A message the Notify function cannot take ends in the dead-letter queue after the template's
number of deliveries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.model.records import AnalysisStatus
from tests.support.aws import (
    ECR_REGISTRY,
    MotoStack,
    consume_notifications,
    dead_lettered_notifications,
    execution_status_event,
    load_event,
    load_template,
    moto_stack,
    queued_notifications,
    registry_environment,
)
from tests.support.ocibuild import ConfigSpec, Image, build_image, build_layer, file
from tests.support.registry import RunningRegistry, push_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

APP_TAG = f"{ECR_REGISTRY}/team/app:1.0"
REPOSITORY = f"{ECR_REGISTRY}/team/app"


def release(version: str) -> Image:
    layer = build_layer(
        [
            file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\nPRETTY_NAME=Alpine Linux v3.20\n"),
            file("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nL:MIT\n\n"),
            file("app/VERSION", version),
        ]
    )
    return build_image([layer], ConfigSpec(cmd=("/app/run",)))


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, anonymous_registry: RunningRegistry, tmp_path: Path
) -> Iterator[MotoStack]:
    environment = registry_environment(anonymous_registry.host, PORTWARDEN_WORK_DIR=str(tmp_path / "work"))
    with moto_stack(monkeypatch, **environment) as running:
        yield running


def execution_of(stack: MotoStack, digest: str) -> str:
    (arn,) = [
        execution["executionArn"]
        for execution in stack.executions()
        if digest
        in json.loads(stack.sfn.describe_execution(executionArn=execution["executionArn"])["input"])["source"]
    ]
    return arn


def analysis_updates(stack: MotoStack, event: dict[str, Any]) -> list[dict[str, Any]]:
    result = stack.invoke("AnalysisUpdatesFunction", event)
    notifications = queued_notifications(stack)
    assert result["notifications"] == len(notifications)
    return notifications


def test_a_watched_tag_moved_to_a_new_digest_is_added_analyzed_and_notified(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    first, second = release("1"), release("2")
    push_image(first, anonymous_registry, "team/app", "1.0")
    # On AWS the API starts the analysis without resolving the tag (and creates no subscriptions):
    # the subscriptions are added as a client adds them.
    added = stack.invoke("ApiFunction", load_event("api/images/post-images.json"))
    assert added["statusCode"] == 202, added["body"]
    assert stack.wait(json.loads(added["body"])["execution_arn"])["status"] == "SUCCEEDED"
    for kind in ("tag_update", "analysis_update"):
        body = {"subscription_type": kind, "subscription_key": APP_TAG}
        created = stack.api("POST", "/subscriptions", body)
        assert created["statusCode"] == 200, created
    # The first report only takes its baseline; an unchanged round tells nothing.
    schedule = load_event("schedule/watch.json")
    assert analysis_updates(stack, schedule) == []
    assert stack.invoke("WatchFunction", schedule)["changed"] == 0
    assert queued_notifications(stack) == []

    push_image(second, anonymous_registry, "team/app", "1.0")
    outcome = stack.invoke("WatchFunction", schedule)

    assert (outcome["checked"], outcome["changed"], outcome["added"]) == (1, 1, 1)
    (tag_update,) = queued_notifications(stack)
    assert (tag_update["notification_type"], tag_update["subscription_key"]) == ("tag_update", APP_TAG)
    assert tag_update["payload"] == {"last_eval": [first.digest], "curr_eval": [second.digest]}
    tag = stack.stores.catalog.get_tag(APP_TAG)
    assert tag is not None and tag.image_digest == second.digest
    # The new digest is analyzed through the analysis state machine; the old image stays as history.
    arn = execution_of(stack, second.digest)
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    record = stack.stores.catalog.get_image(second.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
    assert stack.stores.catalog.get_image(first.digest) is not None

    # The execution's end (the template's rule) reports the new digest's analysis.
    (update,) = analysis_updates(stack, execution_status_event(stack, arn))
    assert (update["notification_type"], update["subscription_key"]) == ("analysis_update", APP_TAG)
    assert update["payload"]["curr_eval"]["imageDigest"] == second.digest
    assert (
        update["payload"]["last_eval"]["analysis_status"],
        update["payload"]["curr_eval"]["analysis_status"],
    ) == ("not_analyzed", "analyzed")
    # Reported once: the schedule that follows has nothing new.
    assert analysis_updates(stack, schedule) == []


def test_a_watched_repository_gets_a_new_tag_added_and_analyzed(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    push_image(release("1"), anonymous_registry, "team/app", "1.0")
    watch = {"autosubscribe": True, "lookuptag": "1.0", "repotags": ["1.0"]}
    created = stack.api(
        "POST",
        "/subscriptions",
        {
            "subscription_type": "repo_update",
            "subscription_key": REPOSITORY,
            "subscription_value": json.dumps(watch),
        },
    )
    assert created["statusCode"] == 200, created
    newer = release("2")
    push_image(newer, anonymous_registry, "team/app", "2.0")

    outcome = stack.invoke("WatchFunction", load_event("schedule/watch.json"))

    assert outcome["added"] == 1 and outcome["errors"] == []
    assert stack.wait(execution_of(stack, newer.digest))["status"] == "SUCCEEDED"
    record = stack.stores.catalog.get_image(newer.digest)
    assert record is not None and f"{REPOSITORY}:2.0" in record.repo_tags
    (subscription,) = [
        row
        for row in stack.api("GET", "/subscriptions", query={"subscription_type": "repo_update"})["json"]
        if row["subscription_key"] == REPOSITORY
    ]
    assert sorted(json.loads(subscription["subscription_value"])["repotags"]) == ["1.0", "2.0"]
    # autosubscribe: the new tag's tag_update is active.
    rows = stack.api("GET", "/subscriptions", query={"subscription_key": f"{REPOSITORY}:2.0"})["json"]
    assert {row["subscription_type"] for row in rows if row["active"]} >= {"tag_update"}


def test_a_message_notify_cannot_take_ends_in_the_dead_letter_queue(stack: MotoStack) -> None:
    import boto3  # type: ignore[import-untyped]

    redrive = load_template()["Resources"]["NotificationQueue"]["Properties"]["RedrivePolicy"]
    boto3.client("sqs", region_name="us-east-1").send_message(
        QueueUrl=stack.notification_queue_url, MessageBody='{"not": "a notification"}'
    )

    batches = consume_notifications(stack)

    # Handed back on every delivery, until the redrive policy moved it: never acknowledged, never lost.
    assert batches == redrive["maxReceiveCount"]
    assert dead_lettered_notifications(stack) == ['{"not": "a notification"}']
    assert all(call.error_type is None for call in stack.calls("NotifyFunction"))
