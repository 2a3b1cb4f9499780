"""Use cases: the tag watcher, the repository watcher, and analysis status changes of watched tags.

* ``poll_tags``: for each active ``tag_update`` subscription, the digest the tag points at now (a HEAD
  of the manifest); a new digest is added and analyzed, the tag's record moves to it (the old image
  stays, with its tag, as history) and a ``tag_update`` notification carries old and new digests.
* ``poll_repositories``: for each active ``repo_update`` subscription, the repository's tags (every
  page of ``/tags/list``); a tag not seen before is added (its four tag subscriptions with it,
  ``tag_update`` active when the watch says ``autosubscribe``) and remembered in the value's
  ``repotags``.
* ``analysis_updates``: an ``analysis_update`` notification whenever the status of the image a
  subscribed tag points at differs from the status last reported for it.

One registry failing never stops the round: it is logged as an event and the next key is looked at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from portwarden.core.errors import ImageNotFoundError, ImageSourceError, InvalidReferenceError, StoreError
from portwarden.core.image.manifest import ACCEPT as MANIFEST_ACCEPT
from portwarden.core.image.reference import ImageReference
from portwarden.core.model.accounts import SubscriptionType
from portwarden.core.model.records import TagRecord
from portwarden.core.ports import (
    CatalogStore,
    EventStore,
    ImageNamespaceIndex,
    RegistryClient,
    SubscriptionStore,
    TagDigestSource,
)
from portwarden.core.services.events import record_event
from portwarden.core.services.rematch import TagPointers
from portwarden.core.watch.notifications import (
    LIST_TAGS_FAILED_EVENT,
    TAG_LOOKUP_FAILED_EVENT,
    Notification,
    NotificationType,
    make_notification,
)
from portwarden.core.watch.subscriptions import RepoWatch, active

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class ImageAdder(Protocol):
    """Adds an image as ``POST /images`` does (record, subscriptions, start the analysis).

    ``autosubscribe`` None: the tag's subscriptions exist and stay as their owner set them (a tag
    watcher adding the tag's new digest must not re-activate what a user deactivated).
    """

    def __call__(self, tag: str, digest: str | None, *, autosubscribe: bool | None) -> None: ...


@dataclass(frozen=True)
class WatchStores:
    account: str
    catalog: CatalogStore
    subscriptions: SubscriptionStore
    events: EventStore


@dataclass
class WatchReport:
    checked: int = 0
    changed: int = 0
    added: int = 0
    notifications: list[Notification] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def merge(self, other: WatchReport) -> None:
        self.checked += other.checked
        self.changed += other.changed
        self.added += other.added
        self.notifications.extend(other.notifications)
        self.errors.extend(other.errors)


def poll_tags(
    stores: WatchStores,
    registry: TagDigestSource,
    add_image: ImageAdder,
    *,
    clock: Clock = _now,
    parallel_registries: int = 4,
    should_stop: Callable[[], bool] = lambda: False,
    on_registry_done: Callable[[WatchReport], None] | None = None,
) -> WatchReport:
    """Every active ``tag_update`` subscription, fanned out by registry: each registry's tags are
    looked up one after the other (kind to its rate limits), registries side by side, so one slow
    registry (timeouts, a long ``Retry-After``) does not delay the others.

    ``should_stop`` is asked before each tag (a host with a time limit, a Lambda function, stops
    looking up tags before it is killed: the tags left are looked at next round, unchanged).
    ``on_registry_done`` receives each registry's report as soon as that registry is done, on the
    calling thread, so its notifications go out even when a slower registry later runs out of time."""
    by_registry: dict[str, list[str]] = {}
    for subscription in active(stores.subscriptions.list_subscriptions(), SubscriptionType.TAG_UPDATE):
        tag = subscription.subscription_key
        by_registry.setdefault(tag.split("/", 1)[0], []).append(tag)
    report = WatchReport()
    if not by_registry:
        return report
    workers = max(1, min(parallel_registries, len(by_registry)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="portwarden-tag-watch") as pool:
        # Each registry's round has its own report and tag pointers; they are merged afterwards.
        futures = [
            pool.submit(_poll_tag_list, tags, stores, registry, add_image, clock, should_stop)
            for tags in by_registry.values()
        ]
        for future in as_completed(futures):
            partial = future.result()
            if on_registry_done is not None:
                on_registry_done(partial)
            report.merge(partial)
    return report


def _poll_tag_list(
    tags: list[str],
    stores: WatchStores,
    registry: TagDigestSource,
    add_image: ImageAdder,
    clock: Clock,
    should_stop: Callable[[], bool] = lambda: False,
) -> WatchReport:
    report = WatchReport()
    pointers = TagPointers(stores.catalog)
    for position, tag in enumerate(tags):
        if should_stop():
            report.errors.append(f"out of time: {len(tags) - position} tags left for the next round")
            break
        report.checked += 1
        try:
            digest = registry.tag_digest(ImageReference.parse(tag))
        except (ImageSourceError, InvalidReferenceError) as exc:
            gone = isinstance(exc, ImageNotFoundError)
            report.errors.append(f"{tag}: {exc}")
            record_event(
                stores.events,
                TAG_LOOKUP_FAILED_EVENT,
                message=f"cannot resolve {tag}: {exc}",
                resource_type="image_tag",
                resource_id=tag,
                level="ERROR",
                details={"not_found": gone},
                now=clock(),
            )
            continue
        previous_record = stores.catalog.get_tag(tag)
        previous = previous_record.image_digest if previous_record else pointers.current(tag)
        if previous == digest:
            if previous_record is None:
                stores.catalog.put_tag(TagRecord(repo_tag=tag, image_digest=digest, updated_at=clock()))
            continue
        report.changed += 1
        try:
            add_image(tag, digest, autosubscribe=None)
        except (ImageSourceError, StoreError) as exc:
            # Not recorded as seen: the next round tries again.
            report.errors.append(f"{tag}: adding {digest} failed: {exc}")
            logger.warning("adding %s (%s) failed: %s", tag, digest, exc)
            continue
        report.added += 1
        if previous is not None:
            report.notifications.append(
                make_notification(
                    NotificationType.TAG_UPDATE,
                    account=stores.account,
                    subscription_key=tag,
                    payload={"last_eval": [previous], "curr_eval": [digest]},
                    identity={
                        "from": previous,
                        "to": digest,
                        "since": previous_record.updated_at.isoformat() if previous_record else None,
                    },
                    now=clock(),
                )
            )
        # Last: a crash before this line notices the same change again next round (same notification id).
        stores.catalog.put_tag(TagRecord(repo_tag=tag, image_digest=digest, updated_at=clock()))
    return report


def poll_repositories(
    stores: WatchStores, registry: TagDigestSource, add_image: ImageAdder, *, clock: Clock = _now
) -> WatchReport:
    report = WatchReport()
    for subscription in active(stores.subscriptions.list_subscriptions(), SubscriptionType.REPO_UPDATE):
        repository = subscription.subscription_key
        report.checked += 1
        try:
            watch = RepoWatch.parse(subscription.subscription_value)
            reference = ImageReference.parse(f"{repository}:{watch.lookuptag}")
            tags = registry.list_tags(reference)
        except (ImageSourceError, InvalidReferenceError, ValueError) as exc:
            report.errors.append(f"{repository}: {exc}")
            record_event(
                stores.events,
                LIST_TAGS_FAILED_EVENT,
                message=f"cannot list the tags of {repository}: {exc}",
                resource_type="repository",
                resource_id=repository,
                level="ERROR",
                now=clock(),
            )
            continue
        known = set(watch.repotags)
        added: set[str] = set()
        for tag in sorted(set(tags) - known):
            try:
                add_image(f"{repository}:{tag}", None, autosubscribe=watch.autosubscribe)
            except (ImageSourceError, InvalidReferenceError, StoreError) as exc:
                # A tag that cannot be added now (deleted meanwhile, a bad manifest) is tried next round.
                report.errors.append(f"{repository}:{tag}: {exc}")
                continue
            added.add(tag)
            report.added += 1
        if added or set(tags) != known:
            report.changed += 1
            # Tags gone from the registry are forgotten; a tag that failed to add stays unknown.
            remembered = (known & set(tags)) | added
            stores.subscriptions.put_subscription(
                subscription.model_copy(
                    update={"subscription_value": watch.with_tags(remembered).dump(), "last_updated": clock()}
                )
            )
    return report


def analysis_updates(
    stores: WatchStores, state: ImageNamespaceIndex, *, clock: Clock = _now
) -> list[Notification]:
    """``analysis_update`` notifications for status changes since the last call (state kept per account)."""
    key = f"analysis-status/{stores.account}"
    stored = state.get_state(key)
    # The first round only takes a baseline: images analyzed before watching began are not news.
    baseline = stored is None
    reported: dict[str, list[str]] = stored or {}
    pointers = TagPointers(stores.catalog)
    notifications: list[Notification] = []
    current_state: dict[str, list[str]] = {}
    for subscription in active(stores.subscriptions.list_subscriptions(), SubscriptionType.ANALYSIS_UPDATE):
        tag = subscription.subscription_key
        digest = pointers.current(tag)
        image = stores.catalog.get_image(digest) if digest else None
        if image is None or digest is None:
            continue
        status = image.analysis_status.value
        current_state[tag] = [digest, status]
        last = reported.get(tag)
        if last == [digest, status]:
            continue
        if baseline:
            continue
        if last is not None and last[0] == digest:
            last_status: str | None = last[1]
        else:
            # A tag seen for the first time, or moved to another image: that image's story starts at
            # not_analyzed.
            last_status = "not_analyzed" if status != "not_analyzed" else None
        if last_status is None:
            continue
        notifications.append(
            make_notification(
                NotificationType.ANALYSIS_UPDATE,
                account=stores.account,
                subscription_key=tag,
                payload={
                    "last_eval": {
                        "imageDigest": digest,
                        "analysis_status": last_status,
                        "annotations": image.annotations,
                    },
                    "curr_eval": {
                        "imageDigest": digest,
                        "analysis_status": status,
                        "annotations": image.annotations,
                    },
                },
                identity={
                    "digest": digest,
                    "from": last_status,
                    "to": status,
                    "at": image.analyzed_at.isoformat() if image.analyzed_at else None,
                },
                now=clock(),
                annotations=image.annotations,
            )
        )
    state.put_state(key, current_state)
    return notifications


class RegistryTagDigests:
    """A ``TagDigestSource`` over the registry clients of an account: HEAD where the client can, else
    the digest of a fetched manifest."""

    def __init__(self, client_for: Callable[[ImageReference], RegistryClient]) -> None:
        self._client_for = client_for

    def tag_digest(self, ref: ImageReference) -> str:
        client = self._client_for(ref)
        head = getattr(client, "tag_digest", None)
        if callable(head):
            return str(head(ref))
        return client.fetch_manifest(ref, MANIFEST_ACCEPT).digest

    def list_tags(self, ref: ImageReference) -> list[str]:
        return self._client_for(ref).list_tags(ref)
