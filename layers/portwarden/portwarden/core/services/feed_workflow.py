"""Feed sync as a workflow of short steps (the AWS feed-sync state machine), resumable across runs.

One database sync does not fit in one function invocation: NVD alone asks for a pause between its
~150 pages. So the sync is split into steps that each finish well inside a Lambda's 15 minutes:

* :func:`prepare_feed_sync` takes the sync lease (one run at a time) and lists the sources;
* :func:`sync_one_source`, once per source (and again while it reports ``done=False``), syncs that
  source into *its own database*: that source's rows and state alone, kept as an immutable S3 object
  per write and named by the source's state item, with its NVD walk's checkpoint beside it. No two
  sources write the same thing, so the workflow runs them in parallel;
* :func:`publish_working_database` merges the sources' databases into a new full build, uploads it
  and points the database pointer at it.

A step that fails or is killed leaves its source's database and checkpoint as the last successful
step wrote them: Publish merges that (the source keeps its previous data), the next step (or the
next scheduled run) carries on from there, and the published database is never touched by anything
but a complete publish. Snapshots nothing names any more are retired (the bucket expires only
retired snapshots).
"""

from __future__ import annotations

import hashlib
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
    NvdCheckpoint,
    SourceDatabase,
    SourceRef,
    WorkingDatabase,
)
from portwarden.core.model.records import DbPointer
from portwarden.core.ports import FeedFetcher, FeedMetadataStore
from portwarden.core.services.phases import SnapshotFiles, file_sha256, snapshot_key
from portwarden.core.services.sync_feeds import FeedSource, SyncOptions, sync_source_step
from portwarden.core.vulns.db import SCHEMA_VERSION, DbBuilder, SourceState, SourceStatus

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Each source's database: vulndb/sources/<a digest of the source's key>/<built>-<checksum>.db
SOURCES_PREFIX = "vulndb/sources/"


def _now() -> datetime:
    return datetime.now(UTC)


class FeedSyncStateStore(Protocol):
    """Where the workflow keeps its state between steps (AWS: items of the feeds table)."""

    def get_working(self) -> WorkingDatabase | None: ...

    def put_working(self, working: WorkingDatabase) -> None: ...

    def get_source_database(self, key: str) -> SourceDatabase | None: ...

    def put_source_database(self, database: SourceDatabase) -> None:
        """Record a source's new database (one item per source: parallel steps never share one)."""
        ...

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
    """Take the lease (one run at a time: two would both write the sources' databases) and list the
    sources (their order is the order Publish merges them in). A feed the administrator disabled is
    not synced."""
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
    """One step of one source on the source's own database; the new build becomes that database.

    A source's first step starts from its rows in the newest full build (the last merge, or the
    published database), or from nothing. Only a completed upload moves the source's state, so a
    step killed halfway costs only its own progress. ``work_dir`` is this source's alone.
    """
    source = FeedSource.parse(f"{ref.kind}={ref.url}")
    own = state.get_source_database(source.key)
    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "source.db"
    database.unlink(missing_ok=True)
    try:
        checkpoint = own.checkpoint if own is not None else None
        start_over = own is None
        if own is not None and not _download_usable(snapshots, own.location, own.sha256, database):
            logger.warning(
                "%s: its database %s is missing or damaged; starting over", source.url, own.location
            )
            start_over = True
        if start_over:
            full = state.get_working() or _from_published(feeds)
            if full.location is not None:
                _download_checked(snapshots, full.location, full.sha256, database)
            checkpoint = full.checkpoints.get(source.key)
        step = sync_source_step(
            source,
            fetcher,
            database,
            checkpoint=checkpoint,
            options=options,
            should_stop=should_stop,
            clock=clock,
            keep_other_sources=False,
        )
        checksum = file_sha256(database)
        built_at = step.metadata.built_at
        location = source_database_key(source.key, built_at, checksum)
        snapshots.upload(location, database)
    finally:
        database.unlink(missing_ok=True)
    # A walk that stopped resumes where it stopped; a failed step keeps the checkpoint it started from.
    next_checkpoint: NvdCheckpoint | None = step.checkpoint
    if next_checkpoint is None and step.outcome.status is SourceStatus.FAILED:
        next_checkpoint = checkpoint
    state.put_source_database(
        SourceDatabase(
            key=source.key,
            location=location,
            sha256=checksum,
            built_at=built_at,
            record_count=step.outcome.record_count,
            checkpoint=next_checkpoint,
        )
    )
    if own is not None:
        _retire(snapshots, own.location)
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


