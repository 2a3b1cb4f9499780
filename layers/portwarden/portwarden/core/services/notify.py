"""Use case: notifications become events and durable deliveries; deliveries are attempted and retried.

``publish`` records each notification as an event (``/events``) and enqueues one delivery per channel
target in the Outbox (a notification made twice is enqueued once per target: at most once each).
``deliver_due`` attempts what is due: a success is logged as delivered; a failure is retried with
exponential backoff until the retry window (counted from the first enqueue) is over, then logged as
failed *and* recorded as an ERROR event, so nothing is dropped without a trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portwarden.core.errors import DeliveryError
from portwarden.core.ports import EventStore, NotificationChannel, Outbox, OutboxItem
from portwarden.core.services.events import record_event
from portwarden.core.watch.config import RetrySettings
from portwarden.core.watch.notifications import (
    DELIVERY_FAILED_EVENT,
    DeliveryAttempt,
    DeliveryOutcome,
    Notification,
)

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PublishReport:
    notifications: int = 0
    enqueued: int = 0
    duplicates: int = 0


def publish(
    notifications: Sequence[Notification],
    *,
    channels: Sequence[NotificationChannel],
    outbox: Outbox,
    events_for: Callable[[str], EventStore] | None = None,
    clock: Clock = _now,
) -> PublishReport:
    """Record each notification as an event of its account and enqueue its deliveries."""
    report = PublishReport()
    for notification in notifications:
        if not outbox.register(notification, clock()):
            # The same change made again (a retried round, a redelivered message): told once already.
            report.duplicates += 1
            continue
        report.notifications += 1
        for channel in channels:
            target = channel.target_for(notification)
            if target is not None and outbox.enqueue(notification, channel.name, target, clock()):
                report.enqueued += 1
        if events_for is not None:
            record_event(
                events_for(notification.account),
                notification.event_type,
                message=notification.summary(),
                resource_type="image_tag",
                resource_id=notification.subscription_key,
                level="ERROR" if notification.event_type.endswith(".failed") else "INFO",
                details={
                    "subscription_type": notification.notification_type.value,
                    "notification_id": notification.notification_id,
                    "notification_payload": notification.envelope()["data"]["notification_payload"],
                },
                now=clock(),
            )
    return report


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def deliver_due(
    *,
    channels: Sequence[NotificationChannel],
    outbox: Outbox,
    retry: RetrySettings,
    events_for: Callable[[str], EventStore] | None = None,
    clock: Clock = _now,
    limit: int = 100,
) -> DeliveryReport:
    """Attempt every due delivery once (each claimed by this caller only)."""
    by_name: Mapping[str, NotificationChannel] = {channel.name: channel for channel in channels}
    report = DeliveryReport()
    for item in outbox.claim_due(clock(), limit):
        attempt = _attempt(item, by_name.get(item.channel), retry, clock)
        outbox.record(item, attempt)
        if attempt.outcome is DeliveryOutcome.DELIVERED:
            report.delivered += 1
        elif attempt.outcome is DeliveryOutcome.RETRYING:
            report.retrying += 1
        else:
            report.failed += 1
            logger.error(
                "notification %s to %s %s failed for good: %s",
                item.notification.notification_id,
                item.channel,
                item.target,
                attempt.detail,
            )
            if events_for is not None:
                record_event(
                    events_for(item.notification.account),
                    DELIVERY_FAILED_EVENT,
                    message=(
                        f"{item.notification.notification_type.value} notification for "
                        f"{item.notification.subscription_key} was not delivered by {item.channel} "
                        f"after {attempt.attempt} attempts: {attempt.detail}"
                    ),
                    resource_type="image_tag",
                    resource_id=item.notification.subscription_key,
                    level="ERROR",
                    details={
                        "notification_id": item.notification.notification_id,
                        "channel": item.channel,
                        "target": item.target,
                        "attempts": attempt.attempt,
                        "error": attempt.detail,
                    },
                    now=clock(),
                )
    return report


def _attempt(
    item: OutboxItem, channel: NotificationChannel | None, retry: RetrySettings, clock: Clock
) -> DeliveryAttempt:
    number = item.attempts + 1
    started = clock()
    base = {
        "notification_id": item.notification.notification_id,
        "notification_type": item.notification.notification_type,
        "account": item.notification.account,
        "target": f"{item.channel}:{item.target}",
        "attempt": number,
        "attempted_at": started,
    }
    if channel is None:
        # The channel was configured when the delivery was enqueued and is gone now: say so, for good.
        return DeliveryAttempt(
            **base, outcome=DeliveryOutcome.FAILED, detail=f"channel {item.channel} is no longer configured"
        )
    try:
        status = channel.send(item.notification, item.target, number)
    except DeliveryError as exc:
        now = clock()
        next_at = now + timedelta(seconds=retry.delay(number))
        window_over = next_at - item.enqueued_at > timedelta(seconds=retry.window_seconds)
        if not exc.retryable or window_over:
            return DeliveryAttempt(
                **base, outcome=DeliveryOutcome.FAILED, detail=str(exc), status_code=exc.status_code
            )
        return DeliveryAttempt(
            **base,
            outcome=DeliveryOutcome.RETRYING,
            detail=str(exc),
            status_code=exc.status_code,
            next_attempt_at=next_at,
        )
    return DeliveryAttempt(**base, outcome=DeliveryOutcome.DELIVERED, status_code=status)


def notify_batch(
    notifications: Sequence[Notification],
    *,
    channels: Sequence[NotificationChannel],
    outbox: Outbox,
    retry: RetrySettings,
    events_for: Callable[[str], EventStore] | None = None,
    clock: Clock = _now,
) -> list[str]:
    """Publish and deliver a batch (a queue consumer's unit of work); the ids of notifications with
    deliveries still due, which the consumer hands back to the queue for a later attempt."""
    publish(notifications, channels=channels, outbox=outbox, events_for=events_for, clock=clock)
    deliver_due(
        channels=channels,
        outbox=outbox,
        retry=retry,
        events_for=events_for,
        clock=clock,
        limit=max(100, len(notifications) * max(1, len(channels))),
    )
    return [n.notification_id for n in notifications if outbox.undelivered(n.notification_id)]
