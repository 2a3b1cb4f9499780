"""The feed-sync workflow's steps on in-memory state and a directory of snapshots.

Each source syncs into a database of its own; Publish merges them, carries over what has no database
of its own from the previous build, publishes nothing new when no source's database changed, and
picks up where a sequential sync (one working database for every source) left off.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.core.model.feedsync import SourceDatabase, SourceRef, WorkingDatabase
from portwarden.core.model.records import DbPointer
from portwarden.core.services.feed_workflow import (
    prepare_feed_sync,
    publish_working_database,
    sync_one_source,
)
from portwarden.core.services.phases import file_sha256
from portwarden.core.services.sync_feeds import FeedSource, sync_feeds
from portwarden.core.vulns.db import SCHEMA_VERSION, VulnerabilityDb
from tests.support.aws import MINIMIST_ADVISORY, osv_feed_zip

LOG4J_ADVISORY = MINIMIST_ADVISORY.parents[3] / "2021/12/GHSA-jfh8-c2jp-5v3q/GHSA-jfh8-c2jp-5v3q.json"


class MemoryState:
    def __init__(self) -> None:
        self.working: WorkingDatabase | None = None
        self.sources: dict[str, SourceDatabase] = {}
        self.lease: str | None = None
        self.pointer: DbPointer | None = None

    def get_working(self) -> WorkingDatabase | None:
        return self.working

    def put_working(self, working: WorkingDatabase) -> None:
        self.working = working

    def get_source_database(self, key: str) -> SourceDatabase | None:
        return self.sources.get(key)

    def put_source_database(self, database: SourceDatabase) -> None:
        self.sources[database.key] = database

    def acquire_lease(self, owner: str, until: datetime, now: datetime) -> bool:
        if self.lease not in (None, owner):
            return False
        self.lease = owner
        return True

    def release_lease(self, owner: str) -> None:
        if self.lease == owner:
            self.lease = None

    def get_db_pointer(self) -> DbPointer | None:
        return self.pointer

    def put_db_pointer(self, pointer: DbPointer) -> None:
        self.pointer = pointer


class DirectorySnapshots:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.retired: set[str] = set()

    def upload(self, key: str, path: Path) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def download(self, key: str, path: Path) -> bool:
        if not (self.root / key).exists():
            return False
        shutil.copyfile(self.root / key, path)
        return True

    def retire(self, key: str) -> None:
        self.retired.add(key)


class Workflow:
    def __init__(self, tmp_path: Path, sources: list[FeedSource]) -> None:
        self.tmp_path = tmp_path
        self.sources = sources
        self.state = MemoryState()
        self.snapshots = DirectorySnapshots(tmp_path / "bucket")

    def run(self) -> dict[str, object]:
        """One run: every source once, then Publish."""
        plan = prepare_feed_sync(
            "run", self.sources, state=self.state, lease=timedelta(hours=1), clock=lambda: datetime.now(UTC)
        )
        for index, ref in enumerate(plan.sources):
            sync_one_source(
                "run",
                ref,
                HttpFeedFetcher(self.tmp_path / "downloads" / str(index)),
                state=self.state,
                feeds=self.state,
                snapshots=self.snapshots,
                work_dir=self.tmp_path / "work" / str(index),
            )
        outcome = publish_working_database(
            "run",
            plan.sources,
            state=self.state,
            feeds=self.state,
            snapshots=self.snapshots,
            work_dir=self.tmp_path / "publish",
        )
        return outcome.model_dump(mode="json")

    def published(self) -> Path:
        pointer = self.state.pointer
        assert pointer is not None
        return self.snapshots.root / pointer.location


@pytest.fixture
def feeds(tmp_path: Path) -> tuple[Path, Path]:
    return (
        osv_feed_zip(tmp_path / "npm", MINIMIST_ADVISORY),
        osv_feed_zip(tmp_path / "maven", LOG4J_ADVISORY),
    )


def test_publish_merges_the_sources_and_publishes_nothing_when_none_changed(
    tmp_path: Path, feeds: tuple[Path, Path]
) -> None:
    npm, maven = feeds
    workflow = Workflow(
        tmp_path, [FeedSource.parse(f"osv={npm.as_uri()}"), FeedSource.parse(f"osv={maven.as_uri()}")]
    )

    first = workflow.run()

    assert first["published"] is True and len(first["merged"]) == 2  # type: ignore[arg-type]
    with VulnerabilityDb.open(workflow.published()) as db:
        assert db.affected("npm", ["minimist"]) and db.records("GHSA-jfh8-c2jp-5v3q")
    pointer = workflow.state.pointer
    # Publish alone (no source stepped since): the same databases, nothing new.
    plan_sources = tuple(SourceRef(kind=source.kind.value, url=source.url) for source in workflow.sources)
    again = publish_working_database(
        "run",
        plan_sources,
        state=workflow.state,
        feeds=workflow.state,
        snapshots=workflow.snapshots,
        work_dir=tmp_path / "publish",
    )
    assert again.published is False and workflow.state.pointer == pointer
    assert workflow.state.lease is None


def test_a_source_whose_step_died_on_its_first_run_is_carried_over_from_the_previous_build(
    tmp_path: Path, feeds: tuple[Path, Path]
) -> None:
    npm, maven = feeds
    sources = [FeedSource.parse(f"osv={npm.as_uri()}"), FeedSource.parse(f"osv={maven.as_uri()}")]
    # The database a sequential sync published: both sources in one file, no source databases yet.
    legacy = tmp_path / "legacy" / "vulnerabilities.db"
    sync_feeds(sources, HttpFeedFetcher(tmp_path / "legacy-downloads"), legacy)
    workflow = Workflow(tmp_path, sources)
    with VulnerabilityDb.open(legacy) as db:
        built_at = db.metadata().built_at
    workflow.snapshots.upload("vulndb/legacy.db", legacy)
    workflow.state.pointer = DbPointer(
        location="vulndb/legacy.db",
        sha256=file_sha256(legacy),
        built_at=built_at,
        schema_version=SCHEMA_VERSION,
        record_count=2,
    )

    # The second source's step dies before it ever writes a database of its own: only the first runs.
    plan = prepare_feed_sync("run", sources, state=workflow.state, lease=timedelta(hours=1))
    sync_one_source(
        "run",
        plan.sources[0],
        HttpFeedFetcher(tmp_path / "downloads"),
        state=workflow.state,
        feeds=workflow.state,
        snapshots=workflow.snapshots,
        work_dir=tmp_path / "work",
    )
    published = publish_working_database(
        "run",
        plan.sources,
        state=workflow.state,
        feeds=workflow.state,
        snapshots=workflow.snapshots,
        work_dir=tmp_path / "publish",
    )

    assert published.published is True
    assert published.merged == (sources[0].key,) and published.carried_over == (sources[1].key,)
    with VulnerabilityDb.open(workflow.published()) as db:
        assert db.affected("npm", ["minimist"]) and db.records("GHSA-jfh8-c2jp-5v3q")
        assert {source.key for source in db.metadata().sources} == {sources[0].key, sources[1].key}
    # The first source's database was seeded from the published one and holds that source alone.
    own = workflow.state.get_source_database(sources[0].key)
    assert own is not None
    with VulnerabilityDb.open(workflow.snapshots.root / own.location) as db:
        assert [source.key for source in db.metadata().sources] == [sources[0].key]
    assert "vulndb/legacy.db" in workflow.snapshots.retired


def test_a_lost_source_database_is_carried_over_by_publish_and_rebuilt_by_the_next_step(
    tmp_path: Path, feeds: tuple[Path, Path]
) -> None:
    npm, maven = feeds
    sources = [FeedSource.parse(f"osv={npm.as_uri()}"), FeedSource.parse(f"osv={maven.as_uri()}")]
    workflow = Workflow(tmp_path, sources)
    assert workflow.run()["published"] is True
    lost = workflow.state.get_source_database(sources[1].key)
    assert lost is not None
    (workflow.snapshots.root / lost.location).unlink()  # deleted by hand, or by a lifecycle rule

    plan_sources = tuple(SourceRef(kind=source.kind.value, url=source.url) for source in sources)
    # The first source changes (a new database); the second one's is gone: its rows come from the
    # previous build instead of failing the publish.
    sync_one_source(
        "run",
        plan_sources[0],
        HttpFeedFetcher(tmp_path / "downloads"),
        state=workflow.state,
        feeds=workflow.state,
        snapshots=workflow.snapshots,
        work_dir=tmp_path / "work",
    )
    outcome = publish_working_database(
        "run",
        plan_sources,
        state=workflow.state,
        feeds=workflow.state,
        snapshots=workflow.snapshots,
        work_dir=tmp_path / "publish",
    )
    assert outcome.published is True and outcome.carried_over == (sources[1].key,)
    with VulnerabilityDb.open(workflow.published()) as db:
        assert db.affected("npm", ["minimist"]) and db.records("GHSA-jfh8-c2jp-5v3q")

    # The second source's next step starts over from the published build and writes a new database.
    sync_one_source(
        "run",
        plan_sources[1],
        HttpFeedFetcher(tmp_path / "downloads"),
        state=workflow.state,
        feeds=workflow.state,
        snapshots=workflow.snapshots,
        work_dir=tmp_path / "work",
    )
    rebuilt = workflow.state.get_source_database(sources[1].key)
    assert rebuilt is not None and rebuilt.location != lost.location
    with VulnerabilityDb.open(workflow.snapshots.root / rebuilt.location) as db:
        assert db.records("GHSA-jfh8-c2jp-5v3q")
        assert [source.key for source in db.metadata().sources] == [sources[1].key]
