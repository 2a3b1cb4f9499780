"""The tag watcher fans out by registry under real threads: a registry that hangs does not hold up
the others (a sequential round would wait on it first), and every registry's results land, each once."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.core.errors import RegistryUnavailableError
from portwarden.core.image.reference import ImageReference
from portwarden.core.model.accounts import SubscriptionRecord, SubscriptionType
from portwarden.core.model.records import TagRecord
from portwarden.core.services.watch import WatchReport, WatchStores, poll_tags

SLOW = [f"a-slow.test/team/app:{n}" for n in range(2)]
FAST = [f"b-fast.test/team/app:{n}" for n in range(3)]


def new_digest(tag: str) -> str:
    return "sha256:" + uuid.uuid5(uuid.NAMESPACE_URL, tag).hex * 2


class Registries:
    """``a-slow.test`` answers only once every ``b-fast.test`` tag has been added."""

    def __init__(self) -> None:
        self.fast_done = threading.Event()
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def tag_digest(self, ref: ImageReference) -> str:
        with self._lock:
            self.threads.add(threading.current_thread().name)
        if ref.registry == "a-slow.test" and not self.fast_done.wait(timeout=5):
            raise RegistryUnavailableError("a-slow.test did not answer")
        return new_digest(f"{ref.registry}/{ref.repository}:{ref.tag}")

    def list_tags(self, ref: ImageReference) -> list[str]:
        return []


def test_a_hanging_registry_does_not_hold_up_the_others(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with LocalStore(tmp_path / "home") as store:
        for tag in SLOW + FAST:
            store.subscriptions.add_subscription(
                SubscriptionRecord(
                    subscription_id=uuid.uuid4().hex,
                    subscription_key=tag,
                    subscription_type=SubscriptionType.TAG_UPDATE,
                    active=True,
                    created_at=now,
                    last_updated=now,
                )
            )
            store.catalog.put_tag(TagRecord(repo_tag=tag, image_digest="sha256:" + "0" * 64, updated_at=now))
        registries = Registries()
        added: list[str] = []
        added_lock = threading.Lock()

        def add_image(tag: str, digest: str | None, *, autosubscribe: bool | None) -> None:
            with added_lock:
                added.append(tag)
                if all(fast in added for fast in FAST):
                    registries.fast_done.set()

        stores = WatchStores("admin", store.catalog, store.subscriptions, store.events)
        report = poll_tags(stores, registries, add_image)

        assert report.errors == []
        assert report.checked == 5 and report.changed == 5 and report.added == 5
        assert sorted(added) == sorted(SLOW + FAST)
        assert sorted(n.subscription_key for n in report.notifications) == sorted(SLOW + FAST)
        assert len(registries.threads) == 2
        for tag in SLOW + FAST:
            record = store.catalog.get_tag(tag)
            assert record is not None and record.image_digest == new_digest(tag)


class SlowFirst(Registries):
    """As ``Registries``, and ``b-fast.test`` answers only once ``a-slow.test`` is asked its first tag
    (so the slow registry's round has begun before time runs out, however the threads are scheduled)."""

    def __init__(self) -> None:
        super().__init__()
        self.slow_asked = threading.Event()

    def tag_digest(self, ref: ImageReference) -> str:
        if ref.registry == "a-slow.test":
            self.slow_asked.set()
        elif not self.slow_asked.wait(timeout=5):
            raise RegistryUnavailableError("a-slow.test was never asked")
        return super().tag_digest(ref)


def test_each_registry_is_handed_over_when_done_and_a_round_out_of_time_stops_looking_up(
    tmp_path: Path,
) -> None:
    """A host with a deadline (the Watch function) queues a registry's notifications as soon as that
    registry is done, while a slower one still runs; once ``should_stop`` says so, no tag is looked up
    (the slow registry's tags are left for the next round, their records untouched)."""
    now = datetime.now(UTC)
    old = "sha256:" + "0" * 64
    with LocalStore(tmp_path / "home") as store:
        for tag in SLOW + FAST:
            store.subscriptions.add_subscription(
                SubscriptionRecord(
                    subscription_id=uuid.uuid4().hex,
                    subscription_key=tag,
                    subscription_type=SubscriptionType.TAG_UPDATE,
                    active=True,
                    created_at=now,
                    last_updated=now,
                )
            )
            store.catalog.put_tag(TagRecord(repo_tag=tag, image_digest=old, updated_at=now))
        registries = SlowFirst()
        out_of_time = threading.Event()
        handed_over: list[list[str]] = []

        def on_registry_done(report: WatchReport) -> None:
            handed_over.append(sorted(n.subscription_key for n in report.notifications))
            # The fast registry is done: time is up before the slow one answers its first tag.
            out_of_time.set()
            registries.fast_done.set()

        def add_image(tag: str, digest: str | None, *, autosubscribe: bool | None) -> None:
            if tag in SLOW:
                # The slow registry's first tag was already being looked up when time ran out.
                assert out_of_time.is_set()

        stores = WatchStores("admin", store.catalog, store.subscriptions, store.events)
        report = poll_tags(
            stores,
            registries,
            add_image,
            should_stop=out_of_time.is_set,
            on_registry_done=on_registry_done,
        )

        # The fast registry was handed over first, whole; the slow one looked at its first tag only.
        assert handed_over[0] == sorted(FAST)
        assert handed_over[1] == [SLOW[0]]
        assert report.checked == 4
        assert report.errors == ["out of time: 1 tags left for the next round"]
        record = store.catalog.get_tag(SLOW[1])
        assert record is not None and record.image_digest == old
