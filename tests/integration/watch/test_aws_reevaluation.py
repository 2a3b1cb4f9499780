"""Policy re-evaluation on AWS, under moto with the real ASL: an active-bundle change through the Api
function puts a "Policy Re-evaluation Requested" event on the default bus → the template's rule starts
the Rematch state machine in re-evaluation mode → Plan lists the account's tagged analyzed images →
RematchImage re-evaluates each from its stored analysis and matches (no registry read, no match) →
``policy_eval`` on the notification queue → Notify publishes to SNS with message attributes → an SQS
subscription with a filter policy receives it. The schedule (time-based triggers) takes the same path
for every account.

Images are analyzed by the real pipeline from a real local registry; feeds are OSV archives on disk.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from portwarden.core.model.records import AnalysisStatus
from portwarden.core.services import watch_workflow
from tests.conftest import FIXTURES_DIR
from tests.support.aws import (
    ECR_REGISTRY,
    REGION,
    MotoStack,
    RematchRule,
    consume_notifications,
    ecr_push_event,
    filtered_subscriber,
    load_event,
    moto_stack,
    osv_feed_zip,
    queued_notifications,
    received,
    registry_environment,
)
from tests.support.ocibuild import ConfigSpec, Image, build_image, build_layer, file
from tests.support.registry import RunningRegistry, push_image
from tests.support.stores import empty_bundle_document

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

GO_ADVISORY = FIXTURES_DIR / "feeds-sample/osv/golang-vulndb/data/osv/GO-2022-0969.json"
APP_TAG = f"{ECR_REGISTRY}/team/app:1.0"
BASE_TAG = f"{ECR_REGISTRY}/team/base:1.0"


def alpine_image(marker: str) -> Image:
    layer = build_layer(
        [
            file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\nPRETTY_NAME=Alpine Linux v3.20\n"),
            file("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nL:MIT\n\n"),
            file("etc/marker", marker),
        ]
    )
    return build_image([layer], ConfigSpec(cmd=("/bin/sh",)))


def bundle_with_rule(bundle_id: str, rule: dict[str, Any]) -> dict[str, Any]:
    document = empty_bundle_document(bundle_id)
    document["policies"][0]["rules"] = [{"id": "r", "action": "STOP", "params": [], **rule}]
    return document


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, anonymous_registry: RunningRegistry, tmp_path: Path
) -> Iterator[MotoStack]:
    feed = osv_feed_zip(tmp_path / "feed", GO_ADVISORY)
    environment = registry_environment(
        anonymous_registry.host,
        PORTWARDEN_FEED_SOURCES=f"osv={feed.as_uri()}",
        PORTWARDEN_WORK_DIR=str(tmp_path / "work"),
    )
    with moto_stack(monkeypatch, **environment) as running:
        sync = running.sync_feeds()
        assert sync["status"] == "SUCCEEDED", running.history(sync["executionArn"])[-3:]
        yield running


def analyze(stack: MotoStack, image: Image, repository: str) -> None:
    started = stack.start_push(ecr_push_event(image.digest, repository=repository, tag="1.0"))
    assert stack.wait(started["execution_arn"])["status"] == "SUCCEEDED"
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED


def subscribe(stack: MotoStack, kind: str, tag: str) -> None:
    created = stack.api("POST", "/subscriptions", {"subscription_type": kind, "subscription_key": tag})
    assert created["statusCode"] == 200, created


def attributes_of(message: dict[str, Any]) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}


def latest_action(stack: MotoStack, digest: str, tag: str) -> str:
    record = stack.stores.evaluations.latest_evaluation(digest, tag)
    assert record is not None
    return str(record.final_action.value if hasattr(record.final_action, "value") else record.final_action)


def run_scheduled(stack: MotoStack) -> dict[str, Any]:
    """The re-evaluation schedule's event as the execution's input (the template's Schedule event)."""
    started = stack.sfn.start_execution(
        stateMachineArn=stack.rematch_arn,
        name=f"schedule-{uuid.uuid4().hex}",
        input=json.dumps(load_event("schedule/policy-reevaluation.json")),
    )
    execution = stack.wait(started["executionArn"])
    assert execution["status"] == "SUCCEEDED", (execution.get("error"), execution.get("cause"))
    execution["parsed_output"] = json.loads(execution["output"])
    return execution


def test_activating_a_bundle_that_stops_the_image_sends_policy_eval_pass_to_fail_through_sns(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    rule = RematchRule.create(stack, "ReevaluationRequested")
    app, base = alpine_image("app"), alpine_image("base")
    push_image(app, anonymous_registry, "team/app", "1.0")
    push_image(base, anonymous_registry, "team/base", "1.0")
    # A rule-free bundle, the first one (so active): both images pass.
    assert stack.api("POST", "/policies", empty_bundle_document("lenient"))["statusCode"] == 200
    (first,) = rule.delivered()  # its activation asked for a re-evaluation too (nothing analyzed yet)
    assert first["detail"] == {"account": "admin", "reason": "bundle_activated", "bundle_id": "lenient"}
    analyze(stack, app, "team/app")
    analyze(stack, base, "team/base")
    assert latest_action(stack, app.digest, APP_TAG) == "go"
    subscribe(stack, "policy_eval", APP_TAG)  # the base image's tag has no policy_eval subscription
    policy_failures = filtered_subscriber(
        stack, "policy-failures", {"notification_type": ["policy_eval"], "policy_status": ["fail"]}
    )
    vuln_updates = filtered_subscriber(stack, "vuln-updates", {"notification_type": ["vuln_update"]})

    # A strict bundle is added (not active: nothing is asked), then activated: the Api answers at once
    # and the bus carries the request; nothing was re-evaluated in the request itself.
    strict = bundle_with_rule("strict", {"gate": "always", "trigger": "always"})
    assert stack.api("POST", "/policies", strict)["statusCode"] == 200
    assert rule.delivered() == []
    activated = stack.api("PUT", "/policies/strict", {"policybundle": strict, "active": True})
    assert activated["statusCode"] == 200, activated
    assert latest_action(stack, app.digest, APP_TAG) == "go"
    registry_reads = len(stack.calls("ResolveFunction")) + len(stack.calls("AnalyzeLayerFunction"))
    matches = len(stack.calls("MatchFunction"))

    (execution,) = rule.run_rematches()
    assert execution["status"] == "SUCCEEDED", (execution.get("error"), execution.get("cause"))
    output = json.loads(execution["output"])
    plan = output["plan"]
    assert plan["mode"] == "reevaluate" and plan["count"] == 2 and plan["db_sha256"] is None
    listed = boto3.client("s3", region_name=REGION).get_object(Bucket=plan["bucket"], Key=plan["items_key"])
    assert sorted(json.loads(listed["Body"].read()), key=lambda item: item["image_digest"]) == sorted(
        [
            {"account": "admin", "image_digest": digest, "mode": "reevaluate"}
            for digest in (app.digest, base.digest)
        ],
        key=lambda item: item["image_digest"],
    )
    # From stored analyses and matches only: no registry read, no Match phase, no rematch recorded.
    assert len(stack.calls("ResolveFunction")) + len(stack.calls("AnalyzeLayerFunction")) == registry_reads
    assert len(stack.calls("MatchFunction")) == matches
    assert latest_action(stack, app.digest, APP_TAG) == "stop"
    assert latest_action(stack, base.digest, BASE_TAG) == "stop"

    # One policy_eval (the subscribed tag only), through the queue and Notify to the filtered subscriber.
    assert consume_notifications(stack) >= 1
    (message,) = received(policy_failures)
    attributes = attributes_of(message)
    assert attributes["notification_type"] == "policy_eval" and attributes["policy_status"] == "fail"
    assert attributes["subscription_key"] == APP_TAG and attributes["account"] == "admin"
    envelope = json.loads(message["Body"])
    assert envelope["queueId"] == "policy_eval" and envelope["userId"] == "admin"
    payload = envelope["data"]["notification_payload"]
    assert payload["last_eval"]["status"] == "pass" and payload["curr_eval"]["status"] == "fail"
    assert payload["curr_eval"]["image_digest"] == app.digest
    assert received(vuln_updates) == []

    # The notification is an event, listed by GET /events.
    listed_events = stack.api("GET", "/events", query={"resource_id": APP_TAG})
    types = {row["event"]["type"]: row["event"] for row in listed_events["json"]["results"]}
    assert (
        types["user.checks.tag.policy_evaluation.update"]["details"]["notification_id"]
        == (envelope["dataId"])
    )

    # The same request delivered again (EventBridge delivers at least once): nothing changed since, so
    # nothing is stored or told again.
    again = stack.sfn.start_execution(
        stateMachineArn=stack.rematch_arn, name="again", input=json.dumps(first)
    )
    assert stack.wait(again["executionArn"])["status"] == "SUCCEEDED"
    assert queued_notifications(stack) == []


def test_the_schedule_re_evaluates_every_account_for_time_based_triggers(
    stack: MotoStack, anonymous_registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = alpine_image("app")
    push_image(app, anonymous_registry, "team/app", "1.0")
    # Stop when the vulnerability data is more than a day old: fresh now, stale in three days.
    stale = bundle_with_rule(
        "freshness",
        {
            "gate": "vulnerabilities",
            "trigger": "stale_feed_data",
            "params": [{"name": "max_days_since_sync", "value": "1"}],
        },
    )
    assert stack.api("POST", "/policies", stale)["statusCode"] == 200
    analyze(stack, app, "team/app")
    assert latest_action(stack, app.digest, APP_TAG) == "go"
    subscribe(stack, "policy_eval", APP_TAG)
    policy_failures = filtered_subscriber(
        stack, "stale-failures", {"notification_type": ["policy_eval"], "policy_status": ["fail"]}
    )

    # Today: re-evaluated, nothing changed, nobody told.
    today = run_scheduled(stack)
    assert today["parsed_output"]["plan"]["mode"] == "reevaluate"
    assert today["parsed_output"]["plan"]["count"] == 1
    assert queued_notifications(stack) == []
    assert latest_action(stack, app.digest, APP_TAG) == "go"

    # Three days on, the same database: the schedule's run turns the result to stop and tells.
    later = datetime.now(UTC) + timedelta(days=3)
    monkeypatch.setattr(watch_workflow, "_now", lambda: later)
    run_scheduled(stack)
    assert latest_action(stack, app.digest, APP_TAG) == "stop"
    assert consume_notifications(stack) >= 1
    (message,) = received(policy_failures)
    assert attributes_of(message)["subscription_key"] == APP_TAG
    payload = json.loads(message["Body"])["data"]["notification_payload"]
    assert (payload["last_eval"]["status"], payload["curr_eval"]["status"]) == ("pass", "fail")
    # A re-evaluation records no database as re-matched: the next feed change is still compared with
    # the database the last rematch ran against.
    from portwarden.runtime import wiring

    assert wiring.namespace_index().get_state("rematch/database") is None
