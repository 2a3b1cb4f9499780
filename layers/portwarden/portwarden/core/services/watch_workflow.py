"""Watch mode as a host without a process of its own runs it (AWS: scheduled functions and the Rematch
state machine): each step is short, stateless between calls, and hands its notifications to a
``NotificationQueue`` instead of delivering them.

* :func:`watch_round`: the tag watcher (registries side by side; each registry's notifications queued
  as soon as that registry is done), then the repository watcher, for every account; stops looking up
  tags when the host's time is nearly up.
* :func:`report_analysis_updates`: ``analysis_update`` for the status changes of subscribed tags.
* :func:`plan_rematch_run`: which images the published database's change touches, written as one JSON
  list (the Distributed Map's item source); :func:`rematch_item` re-matches and re-evaluates one of
  them; :func:`finish_rematch_run` records the database once every item is done.
* :func:`plan_reevaluation_run` and :func:`reevaluate_item`: the same state machine in re-evaluation
  mode (the active bundle changed, or the schedule for time-based triggers): every analyzed tagged
  image evaluated again from its stored analysis and matches, ``policy_eval`` queued for changes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum

from portwarden.core.errors import VulnerabilityDatabaseError
from portwarden.core.model.accounts import SubscriptionRecord
from portwarden.core.model.base import ValueObject
from portwarden.core.model.records import AnalysisStatus, ImageRecord
from portwarden.core.policy.bundle import compile_bundle
from portwarden.core.ports import BlobStore, ImageNamespaceIndex, NotificationQueue, TagDigestSource
from portwarden.core.services.evaluate import active_bundle
from portwarden.core.services.phases import OpenDatabase
from portwarden.core.services.rematch import (
    AccountStores,
    RematchReport,
    TagPointers,
    plan_rematch,
    record_rematched,
    reevaluate_stored_image,
    rematch_image,
)
from portwarden.core.services.watch import (
    ImageAdder,
    WatchReport,
    WatchStores,
    analysis_updates,
    poll_repositories,
    poll_tags,
)
from portwarden.core.triage.model import TriageInputs
from portwarden.core.watch.notifications import Notification

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]
REMATCH_LISTS_PREFIX = "rematch/"
# Every analyzed image of an account (the catalog's listing takes a limit).
_ALL = 10_000_000


def _now() -> datetime:
    return datetime.now(UTC)


# ---- the watchers ------------------------------------------------------------------------------------


class WatchRoundOutcome(ValueObject):
    accounts: int
    checked: int
    changed: int
    added: int
    notifications: int
    errors: tuple[str, ...] = ()


def watch_round(
    accounts: Sequence[str],
    *,
    stores_for: Callable[[str], WatchStores],
    registry: TagDigestSource,
    adder_for: Callable[[str], ImageAdder],
    queue: NotificationQueue,
    should_stop: Callable[[], bool] = lambda: False,
    parallel_registries: int = 8,
    clock: Clock = _now,
) -> WatchRoundOutcome:
    """Poll every account's watched tags and repositories; queue the notifications as they come.

    A notification is queued before the round goes on: when the host is stopped later in the round,
    what was noticed is already on its way (the tag record moved, so it would not be noticed again).
    """
    total = WatchReport()

    def queue_report(report: WatchReport) -> None:
        if report.notifications:
            queue.send(report.notifications)

    for account in accounts:
        stores = stores_for(account)
        adder = adder_for(account)
        total.merge(
            poll_tags(
                stores,
                registry,
                adder,
                clock=clock,
                parallel_registries=parallel_registries,
                should_stop=should_stop,
                on_registry_done=queue_report,
            )
        )
        if should_stop():
            total.errors.append(f"{account}: out of time before the repository watcher")
            continue
        repositories = poll_repositories(stores, registry, adder, clock=clock)
        queue_report(repositories)
        total.merge(repositories)
    for error in total.errors:
        logger.warning("watch round: %s", error)
    return WatchRoundOutcome(
        accounts=len(accounts),
        checked=total.checked,
        changed=total.changed,
        added=total.added,
        notifications=len(total.notifications),
        errors=tuple(total.errors),
    )


def report_analysis_updates(
    accounts: Sequence[str],
    *,
    stores_for: Callable[[str], WatchStores],
    state: ImageNamespaceIndex,
    queue: NotificationQueue,
    clock: Clock = _now,
) -> int:
    """Queue ``analysis_update`` for each subscribed tag whose image's status changed since the last
    report; how many were queued. Two reports at once (a schedule and an execution's end) may make the
    same notification twice: it has the same id, and is delivered once."""
    count = 0
    for account in accounts:
        notifications: list[Notification] = analysis_updates(stores_for(account), state, clock=clock)
        if notifications:
            queue.send(notifications)
        count += len(notifications)
    return count


# ---- the rematch as a workflow -----------------------------------------------------------------------


class RematchMode(StrEnum):
    """What a run of the Rematch state machine does to each image of its item list."""

    # A published database changed: re-match from the stored analysis, re-evaluate what changed.
    REMATCH = "rematch"
    # The active bundle changed, or the schedule for time-based triggers: re-evaluate from the stored
    # analysis and the stored matches, no new match.
    REEVALUATE = "reevaluate"


class RematchItem(ValueObject):
    """One Distributed Map item: an analyzed image of an account (``mode`` left out of the item list
    when it is the rematch)."""

    account: str
    image_digest: str
    mode: RematchMode = RematchMode.REMATCH


class RematchRunPlan(ValueObject):
    """What Plan hands the state machine: the item list's key (None: nothing to re-match) and the
    database the run is for (recorded by Finish)."""

    items_key: str | None
    count: int
    considered: int
    mode: RematchMode = RematchMode.REMATCH
    everything: bool = False
    enrichment: bool = False
    namespaces: tuple[str, ...] = ()
    db_sha256: str | None = None
    db_built_at: datetime | None = None
    fingerprints: dict[str, str] | None = None


def plan_rematch_run(
    run_name: str,
    accounts: Sequence[str],
    *,
    stores_for: Callable[[str], AccountStores],
    index: ImageNamespaceIndex,
    database: OpenDatabase | None,
    lists: BlobStore,
) -> RematchRunPlan:
    """The images of every account that the published database's change can touch, written to
    ``rematch/<run>/images.json`` (a JSON array of :class:`RematchItem`)."""
    if database is None:
        logger.info("no vulnerability database is published: nothing to re-match")
        return RematchRunPlan(items_key=None, count=0, considered=0)
    fingerprints = database.matcher.db.metadata().namespace_fingerprints
    pointer = database.pointer
    items: list[RematchItem] = []
    considered = 0
    namespaces: set[str] = set()
    everything = enrichment = False
    for account in accounts:
        plan = plan_rematch(
            stores_for(account),
            index,
            fingerprints=fingerprints,
            db_sha256=pointer.sha256,
            db_built_at=pointer.built_at,
        )
        items.extend(RematchItem(account=account, image_digest=digest) for digest in plan.image_digests)
        considered += plan.considered
        namespaces |= plan.change.namespaces
        everything |= plan.change.everything
        enrichment |= plan.change.enrichment
    key = None
    if items:
        key = f"{REMATCH_LISTS_PREFIX}{run_name}/images.json"
        _write_items(lists, key, items)
    logger.info(
        "rematch %s: %d of %d analyzed images touched (namespaces %s%s%s)",
        run_name,
        len(items),
        considered,
        ", ".join(sorted(namespaces)) or "none",
        ", enrichment" if enrichment else "",
        ", everything" if everything else "",
    )
    return RematchRunPlan(
        items_key=key,
        count=len(items),
        considered=considered,
        everything=everything,
        enrichment=enrichment,
        namespaces=tuple(sorted(namespaces)),
        db_sha256=pointer.sha256,
        db_built_at=pointer.built_at,
        fingerprints=fingerprints,
    )


def _write_items(lists: BlobStore, key: str, items: Sequence[RematchItem]) -> None:
    lists.put(
        key, json.dumps([item.model_dump(mode="json", exclude_defaults=True) for item in items]).encode()
    )


def plan_reevaluation_run(
    run_name: str,
    accounts: Sequence[str],
    *,
    stores_for: Callable[[str], AccountStores],
    lists: BlobStore,
) -> RematchRunPlan:
    """Every analyzed image with tags of ``accounts``, written to ``rematch/<run>/images.json`` as
    re-evaluation items (the active bundle changed, or the schedule for time-based triggers). An image
    without tags has no subscription to tell and no tag to evaluate for: it is left out."""
    items: list[RematchItem] = []
    considered = 0
    for account in accounts:
        analyzed = stores_for(account).catalog.list_images_by_status(AnalysisStatus.ANALYZED, limit=_ALL)
        considered += len(analyzed)
        items.extend(
            RematchItem(account=account, image_digest=image.image_digest, mode=RematchMode.REEVALUATE)
            for image in analyzed
            if image.repo_tags
        )
    key = None
    if items:
        key = f"{REMATCH_LISTS_PREFIX}{run_name}/images.json"
        _write_items(lists, key, items)
    logger.info(
        "re-evaluation %s: %d tagged of %d analyzed images in %d accounts",
        run_name,
        len(items),
        considered,
        len(accounts),
    )
    return RematchRunPlan(items_key=key, count=len(items), considered=considered, mode=RematchMode.REEVALUATE)


def _subscriptions_of(stores: AccountStores, image: ImageRecord) -> list[SubscriptionRecord]:
    """The subscriptions of the image's tags: all one item can notify (an account's whole list, read
    by each of thousands of items, would make a run quadratic in the account's subscriptions)."""
    return [record for tag in image.repo_tags for record in stores.subscriptions.list_subscriptions(tag)]


class RematchItemOutcome(ValueObject):
    account: str
    image_digest: str
    rematched: bool
    changed: bool = False
    reevaluated: bool = False
    notifications: int = 0
    errors: tuple[str, ...] = ()


def rematch_item(
    item: RematchItem,
    *,
    stores: AccountStores,
    index: ImageNamespaceIndex,
    database: OpenDatabase | None,
    vex: TriageInputs,
    queue: NotificationQueue,
    clock: Clock = _now,
) -> RematchItemOutcome:
    """Re-match one image against the published database, re-evaluate it with the active bundle (the
    account's VEX statements applied) when its matches changed, and queue ``vuln_update`` and
    ``policy_eval`` for its subscribed tags (before storing the results: see ``rematch_image``).

    An image gone from the catalog or no longer analyzed is skipped; a damaged stored analysis is
    reported in ``errors`` (it cannot be fixed by retrying)."""
    image = stores.catalog.get_image(item.image_digest)
    if image is None or image.analysis_status is not AnalysisStatus.ANALYZED:
        return RematchItemOutcome(account=item.account, image_digest=item.image_digest, rematched=False)
    if database is None:
        raise VulnerabilityDatabaseError("no vulnerability database is published")
    report = RematchReport()
    rematch_image(
        image,
        stores,
        index,
        database.matcher,
        report,
        db_built_at=database.pointer.built_at,
        subscriptions=_subscriptions_of(stores, image),
        pointers=TagPointers(stores.catalog),
        bundle=compile_bundle(active_bundle(stores.policies)),
        vex=vex,
        emit=queue.send,
        clock=clock,
    )
    return RematchItemOutcome(
        account=item.account,
        image_digest=item.image_digest,
        rematched=bool(report.rematched),
        changed=bool(report.changed),
        reevaluated=bool(report.reevaluated),
        notifications=len(report.notifications),
        errors=tuple(report.errors),
    )


def reevaluate_item(
    item: RematchItem,
    *,
    stores: AccountStores,
    db_built_at: datetime | None,
    vex: TriageInputs,
    queue: NotificationQueue,
    clock: Clock | None = None,
) -> RematchItemOutcome:
    """Re-evaluate one image with the account's active bundle (its VEX statements applied) from its
    stored analysis and matches; queue ``policy_eval`` for its subscribed tags whose final action
    changed, before the new evaluations are stored (a retried item notifies again, same ids)."""
    image = stores.catalog.get_image(item.image_digest)
    if image is None or image.analysis_status is not AnalysisStatus.ANALYZED:
        return RematchItemOutcome(account=item.account, image_digest=item.image_digest, rematched=False)
    report = RematchReport()
    reevaluate_stored_image(
        image,
        stores,
        compile_bundle(active_bundle(stores.policies)),
        report,
        subscriptions=_subscriptions_of(stores, image),
        pointers=TagPointers(stores.catalog),
        db_built_at=db_built_at,
        vex=vex,
        emit=queue.send,
        clock=clock or _now,
    )
    return RematchItemOutcome(
        account=item.account,
        image_digest=item.image_digest,
        rematched=False,
        reevaluated=bool(report.reevaluated),
        notifications=len(report.notifications),
        errors=tuple(report.errors),
    )


def finish_rematch_run(plan: RematchRunPlan, *, index: ImageNamespaceIndex) -> None:
    """Every item is done: the next rematch compares against this database (a re-evaluation run
    records nothing: it matched against no new database)."""
    if plan.mode is not RematchMode.REMATCH or plan.db_sha256 is None:
        return
    record_rematched(
        index, fingerprints=plan.fingerprints, db_sha256=plan.db_sha256, db_built_at=plan.db_built_at
    )
