"""The Notify function under moto: SQS messages of notifications -> SNS with message attributes (an
SQS subscriber with a filter policy receives only what it asked for) and a real webhook receiver on
127.0.0.1; a receiver that is down makes the message go back to the queue, and the redelivery is
delivered once; a message that is no notification is never acknowledged."""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from portwarden.adapters.aws.outbox import DynamoOutbox, table_definition
from portwarden.adapters.aws.stores import AwsStores, AwsStoreSettings, create_tables
from portwarden.core.watch.notifications import (
    DeliveryOutcome,
    Notification,
    NotificationType,
    make_notification,
)
from portwarden.runtime import wiring
from tests.conftest import REPO_ROOT
from tests.support.aws import FakeLambdaContext
from tests.support.registry import free_port
from tests.support.webhook_receiver import WebhookReceiver

TABLE = "portwarden-notifications"


def load_notify() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lambda_NotifyFunction", REPO_ROOT / "functions" / "notify" / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": str(uuid.uuid4()), "body": body, "eventSource": "aws:sqs", "receiptHandle": "x"}
            for body in bodies
        ]
    }


def policy_failure(key: str) -> Notification:
    return make_notification(
        NotificationType.POLICY_EVAL,
        account="admin",
        subscription_key=key,
        payload={"last_eval": {"status": "pass"}, "curr_eval": {"status": "fail", "final_action": "stop"}},
        identity={"key": key},
        now=datetime.now(UTC),
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        dynamodb = session.client("dynamodb")
        dynamodb.create_table(**table_definition(TABLE))
        stores = AwsStores(AwsStoreSettings.with_table_prefix("pw", "pw-bucket", region="us-east-1"))
        create_tables(stores)
        for variable, value in {
            "PORTWARDEN_TABLE_NAME": "pw-images",
            "PORTWARDEN_TAGS_TABLE": "pw-tags",
            "PORTWARDEN_EVALUATIONS_TABLE": "pw-evaluations",
            "PORTWARDEN_POLICIES_TABLE": "pw-policies",
            "PORTWARDEN_EVENTS_TABLE": "pw-events",
            "PORTWARDEN_FEEDS_TABLE": "pw-feeds",
            "PORTWARDEN_BUCKET_NAME": "pw-bucket",
            "PORTWARDEN_NOTIFICATIONS_TABLE": TABLE,
            "AWS_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(variable, value)
        sns = session.client("sns")
        sqs = session.client("sqs")
        topic = sns.create_topic(Name="portwarden-notifications")["TopicArn"]
        queue = sqs.create_queue(QueueName="app-policy-failures")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={
                "FilterPolicy": json.dumps(
                    {
                        "notification_type": ["policy_eval"],
                        "policy_status": ["fail"],
                        "subscription_key": [{"prefix": "registry.example/team/app:"}],
                    }
                ),
                "RawMessageDelivery": "true",
            },
        )
        monkeypatch.setenv("PORTWARDEN_NOTIFICATIONS_TOPIC_ARN", topic)
        wiring.reset()
        yield {"sqs": sqs, "queue": queue, "stores": stores}
        wiring.reset()


def test_sns_attributes_reach_a_filtered_subscriber_and_webhooks_are_retried_through_the_queue(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("PORTWARDEN_WEBHOOKS", json.dumps({"general": {"url": f"http://127.0.0.1:{port}/in"}}))
    monkeypatch.setenv("PORTWARDEN_NOTIFICATION_RETRY_TIMEOUT", "600")
    wiring.reset()
    handler = load_notify().handler
    wanted, other = policy_failure("registry.example/team/app:1"), policy_failure("registry.example/other:1")
    event = sqs_event(wanted.model_dump_json(), other.model_dump_json(), "not a notification")
    ids = [record["messageId"] for record in event["Records"]]

    # The webhook receiver is down: SNS went out, the webhooks did not; both messages go back to the
    # queue (and the malformed one is never acknowledged).
    first = handler(event, FakeLambdaContext("NotifyFunction"))
    assert {failure["itemIdentifier"] for failure in first["batchItemFailures"]} == set(ids)
    received = aws["sqs"].receive_message(
        QueueUrl=aws["queue"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    (message,) = received["Messages"]
    assert json.loads(message["Body"])["dataId"] == wanted.notification_id
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["notification_type"] == "policy_eval" and attributes["policy_status"] == "fail"

    # Redelivered once the receiver is back (and the backoff has passed): delivered, and SNS is not
    # published a second time.
    outbox = DynamoOutbox(TABLE, region="us-east-1")
    receiver = WebhookReceiver(port=port).start()
    try:
        time.sleep(2.1)  # the first retry is due 2 s after the failed attempt
        second = handler(
            sqs_event(wanted.model_dump_json(), other.model_dump_json()), FakeLambdaContext("NotifyFunction")
        )
        assert second["batchItemFailures"] == []
        assert sorted(post.json()["dataId"] for post in receiver.received) == sorted(
            [wanted.notification_id, other.notification_id]
        )
        again = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)
        assert again.get("Messages", []) == []
        log = outbox.attempts(notification_id=wanted.notification_id)
        outcomes = sorted((attempt.target.split(":", 1)[0], attempt.outcome.value) for attempt in log)
        assert outcomes == [("sns", "delivered"), ("webhook", "delivered"), ("webhook", "retrying")]
        assert outbox.undelivered(wanted.notification_id) == 0
        events = aws["stores"].events.list_events(limit=10)
        assert {event.type for event in events} == {"user.checks.tag.policy_evaluation.update"}
    finally:
        receiver.stop()


def test_past_the_window_the_failure_is_an_error_event_and_the_message_is_acknowledged(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("PORTWARDEN_WEBHOOKS", json.dumps({"general": {"url": f"http://127.0.0.1:{port}/in"}}))
    monkeypatch.setenv("PORTWARDEN_NOTIFICATION_RETRY_TIMEOUT", "0")
    wiring.reset()
    handler = load_notify().handler
    notification = policy_failure("registry.example/team/app:2")
    result = handler(sqs_event(notification.model_dump_json()), FakeLambdaContext("NotifyFunction"))
    assert result["batchItemFailures"] == []
    log = DynamoOutbox(TABLE, region="us-east-1").attempts(notification_id=notification.notification_id)
    webhook = [attempt for attempt in log if attempt.target.startswith("webhook:")]
    assert [attempt.outcome for attempt in webhook] == [DeliveryOutcome.FAILED]
    failures = [event for event in aws["stores"].events.list_events(limit=10) if event.level == "ERROR"]
    assert [event.type for event in failures] == ["system.notifications.delivery_failed"]