def source_database_key(key: str, built_at: datetime, sha256: str) -> str:
    """Where a source's database is uploaded: under a prefix of its own (keys hold URLs)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{SOURCES_PREFIX}{digest}/{built_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{sha256[:16]}.db"


def _download_checked(snapshots: SnapshotFiles, location: str, sha256: str | None, path: Path) -> None:
    if not snapshots.download(location, path):
        raise VulnerabilityDatabaseError(f"the database {location} is missing")
    if sha256 is not None and file_sha256(path) != sha256:
        raise VulnerabilityDatabaseError(f"the database {location} is corrupt")


def _download_usable(snapshots: SnapshotFiles, location: str, sha256: str, path: Path) -> bool:
    """Download a source's database; False (nothing left at ``path``) when it is missing or corrupt."""
    try:
        _download_checked(snapshots, location, sha256, path)
    except VulnerabilityDatabaseError:
        path.unlink(missing_ok=True)
        return False
    return True


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
    # Sources merged from their own databases, and those carried over from the previous database
    # (no database of their own yet, or no longer configured).
    merged: tuple[str, ...] = ()
    carried_over: tuple[str, ...] = ()


def publish_working_database(
    run_id: str,
    sources: Sequence[SourceRef],
    *,
    state: FeedSyncStateStore,
    feeds: FeedMetadataStore,
    snapshots: SnapshotFiles,
    work_dir: Path,
    clock: Clock = _now,
) -> PublishOutcome:
    """Merge the sources' databases into a new build, upload it, move the pointer to it, retire the
    snapshot it named before, and release the lease.

    Sources without a database of their own, and those the previous build holds but the run does
    not sync, are carried over from the previous build, as a local sync carries them. When no
    source's database changed since the last merge, nothing is published. Nothing to publish (no
    source ever synced) is no error either.
    """
    keys = list(dict.fromkeys(FeedSource.parse(f"{ref.kind}={ref.url}").key for ref in sources))
    previous = feeds.get_db_pointer()
    try:
        own = {key: found for key in keys if (found := state.get_source_database(key)) is not None}
        resuming = tuple(sorted(key for key, found in own.items() if found.checkpoint is not None))
        if not own:
            return PublishOutcome(run_id=run_id, pointer=previous, published=False)
        last = state.get_working()
        merged = {key: found.sha256 for key, found in own.items()}
        # The last merge, when it is what the pointer names: the sources it holds are known.
        last_merge = last if last is not None and last.merged and previous is not None else None
        if last_merge is not None and previous is not None and last_merge.location != previous.location:
            last_merge = None
        if last_merge is not None and last_merge.merged == merged and set(last_merge.sources) <= set(keys):
            unchanged = tuple(sorted(merged))
            return PublishOutcome(
                run_id=run_id, pointer=previous, published=False, resuming=resuming, merged=unchanged
            )
        # The previous build is needed for what is not merged: sources without a database of their
        # own, and the sources it holds beyond this run's (unknown unless it is the last merge).
        beyond_this_run = last_merge is None or not set(last_merge.sources) <= set(keys)
        pointer, groups, merged_keys, carried = _merge_and_upload(
            keys,
            own,
            previous,
            needs_previous=len(own) < len(keys) or beyond_this_run,
            snapshots=snapshots,
            work_dir=work_dir,
            clock=clock,
        )
        feeds.put_db_pointer(pointer)
        state.put_working(
            WorkingDatabase(
                location=pointer.location,
                sha256=pointer.sha256,
                built_at=pointer.built_at,
                record_count=pointer.record_count,
                merged={key: merged[key] for key in merged_keys},
                sources=tuple(sorted({*merged_keys, *carried})),
                groups=groups,
            )
        )
        if previous is not None:
            _retire(snapshots, previous.location)
        replaced = previous.location if previous is not None else None
        if last is not None and last.location is not None and last.location != replaced:
            _retire(snapshots, last.location)  # the working database a sequential sync left
        return PublishOutcome(
            run_id=run_id,
            pointer=pointer,
            published=True,
            resuming=resuming,
            merged=tuple(sorted(merged_keys)),
            carried_over=tuple(sorted(carried)),
        )
    finally:
        state.release_lease(run_id)


