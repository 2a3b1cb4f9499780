"""``POST /system/webhooks/{type}/test`` and the delivery log on AWS, under moto: the Api function sends
a synthetic notification the way every notification goes (the outbox, the SNS topic with its message
attributes, the configured webhooks), answers with the attempts, and reads the delivery log from the
outbox table; a webhook receiver that is down gets the notification later through the notification
queue and the Notify function, once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.aws import (
    MotoStack,
    consume_notifications,
    filtered_subscriber,
    moto_stack,
    received,
)
from tests.support.registry import free_port
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver(free_port()).start()
    yield running
    running.stop()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, receiver: WebhookReceiver) -> Iterator[MotoStack]:
    webhooks = {"general": {"url": f"{receiver.url}/hook/<userId>/<notification_type>"}}
    with moto_stack(
        monkeypatch, PORTWARDEN_WORK_DIR=str(tmp_path / "work"), PORTWARDEN_WEBHOOKS=json.dumps(webhooks)
    ) as running:
        yield running


def test_a_test_send_goes_to_sns_with_attributes_and_to_the_webhook_and_is_in_the_delivery_log(
    stack: MotoStack, receiver: WebhookReceiver
) -> None:
    subscriber = filtered_subscriber(
        stack, "test-sends", {"notification_type": ["policy_eval"], "policy_status": ["fail"]}
    )
    answer = stack.api("POST", "/v1/system/webhooks/policy_eval/test")
    assert answer["statusCode"] == 200, answer
    attempts = answer["json"]
    assert {attempt["target"].split(":", 1)[0] for attempt in attempts} == {"sns", "webhook"}
    assert [attempt["outcome"] for attempt in attempts] == ["delivered", "delivered"]
    (notification_id,) = {attempt["notification_id"] for attempt in attempts}

    # The webhook, in Anchore's envelope, at the URL template's path.
    (posted,) = receiver.received
    assert posted.path == "/hook/admin/policy_eval"
    envelope = posted.json()
    assert envelope["dataId"] == notification_id and envelope["queueId"] == "policy_eval"
    payload = envelope["data"]["notification_payload"]
    assert payload["test"] is True and payload["curr_eval"]["status"] == "fail"
    # SNS, with the attributes a filter policy selects on.
    (message,) = received(subscriber)
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["notification_type"] == "policy_eval" and attributes["policy_status"] == "fail"
    assert attributes["notification_id"] == notification_id and attributes["account"] == "admin"
    # Recorded as an event like any notification.
    events = stack.api("GET", "/v1/events", query={"event_type": "user.checks.tag.policy_evaluation"})
    assert [row["event"]["details"]["notification_id"] for row in events["json"]["results"]] == [
        notification_id
    ]

    # The delivery log, from the outbox table: of the notification, and of the account, newest first.
    log = stack.api("GET", "/v1/system/notifications/deliveries", query={"notification_id": notification_id})
    assert log["statusCode"] == 200, log
    assert sorted(entry["target"] for entry in log["json"]) == sorted(a["target"] for a in attempts)
    second = stack.api("POST", "/v1/system/webhooks/tag_update/test")["json"]
    everything = stack.api("GET", "/v1/system/notifications/deliveries")["json"]
    assert len(everything) == 4
    assert {entry["notification_type"] for entry in everything[:2]} == {"tag_update"}
    assert {entry["notification_id"] for entry in everything[2:]} == {notification_id}
    assert [entry["notification_id"] for entry in second] == [everything[0]["notification_id"]] * 2
    one = stack.api("GET", "/v1/system/notifications/deliveries", query={"limit": "1"})["json"]
    assert len(one) == 1 and one[0]["notification_type"] == "tag_update"

    unknown = stack.api("POST", "/v1/system/webhooks/nonsense/test")
    assert unknown["statusCode"] == 400 and "nonsense" in unknown["json"]["message"]


def test_a_test_send_to_a_receiver_that_is_down_is_delivered_later_through_the_queue_once(
    stack: MotoStack, receiver: WebhookReceiver
) -> None:
    receiver.stop()
    answer = stack.api("POST", "/v1/system/webhooks/vuln_update/test")
    assert answer["statusCode"] == 200, answer
    outcomes = {attempt["target"].split(":", 1)[0]: attempt["outcome"] for attempt in answer["json"]}
    assert outcomes == {"sns": "delivered", "webhook": "retrying"}
    (notification_id,) = {attempt["notification_id"] for attempt in answer["json"]}

    # Back up: the Notify function, fed by the queue the test send was handed to, delivers it once the
    # backoff (2 s) is over; SNS is not published again.
    receiver.start()
    time.sleep(2.5)
    consume_notifications(stack)
    (posted,) = receiver.received
    assert posted.json()["dataId"] == notification_id
    log = stack.api("GET", "/v1/system/notifications/deliveries", query={"notification_id": notification_id})
    webhook = [entry["outcome"] for entry in log["json"] if entry["target"].startswith("webhook:")]
    assert webhook == ["delivered", "retrying"]
    assert [entry["outcome"] for entry in log["json"] if entry["target"].startswith("sns:")] == ["delivered"]
