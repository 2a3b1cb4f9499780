"""Rematch on AWS, under moto with the real ASL: FeedSync publishes a database whose data changed → its
"Vulnerability Database Published" event (the template's rule) starts the Rematch state machine → Plan
lists the affected images in S3 → the Distributed Map re-matches each from its stored analysis →
``vuln_update`` on the notification queue → the Notify function publishes to SNS with message
attributes → an SQS subscription with a filter policy receives exactly that notification.

Images are analyzed by the real pipeline from a real local registry; feeds are OSV archives on disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from portwarden.core.model.records import AnalysisStatus
from tests.conftest import FIXTURES_DIR
from tests.support.aws import (
    ECR_REGISTRY,
    MINIMIST_ADVISORY,
    REGION,
    MotoStack,
    RematchRule,
    consume_notifications,
    ecr_push_event,
    filtered_subscriber,
    moto_stack,
    osv_feed_zip,
    queued_notifications,
    received,
    registry_environment,
)
from tests.support.ocibuild import ConfigSpec, Image, build_image, build_layer, file
from tests.support.registry import RunningRegistry, push_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

GO_ADVISORY = FIXTURES_DIR / "feeds-sample/osv/golang-vulndb/data/osv/GO-2022-0969.json"
APP_TAG = f"{ECR_REGISTRY}/team/app:1.0"
BASE_TAG = f"{ECR_REGISTRY}/team/base:1.0"


def alpine_layer() -> Any:
    return build_layer(
        [
            file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\nPRETTY_NAME=Alpine Linux v3.20\n"),
            file("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nL:MIT\n\n"),
        ]
    )


def app_image() -> Image:
    """Alpine's musl and npm minimist 1.2.5 (GHSA-xvch-5gv4-984h once the feed has it)."""
    app = build_layer(
        [file("app/node_modules/minimist/package.json", json.dumps({"name": "minimist", "version": "1.2.5"}))]
    )
    return build_image([alpine_layer(), app], ConfigSpec(cmd=("node", "/app/index.js")))


def base_image() -> Image:
    """Alpine's musl alone: nothing in the npm namespace."""
    return build_image([alpine_layer()], ConfigSpec(cmd=("/bin/sh",)))


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    return osv_feed_zip(tmp_path / "feed", GO_ADVISORY)


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, anonymous_registry: RunningRegistry, feed: Path, tmp_path: Path
) -> Iterator[MotoStack]:
    environment = registry_environment(
        anonymous_registry.host,
        PORTWARDEN_FEED_SOURCES=f"osv={feed.as_uri()}",
        PORTWARDEN_WORK_DIR=str(tmp_path / "work"),
    )
    with moto_stack(monkeypatch, **environment) as running:
        yield running


def sync_and_rematch(stack: MotoStack, rule: RematchRule) -> dict[str, Any]:
    """A feed sync that publishes, and the one rematch its event starts; the rematch execution."""
    sync = stack.sync_feeds()
    assert sync["status"] == "SUCCEEDED", stack.history(sync["executionArn"])[-3:]
    assert sync["parsed_output"]["published"]["published"] is True
    (rematch,) = rule.run_rematches()
    assert rematch["status"] == "SUCCEEDED", (rematch.get("error"), rematch.get("cause"))
    rematch["parsed_output"] = json.loads(rematch["output"])
    return rematch


def analyze(stack: MotoStack, image: Image, repository: str) -> None:
    started = stack.start_push(ecr_push_event(image.digest, repository=repository, tag="1.0"))
    assert stack.wait(started["execution_arn"])["status"] == "SUCCEEDED"
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED


