"""Webhook delivery against a real receiver on 127.0.0.1: signatures, templates, basic auth, retries
while the receiver is down, at most once per target, and failures that are recorded, never dropped."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portwarden.adapters.http.webhooks import SIGNATURE_HEADER, WebhookChannel
from portwarden.adapters.local.sqlite import LocalStore
from portwarden.adapters.local.watch_store import WatchStore
from portwarden.core.model.accounts import EventQuery
from portwarden.core.services.notify import deliver_due, publish
from portwarden.core.watch.config import RetrySettings, WebhookEndpoint, WebhookSettings
from portwarden.core.watch.notifications import (
    DELIVERY_FAILED_EVENT,
    DeliveryOutcome,
    Notification,
    NotificationType,
    make_notification,
)
from tests.support.registry import free_port
from tests.support.webhook_receiver import WebhookReceiver


def tag_update(key: str = "registry.local/app:1", new: str = "sha256:" + "b" * 64) -> Notification:
    return make_notification(
        NotificationType.TAG_UPDATE,
        account="admin",
        subscription_key=key,
        payload={"last_eval": ["sha256:" + "a" * 64], "curr_eval": [new]},
        identity={"from": "sha256:" + "a" * 64, "to": new},
        now=datetime.now(UTC),
    )


def deliver_until_settled(
    channel: WebhookChannel, outbox: WatchStore, retry: RetrySettings, store: LocalStore, deadline: float
) -> None:
    stop = time.monotonic() + deadline
    while outbox.pending() and time.monotonic() < stop:
        deliver_due(channels=[channel], outbox=outbox, retry=retry, events_for=lambda _a: store.events)
        time.sleep(0.02)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "home")


@pytest.fixture
def outbox(tmp_path: Path) -> WatchStore:
    return WatchStore(tmp_path / "home" / "watch.db")


def test_envelope_signature_template_and_basic_auth(store: LocalStore, outbox: WatchStore) -> None:
    receiver = WebhookReceiver(port=0).start()
    try:
        settings = WebhookSettings(
            endpoints={
                "general": WebhookEndpoint(url=f"{receiver.url}/general"),
                "tag_update": WebhookEndpoint(
                    url=f"{receiver.url}/hooks/<userId>/<notification_type>",
                    username="hook",
                    password="s3cret",
                    secret="signing-key",
                ),
            }
        )
        channel = WebhookChannel(settings)
        notification = tag_update()
        vuln = make_notification(
            NotificationType.VULN_UPDATE,
            account="admin",
            subscription_key="registry.local/app:1",
            payload={"imageDigest": "sha256:" + "b" * 64, "diff_vulnerability_result": {"added": []}},
            identity={"x": 1},
            now=datetime.now(UTC),
        )
        publish([notification, vuln], channels=[channel], outbox=outbox, events_for=lambda _a: store.events)
        deliver_until_settled(channel, outbox, RetrySettings(), store, 10)
        posts = receiver.wait_for(2)
        by_path = {post.path: post for post in posts}
        signed = by_path["/hooks/admin/tag_update"]
        expected = "sha256=" + hmac.new(b"signing-key", signed.body, hashlib.sha256).hexdigest()
        assert signed.headers[SIGNATURE_HEADER] == expected
        assert signed.headers["Authorization"] == "Basic " + base64.b64encode(b"hook:s3cret").decode()
        envelope = signed.json()
        assert envelope["queueId"] == "tag_update"
        assert envelope["userId"] == "admin"
        payload = envelope["data"]["notification_payload"]
        assert payload["subscription_key"] == "registry.local/app:1"
        assert payload["notificationId"] == notification.notification_id
        assert payload["curr_eval"] == ["sha256:" + "b" * 64]
        # The vuln_update has no endpoint of its own: the general one, unsigned, without auth.
        general = by_path["/general"]
        assert SIGNATURE_HEADER not in general.headers and "Authorization" not in general.headers
        assert general.json()["data"]["notification_type"] == "vuln_update"
        # Both notifications are events too.
        types = {event.type for event in store.events.query_events(EventQuery(limit=100)).events}
        assert {"user.checks.tag.digest.update", "user.checks.tag.vulnerabilities.update"} <= types
    finally:
        receiver.stop()


def test_receiver_down_for_a_while_gets_it_once_when_back(store: LocalStore, outbox: WatchStore) -> None:
    port = free_port()
    channel = WebhookChannel(
        WebhookSettings(endpoints={"general": WebhookEndpoint(url=f"http://127.0.0.1:{port}/")})
    )
    retry = RetrySettings(window_seconds=30, initial_delay=0.05, max_delay=0.2, timeout=2)
    notification = tag_update()
    publish([notification], channels=[channel], outbox=outbox, events_for=lambda _a: store.events)
    # Nobody listens yet: attempts fail and are rescheduled.
    stop = time.monotonic() + 0.6
    while time.monotonic() < stop:
        deliver_due(channels=[channel], outbox=outbox, retry=retry, events_for=lambda _a: store.events)
        time.sleep(0.02)
    failed_so_far = outbox.attempts(notification_id=notification.notification_id)
    assert failed_so_far and all(a.outcome is DeliveryOutcome.RETRYING for a in failed_so_far)
    receiver = WebhookReceiver(port=port).start()
    try:
        deliver_until_settled(channel, outbox, retry, store, 10)
        # The same change noticed again (a retried round): registered already, not enqueued again.
        report = publish(
            [tag_update()], channels=[channel], outbox=outbox, events_for=lambda _a: store.events
        )
        assert report.duplicates == 1 and report.enqueued == 0
        deliver_until_settled(channel, outbox, retry, store, 1)
        time.sleep(0.2)
        posts = receiver.wait_for(1)
        assert len(posts) == 1
        assert posts[0].json()["dataId"] == notification.notification_id
        log = outbox.attempts(notification_id=notification.notification_id)
        assert log[0].outcome is DeliveryOutcome.DELIVERED
        assert sum(a.outcome is DeliveryOutcome.DELIVERED for a in log) == 1
        assert len(log) >= 2
        events = store.events.query_events(EventQuery(event_type=DELIVERY_FAILED_EVENT)).events
        assert events == ()
    finally:
        receiver.stop()


def test_receiver_down_past_the_window_is_recorded_failed_and_an_event(
    store: LocalStore, outbox: WatchStore
) -> None:
    port = free_port()
    channel = WebhookChannel(
        WebhookSettings(endpoints={"general": WebhookEndpoint(url=f"http://127.0.0.1:{port}/")})
    )
    retry = RetrySettings(window_seconds=0.5, initial_delay=0.05, max_delay=0.1, timeout=1)
    notification = tag_update()
    publish([notification], channels=[channel], outbox=outbox, events_for=lambda _a: store.events)
    deliver_until_settled(channel, outbox, retry, store, 10)
    assert outbox.pending() == 0
    log = outbox.attempts(notification_id=notification.notification_id)
    assert log[0].outcome is DeliveryOutcome.FAILED
    assert "ConnectionError" in log[0].detail
    assert all(a.outcome is DeliveryOutcome.RETRYING for a in log[1:])
    failures = store.events.query_events(EventQuery(event_type=DELIVERY_FAILED_EVENT)).events
    assert len(failures) == 1
    assert failures[0].level == "ERROR"
    assert failures[0].details["notification_id"] == notification.notification_id
    # Coming back later does not resurrect it: it was settled as failed, visibly.
    receiver = WebhookReceiver(port=port).start()
    try:
        deliver_due(channels=[channel], outbox=outbox, retry=retry)
        time.sleep(0.2)
        assert receiver.received == []
    finally:
        receiver.stop()


def test_a_refusal_is_not_retried(store: LocalStore, outbox: WatchStore) -> None:
    receiver = WebhookReceiver(port=0, status=404).start()
    try:
        channel = WebhookChannel(WebhookSettings(endpoints={"general": WebhookEndpoint(url=receiver.url)}))
        notification = tag_update()
        publish([notification], channels=[channel], outbox=outbox)
        deliver_until_settled(channel, outbox, RetrySettings(initial_delay=0.05), store, 5)
        log = outbox.attempts(notification_id=notification.notification_id)
        assert [a.outcome for a in log] == [DeliveryOutcome.FAILED]
        assert log[0].status_code == 404
    finally:
        receiver.stop()
