"""The outbox under real thread parallelism: concurrent deliverers never send one delivery twice, and
every delivery is sent (the claim is one conditional UPDATE per batch, not a read then a write)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from portwarden.adapters.local.watch_store import WatchStore
from portwarden.core.errors import DeliveryError
from portwarden.core.services.notify import deliver_due, publish
from portwarden.core.watch.config import RetrySettings
from portwarden.core.watch.notifications import (
    DeliveryOutcome,
    Notification,
    NotificationType,
    make_notification,
)


class RecordingChannel:
    name = "recording"

    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list[str] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        self._fail_first = fail_first

    def target_for(self, notification: Notification) -> str | None:
        return "sink"

    def send(self, notification: Notification, target: str, attempt: int) -> int | None:
        time.sleep(0.001)  # let other deliverers run while this one holds its claim
        with self._lock:
            self.threads.add(threading.current_thread().name)
            if attempt <= self._fail_first:
                raise DeliveryError("try again")
            self.sent.append(notification.notification_id)
        return 200


def notifications(count: int) -> list[Notification]:
    now = datetime.now(UTC)
    return [
        make_notification(
            NotificationType.TAG_UPDATE,
            account="admin",
            subscription_key=f"registry.test/app:{index}",
            payload={"curr_eval": [f"sha256:{index:064x}"]},
            identity={"index": index},
            now=now,
        )
        for index in range(count)
    ]


def run_deliverers(outbox: WatchStore, channel: RecordingChannel, retry: RetrySettings, workers: int) -> None:
    def work() -> None:
        deadline = time.monotonic() + 30
        while outbox.pending() and time.monotonic() < deadline:
            deliver_due(channels=[channel], outbox=outbox, retry=retry, limit=7)

    threads = [threading.Thread(target=work, name=f"deliverer-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_concurrent_deliverers_send_each_delivery_exactly_once(tmp_path: Path) -> None:
    outbox = WatchStore(tmp_path / "watch.db")
    made = notifications(300)
    report = publish(made, channels=[RecordingChannel()], outbox=outbox)
    assert report.enqueued == 300
    channel = RecordingChannel()
    run_deliverers(outbox, channel, RetrySettings(), workers=8)
    counts = Counter(channel.sent)
    assert set(counts) == {n.notification_id for n in made}
    assert max(counts.values()) == 1
    assert len(channel.threads) > 1  # the work really was shared
    assert outbox.pending() == 0


def test_concurrent_retries_end_delivered_once(tmp_path: Path) -> None:
    outbox = WatchStore(tmp_path / "watch.db")
    made = notifications(60)
    publish(made, channels=[RecordingChannel()], outbox=outbox)
    channel = RecordingChannel(fail_first=2)
    run_deliverers(outbox, channel, RetrySettings(initial_delay=0.001, max_delay=0.002), workers=6)
    assert Counter(channel.sent) == Counter({n.notification_id: 1 for n in made})
    log = outbox.attempts(notification_id=made[0].notification_id)
    assert [a.outcome for a in reversed(log)] == [
        DeliveryOutcome.RETRYING,
        DeliveryOutcome.RETRYING,
        DeliveryOutcome.DELIVERED,
    ]


def test_a_claim_left_by_a_dead_process_is_released(tmp_path: Path) -> None:
    outbox = WatchStore(tmp_path / "watch.db")
    (notification,) = notifications(1)
    publish([notification], channels=[RecordingChannel()], outbox=outbox)
    assert len(outbox.claim_due(datetime.now(UTC))) == 1
    # Claimed and never settled (the process died): nobody else may take it meanwhile...
    assert outbox.claim_due(datetime.now(UTC)) == []
    # ...until the next start releases it.
    reopened = WatchStore(tmp_path / "watch.db")
    assert reopened.release_claims(datetime.now(UTC) - timedelta(minutes=10)) == 0
    assert reopened.release_claims(datetime.now(UTC)) == 1
    channel = RecordingChannel()
    deliver_due(channels=[channel], outbox=reopened, retry=RetrySettings())
    assert channel.sent == [notification.notification_id]