def test_feed_change_rematches_only_affected_images_and_vuln_update_reaches_a_filtered_sns_subscriber(
    stack: MotoStack, anonymous_registry: RunningRegistry, feed: Path
) -> None:
    rule = RematchRule.create(stack)
    app, base = app_image(), base_image()
    push_image(app, anonymous_registry, "team/app", "1.0")
    push_image(base, anonymous_registry, "team/base", "1.0")

    # A first database (a Go advisory only): the rematch it starts has no analyzed image yet.
    first = sync_and_rematch(stack, rule)
    assert first["parsed_output"]["plan"]["count"] == 0
    analyze(stack, app, "team/app")
    analyze(stack, base, "team/base")
    for tag in (APP_TAG, BASE_TAG):
        for kind in ("vuln_update", "policy_eval"):
            created = stack.api(
                "POST", "/subscriptions", {"subscription_type": kind, "subscription_key": tag}
            )
            assert created["statusCode"] == 200, created
    vuln_updates = filtered_subscriber(
        stack,
        "vuln-updates-of-team-app",
        {
            "notification_type": ["vuln_update"],
            "severity_max": ["Critical"],
            "subscription_key": [{"prefix": f"{ECR_REGISTRY}/team/app:"}],
        },
    )
    policy_failures = filtered_subscriber(
        stack, "policy-failures", {"notification_type": ["policy_eval"], "policy_status": ["fail"]}
    )

    # The same data again, one advisory more in the Go namespace: neither image has Go packages, but
    # neither is indexed yet, so both are re-matched (and indexed); nothing changes, nobody is told.
    osv_feed_zip(
        feed.parent, GO_ADVISORY, FIXTURES_DIR / "feeds-sample/osv/golang-vulndb/data/osv/GO-2023-1571.json"
    )
    second = sync_and_rematch(stack, rule)
    assert second["parsed_output"]["plan"]["namespaces"] == ["go"]
    assert sorted(call.event["image_digest"] for call in stack.calls("RematchImageFunction")) == sorted(
        [app.digest, base.digest]
    )
    assert queued_notifications(stack) == []

    # minimist's advisory arrives: only the image with npm packages is re-matched, from its stored
    # analysis (no registry read), and its subscribed tag gets vuln_update, then policy_eval (pass → fail).
    osv_feed_zip(
        feed.parent,
        GO_ADVISORY,
        FIXTURES_DIR / "feeds-sample/osv/golang-vulndb/data/osv/GO-2023-1571.json",
        MINIMIST_ADVISORY,
    )
    registry_reads = len(stack.calls("ResolveFunction")) + len(stack.calls("AnalyzeLayerFunction"))
    before = len(stack.calls("RematchImageFunction"))
    third = sync_and_rematch(stack, rule)
    plan = third["parsed_output"]["plan"]
    assert plan["namespaces"] == ["npm"] and plan["count"] == 1 and plan["considered"] == 2
    assert [call.event for call in stack.calls("RematchImageFunction")[before:]] == [
        {"account": "admin", "image_digest": app.digest}
    ]
    assert len(stack.calls("ResolveFunction")) + len(stack.calls("AnalyzeLayerFunction")) == registry_reads
    # The item list is in the bucket, where the Distributed Map's ItemReader read it.
    listed = boto3.client("s3", region_name=REGION).get_object(Bucket=plan["bucket"], Key=plan["items_key"])
    assert json.loads(listed["Body"].read()) == [{"account": "admin", "image_digest": app.digest}]

    assert consume_notifications(stack) >= 1
    (message,) = received(vuln_updates)
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["notification_type"] == "vuln_update"
    assert attributes["subscription_key"] == APP_TAG and attributes["account"] == "admin"
    assert attributes["severity_max"] == "Critical"
    envelope = json.loads(message["Body"])
    payload = envelope["data"]["notification_payload"]
    assert payload["imageDigest"] == app.digest
    diff = payload["diff_vulnerability_result"]
    assert [(row["CVE_ID"], row["Package_Name"]) for row in diff["added"]] == [
        ("GHSA-xvch-5gv4-984h", "minimist")
    ]
    assert diff["removed"] == [] and diff["updated"] == []
    (failure,) = received(policy_failures)
    assert json.loads(failure["Body"])["data"]["notification_payload"]["curr_eval"]["status"] == "fail"
    assert {name: value["StringValue"] for name, value in failure["MessageAttributes"].items()}[
        "subscription_key"
    ] == APP_TAG

    # Each notification is an event too, listed by GET /events.
    listed_events = stack.api("GET", "/events", query={"resource_id": APP_TAG})
    assert listed_events["statusCode"] == 200, listed_events
    by_type = {row["event"]["type"]: row["event"] for row in listed_events["json"]["results"]}
    assert {"user.checks.tag.vulnerabilities.update", "user.checks.tag.policy_evaluation.update"} <= set(
        by_type
    )
    vulnerabilities = by_type["user.checks.tag.vulnerabilities.update"]
    assert vulnerabilities["resource"] == {"user_id": "admin", "id": APP_TAG, "type": "image_tag"}
    assert vulnerabilities["details"]["notification_id"] == envelope["dataId"]

    # The database was recorded as re-matched: a rematch started again for it re-matches nothing.
    again = stack.sfn.start_execution(stateMachineArn=stack.rematch_arn, name="by-hand", input="{}")
    by_hand = stack.wait(again["executionArn"])
    assert by_hand["status"] == "SUCCEEDED"
    assert json.loads(by_hand["output"])["plan"]["count"] == 0