def _merge_and_upload(
    keys: Sequence[str],
    own: dict[str, SourceDatabase],
    previous: DbPointer | None,
    *,
    needs_previous: bool,
    snapshots: SnapshotFiles,
    work_dir: Path,
    clock: Clock,
) -> tuple[DbPointer, tuple[FeedGroupSummary, ...], list[str], list[str]]:
    """The new build from the sources' databases (in the run's order) and, for the others, the rows
    of the previous build; uploaded. A source whose database is missing or corrupt is carried over
    too. Returns the build's pointer, its groups (as ``/system/feeds`` lists them), the sources
    merged and the sources carried over."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for leftover in work_dir.glob("*.db"):
        leftover.unlink()
    target = work_dir / "merged.db"
    base = work_dir / "previous.db"
    usable: dict[str, Path] = {}
    carried: list[str] = []
    try:
        for index, key in enumerate(key for key in keys if key in own):
            path = work_dir / f"source-{index}.db"
            if _download_usable(snapshots, own[key].location, own[key].sha256, path):
                usable[key] = path
            else:
                logger.warning(
                    "%s: its database %s is missing or damaged; carried over", key, own[key].location
                )
        with_previous = previous is not None and (needs_previous or len(usable) < len(own))
        if with_previous and previous is not None:
            _download_checked(snapshots, previous.location, previous.sha256, base)
        with DbBuilder(target, previous=base if with_previous else None, clock=clock) as builder:
            for key in keys:
                if key in usable:
                    builder.merge(usable[key])
                    usable[key].unlink()
                elif key in builder.previous_states:
                    _carry_over(builder, builder.previous_states[key], kept=False)
                    carried.append(key)
            for key, source_state in builder.previous_states.items():
                if key not in keys:
                    _carry_over(builder, source_state, kept=True)
                    carried.append(key)
            metadata = builder.publish()
        checksum = file_sha256(target)
        location = snapshot_key(metadata.built_at, checksum)
        snapshots.upload(location, target)
    finally:
        for leftover in work_dir.glob("*.db"):
            leftover.unlink()
    pointer = DbPointer(
        location=location,
        sha256=checksum,
        built_at=metadata.built_at,
        schema_version=SCHEMA_VERSION,
        record_count=metadata.vulnerability_count,
    )
    groups = tuple(
        FeedGroupSummary(name=group.name, record_count=group.record_count, last_sync=group.last_sync)
        for group in metadata.groups
    )
    return pointer, groups, list(usable), carried


def _carry_over(builder: DbBuilder, source_state: SourceState, *, kept: bool) -> None:
    """A source's rows and state from the previous build; ``kept``: not part of this run (as locally)."""
    builder.carry_over(source_state.key)
    builder.set_source_state(
        source_state.model_copy(update={"status": SourceStatus.KEPT}) if kept else source_state
    )


def _retire(snapshots: SnapshotFiles, location: str) -> None:
    try:
        snapshots.retire(location)
    except StoreError as exc:  # it then stays until removed by hand: storage, not correctness
        logger.warning("cannot retire the snapshot %s: %s", location, exc)
