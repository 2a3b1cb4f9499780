"""The watch-mode adapters on AWS under moto: the image namespace index (the same contract as the local
watch store's, which the rematch relies on to pick the affected images) and the SQS notification
queue (batches of ten, nothing lost or duplicated, a queue that refuses is an error)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from portwarden.adapters.aws.notification_queue import SqsNotificationQueue
from portwarden.adapters.aws.watch_index import DynamoImageNamespaceIndex, table_definition
from portwarden.adapters.local.watch_store import WatchStore
from portwarden.core.errors import StoreError
from portwarden.core.ports import ImageNamespaceIndex
from portwarden.core.watch.notifications import Notification, NotificationType, make_notification

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture(params=["local", "dynamodb"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImageNamespaceIndex]:
    if request.param == "local":
        yield WatchStore(tmp_path / "watch.db")
        return
    with mock_aws():
        boto3.client("dynamodb", region_name=REGION).create_table(**table_definition("pw-watch"))
        yield DynamoImageNamespaceIndex("pw-watch", region=REGION)


def test_the_index_names_the_images_of_changed_namespaces_per_account(index: ImageNamespaceIndex) -> None:
    index.set_image_namespaces("admin", "sha256:a", ["npm", "alpine:3.20"], has_matches=True)
    index.set_image_namespaces("admin", "sha256:b", ["alpine:3.20"], has_matches=False)
    index.set_image_namespaces("team", "sha256:c", ["npm"], has_matches=True)

    assert index.indexed_images("admin") == {"sha256:a", "sha256:b"}
    assert index.images_in_namespaces("admin", ["npm"]) == {"sha256:a"}
    assert index.images_in_namespaces("admin", ["alpine:3.20", "pypi"]) == {"sha256:a", "sha256:b"}
    assert index.images_with_matches("admin") == {"sha256:a"}
    assert index.images_in_namespaces("team", ["npm"]) == {"sha256:c"}

    # Re-indexed without npm (a package removed from the stored analysis? a new analysis): gone there.
    index.set_image_namespaces("admin", "sha256:a", ["alpine:3.20"], has_matches=False)
    assert index.images_in_namespaces("admin", ["npm"]) == set()
    assert index.images_with_matches("admin") == set()
    assert index.indexed_images("admin") == {"sha256:a", "sha256:b"}
    # An image with no namespace at all is still indexed (nothing a feed change can touch).
    index.set_image_namespaces("admin", "sha256:d", [], has_matches=False)
    assert "sha256:d" in index.indexed_images("admin")


def test_state_round_trips_json_values(index: ImageNamespaceIndex) -> None:
    assert index.get_state("rematch/database") is None
    value: dict[str, Any] = {"sha256": "ab" * 32, "fingerprints": {"npm": "3:ff"}, "built_at": None}
    index.put_state("rematch/database", value)
    assert index.get_state("rematch/database") == value
    index.put_state("rematch/database", {"sha256": "cd" * 32})
    assert index.get_state("rematch/database") == {"sha256": "cd" * 32}


def notification(n: int) -> Notification:
    return make_notification(
        NotificationType.TAG_UPDATE,
        account="admin",
        subscription_key=f"registry.example/team/app:{n}",
        payload={"last_eval": ["sha256:" + "0" * 64], "curr_eval": ["sha256:" + "1" * 64]},
        identity={"n": n},
        now=datetime.now(UTC),
    )


def test_the_queue_sends_every_notification_once_in_batches_of_ten() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        sent = [notification(n) for n in range(23)]
        calls: list[int] = []
        original = sqs.send_message_batch

        def counting(**kwargs: Any) -> Any:
            calls.append(len(kwargs["Entries"]))
            return original(**kwargs)

        sqs.send_message_batch = counting
        SqsNotificationQueue(url, sqs).send(sent)

        assert calls == [10, 10, 3]
        bodies: list[str] = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        received = sorted(Notification.model_validate_json(body).notification_id for body in bodies)
        assert received == sorted(n.notification_id for n in sent)


def test_a_queue_that_refuses_is_a_store_error_naming_it() -> None:
    class Refusing:
        def __init__(self) -> None:
            self.calls = 0

        def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            return {"Failed": [{"Id": entry["Id"], "Code": "InternalError"} for entry in kwargs["Entries"]]}

    client = Refusing()
    with pytest.raises(StoreError, match="refused 2 messages"):
        SqsNotificationQueue("https://sqs.example/queue", client).send([notification(1), notification(2)])
    assert client.calls == 2  # the refused entries were sent once more before giving up
