"""Feed sync as a workflow of short steps (the AWS feed-sync state machine), resumable across runs.

One database sync does not fit in one function invocation: NVD alone asks for a pause between its
~150 pages. So the sync is split into steps that each finish well inside a Lambda's 15 minutes:

* :func:`prepare_feed_sync` takes the sync lease (one run at a time) and lists the sources;
* :func:`sync_one_source`, once per source (and again while it reports ``done=False``), syncs that
  source into the *working database*: the newest build, kept as an immutable S3 object per write
  and named by the sync-state item, with the NVD walk's checkpoint beside it;
* :func:`publish_working_database` points the database pointer at the working database.

A step that fails or is killed leaves the working database and its checkpoints as the last
successful step wrote them: the next step (or the next scheduled run) carries on from there, and
the published database is never touched by anything but a complete publish. Snapshots the pointer
or the working state no longer name are retired (the bucket expires only retired snapshots).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from portwarden.core.errors import StoreError, VulnerabilityDatabaseError
from portwarden.core.model.base import ValueObject
from portwarden.core.model.feedsync import (
    VULNERABILITIES_FEED,
    FeedGroupSummary,
    FeedSettings,
    SourceRef,
    WorkingDatabase,
)
from portwarden.core.model.records import DbPointer
from portwarden.core.ports import FeedFetcher, FeedMetadataStore
from portwarden.core.services.phases import SnapshotFiles, file_sha256
from portwarden.core.services.sync_feeds import FeedSource, SyncOptions, sync_source_step
from portwarden.core.vulns.db import SCHEMA_VERSION, SourceStatus

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
WORKING_PREFIX = "vulndb/working/"


def _now() -> datetime:
    return datetime.now(UTC)


class FeedSyncStateStore(Protocol):
    """Where the workflow keeps its state between steps (AWS: items of the feeds table)."""

    def get_working(self) -> WorkingDatabase | None: ...

    def put_working(self, working: WorkingDatabase) -> None: ...

    def acquire_lease(self, owner: str, until: datetime, now: datetime) -> bool:
        """Take the sync lease for ``owner`` unless another owner holds an unexpired one."""
        ...

    def release_lease(self, owner: str) -> None: ...


# ---- prepare ------------------------------------------------------------------------------------------


class FeedSyncPlan(ValueObject):
    run_id: str
    # False when another run holds the lease, or the feed is disabled: this run does nothing.
    acquired: bool
    sources: tuple[SourceRef, ...] = ()
    disabled: bool = False


def prepare_feed_sync(
    run_id: str,
    sources: Sequence[FeedSource],
    *,
    state: FeedSyncStateStore,
    lease: timedelta,
    settings: FeedSettings | None = None,
    clock: Clock = _now,
) -> FeedSyncPlan:
    """Take the lease (one run at a time: two would both write the working database) and list the
    sources in the order they are synced. A feed the administrator disabled is not synced."""
    if settings is not None and VULNERABILITIES_FEED in settings.disabled_feeds:
        logger.info("the %s feed is disabled; %s does nothing", VULNERABILITIES_FEED, run_id)
        return FeedSyncPlan(run_id=run_id, acquired=False, disabled=True)
    now = clock()
    if not state.acquire_lease(run_id, now + lease, now):
        logger.info("another feed sync holds the lease; %s does nothing", run_id)
        return FeedSyncPlan(run_id=run_id, acquired=False)
    unique = {source.key: source for source in sources}.values()
    refs = tuple(SourceRef(kind=source.kind.value, url=source.url) for source in unique)
    return FeedSyncPlan(run_id=run_id, acquired=True, sources=refs)


# ---- one source -----------------------------------------------------------------------------------------


class SourceTaskOutcome(ValueObject):
    run_id: str
    source: SourceRef
    # False while an NVD walk has pages left: the workflow runs the step again.
    done: bool
    status: SourceStatus
    record_count: int
    error: str | None = None


def sync_one_source(
    run_id: str,
    ref: SourceRef,
    fetcher: FeedFetcher,
    *,
    state: FeedSyncStateStore,
    feeds: FeedMetadataStore,
    snapshots: SnapshotFiles,
    work_dir: Path,
    options: SyncOptions | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Clock = _now,
) -> SourceTaskOutcome:
    """One step of one source on the working database; the new build becomes the working database.

    The first step ever starts from the published database (or from nothing). Only a completed
    upload moves the working state, so a step killed halfway costs only its own progress.
    """
    source = FeedSource.parse(f"{ref.kind}={ref.url}")
    working = state.get_working() or _from_published(feeds)
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "working.db"
    database.unlink(missing_ok=True)
    try:
        if working.location is not None:
            if not snapshots.download(working.location, database):
                raise VulnerabilityDatabaseError(f"the working database {working.location} is missing")
            if working.sha256 is not None and file_sha256(database) != working.sha256:
                raise VulnerabilityDatabaseError(f"the working database {working.location} is corrupt")
        step = sync_source_step(
            source,
            fetcher,
            database,
            checkpoint=working.checkpoints.get(source.key),
            options=options,
            should_stop=should_stop,
            clock=clock,
        )
        checksum = file_sha256(database)
        built_at = step.metadata.built_at
        location = f"{WORKING_PREFIX}{built_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{checksum[:16]}.db"
        snapshots.upload(location, database)
    finally:
        database.unlink(missing_ok=True)
    checkpoints = dict(working.checkpoints)
    if step.checkpoint is not None:
        checkpoints[source.key] = step.checkpoint
    elif step.outcome.status is not SourceStatus.FAILED:
        checkpoints.pop(source.key, None)
    state.put_working(
        WorkingDatabase(
            location=location,
            sha256=checksum,
            built_at=built_at,
            record_count=step.metadata.vulnerability_count,
            checkpoints=checkpoints,
            groups=tuple(
                FeedGroupSummary(name=group.name, record_count=group.record_count, last_sync=group.last_sync)
                for group in step.metadata.groups
            ),
        )
    )
    pointer = feeds.get_db_pointer()
    if working.location is not None and working.location != (pointer.location if pointer else None):
        _retire(snapshots, working.location)
    logger.info(
        "%s: %s, %d records%s",
        source.url,
        step.outcome.status.value,
        step.outcome.record_count,
        "" if step.done else f" (resumes at page {step.checkpoint.pages if step.checkpoint else 0})",
    )
    return SourceTaskOutcome(
        run_id=run_id,
        source=ref,
        done=step.done,
        status=step.outcome.status,
        record_count=step.outcome.record_count,
        error=step.outcome.error,
    )


def _from_published(feeds: FeedMetadataStore) -> WorkingDatabase:
    pointer = feeds.get_db_pointer()
    if pointer is None:
        return WorkingDatabase()
    return WorkingDatabase(
        location=pointer.location,
        sha256=pointer.sha256,
        built_at=pointer.built_at,
        record_count=pointer.record_count,
    )


# ---- publish --------------------------------------------------------------------------------------------


class PublishOutcome(ValueObject):
    run_id: str
    pointer: DbPointer | None
    published: bool
    # Sources whose NVD walk is unfinished: the next run resumes them.
    resuming: tuple[str, ...] = ()


def publish_working_database(
    run_id: str,
    *,
    state: FeedSyncStateStore,
    feeds: FeedMetadataStore,
    snapshots: SnapshotFiles,
) -> PublishOutcome:
    """Move the pointer to the working database (its upload came first), retire the snapshot it
    named before, and release the lease. Nothing to publish (no source ever synced) is no error."""
    working = state.get_working()
    previous = feeds.get_db_pointer()
    try:
        if working is None or working.location is None or working.sha256 is None or working.built_at is None:
            return PublishOutcome(run_id=run_id, pointer=previous, published=False)
        resuming = tuple(sorted(working.checkpoints))
        if previous is not None and previous.location == working.location:
            return PublishOutcome(run_id=run_id, pointer=previous, published=False, resuming=resuming)
        pointer = DbPointer(
            location=working.location,
            sha256=working.sha256,
            built_at=working.built_at,
            schema_version=SCHEMA_VERSION,
            record_count=working.record_count,
        )
        feeds.put_db_pointer(pointer)
        if previous is not None:
            _retire(snapshots, previous.location)
        return PublishOutcome(run_id=run_id, pointer=pointer, published=True, resuming=resuming)
    finally:
        state.release_lease(run_id)


def _retire(snapshots: SnapshotFiles, location: str) -> None:
    try:
        snapshots.retire(location)
    except StoreError as exc:  # it then stays until removed by hand: storage, not correctness
        logger.warning("cannot retire the snapshot %s: %s", location, exc)
