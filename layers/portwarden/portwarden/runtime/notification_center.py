"""``POST /system/webhooks/{type}/test`` and the delivery log on AWS (the API's ``NotificationCenter``).

A test send goes the way every notification goes on AWS, through the Notify function's channels (the
SNS topic with its message attributes, the configured webhooks) and its DynamoDB outbox: it is
recorded as an event, and its own deliveries (nobody else's) are attempted at once, so the answer
lists their outcomes. A delivery still due (a webhook receiver that is down) is handed to the
notification queue: the Notify function retries it as it retries any other, until the retry window
ends. The delivery log is the outbox's attempt items, read through its per-account index.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from portwarden.adapters.aws.outbox import DynamoOutbox
from portwarden.core.ports import EventStore, NotificationChannel, NotificationQueue, OutboxItem
from portwarden.core.services.notify import deliver_due, publish
from portwarden.core.watch.config import RetrySettings
from portwarden.core.watch.notifications import (
    DeliveryAttempt,
    Notification,
    NotificationType,
    synthetic_notification,
)

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class _OneNotification:
    """The outbox as ``deliver_due`` sees it, limited to one notification's due deliveries."""

    def __init__(self, outbox: DynamoOutbox, notification_id: str) -> None:
        self._outbox = outbox
        self._notification_id = notification_id

    def register(self, notification: Notification, now: datetime) -> bool:
        return self._outbox.register(notification, now)

    def enqueue(self, notification: Notification, channel: str, target: str, now: datetime) -> bool:
        return self._outbox.enqueue(notification, channel, target, now)

    def claim_due(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        return self._outbox.claim_due_of(self._notification_id, now)[:limit]

    def record(self, item: OutboxItem, attempt: DeliveryAttempt) -> None:
        self._outbox.record(item, attempt)

    def release_claims(self, claimed_before: datetime) -> int:
        return 0  # never this one's business: the Notify function releases stale claims

    def attempts(
        self, *, notification_id: str | None = None, account: str | None = None, limit: int = 100
    ) -> list[DeliveryAttempt]:
        return self._outbox.attempts(notification_id=self._notification_id, account=account, limit=limit)

    def pending(self) -> int:
        return self._outbox.undelivered(self._notification_id)

    def undelivered(self, notification_id: str) -> int:
        return self._outbox.undelivered(notification_id)


class QueuedNotificationCenter:
    def __init__(
        self,
        *,
        channels: Sequence[NotificationChannel],
        outbox: DynamoOutbox,
        retry: RetrySettings,
        events_for: Callable[[str], EventStore],
        queue: NotificationQueue,
        clock: Clock = _now,
    ) -> None:
        self._channels = channels
        self._outbox = outbox
        self._retry = retry
        self._events_for = events_for
        self._queue = queue
        self._clock = clock

    def send_test(self, account: str, notification_type: str) -> list[DeliveryAttempt]:
        notification = synthetic_notification(
            NotificationType(notification_type), account=account, nonce=uuid.uuid4().hex, now=self._clock()
        )
        publish(
            [notification],
            channels=self._channels,
            outbox=self._outbox,
            events_for=self._events_for,
            clock=self._clock,
        )
        deliver_due(
            channels=self._channels,
            outbox=_OneNotification(self._outbox, notification.notification_id),
            retry=self._retry,
            events_for=self._events_for,
            clock=self._clock,
        )
        if self._outbox.undelivered(notification.notification_id):
            self._queue.send([notification])
        return self._outbox.attempts(notification_id=notification.notification_id)

    def deliveries(
        self, account: str, *, notification_id: str | None = None, limit: int = 100
    ) -> list[DeliveryAttempt]:
        return self._outbox.attempts(notification_id=notification_id, account=account, limit=limit)
