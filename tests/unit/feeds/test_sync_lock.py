"""One build of a database at a time, with real threads that would overlap without the lock.

Without it, two syncs both start from the same previous database and the one that publishes last
drops the other's sources while both report success.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.core.ports import FetchedFeed
from portwarden.core.services.sync_feeds import FeedSource, SyncOptions, SyncResult, sync_feeds
from portwarden.core.vulns.db import FeedKind, VulnerabilityDb
from portwarden.core.vulns.db.lock import BuildLock, BuildLockTimeoutError, remove_stale_builds
from tests.conftest import FIXTURES_DIR

SAMPLES = FIXTURES_DIR / "feeds-sample"


class GatedFetcher(HttpFeedFetcher):
    """Says when a sync is downloading, and can hold it there until told to go on."""

    def __init__(
        self, work_dir: Path, *, entered: threading.Event, hold: threading.Event | None = None
    ) -> None:
        super().__init__(work_dir)
        self.entered = entered
        self.hold = hold

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> FetchedFeed:
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(timeout=30)
        return super().fetch(
            url, etag=etag, last_modified=last_modified, params=params, headers=headers, max_bytes=max_bytes
        )


def _mirror(tmp_path: Path) -> tuple[FeedSource, FeedSource]:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(SAMPLES / "debian" / "vunnel-fixtures" / "debian.json", mirror / "debian.json")
    shutil.copy(SAMPLES / "alpine" / "secdb-json" / "v3.11" / "main.json", mirror / "alpine-main.json")
    return (
        FeedSource(kind=FeedKind.DEBIAN, url=(mirror / "debian.json").as_uri()),
        FeedSource(kind=FeedKind.ALPINE, url=(mirror / "alpine-main.json").as_uri()),
    )


def test_a_second_sync_waits_and_keeps_the_first_ones_sources(tmp_path: Path) -> None:
    database = tmp_path / "db" / "vulnerability.db"
    debian, alpine = _mirror(tmp_path)
    first_inside, second_inside, release_first = threading.Event(), threading.Event(), threading.Event()
    waits: list[str] = []
    results: dict[str, SyncResult] = {}
    errors: list[BaseException] = []

    def run(name: str, source: FeedSource, fetcher: HttpFeedFetcher) -> None:
        try:
            results[name] = sync_feeds([source], fetcher, database, on_wait=waits.append)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    first = threading.Thread(
        target=run,
        args=("first", debian, GatedFetcher(tmp_path / "w1", entered=first_inside, hold=release_first)),
    )
    second = threading.Thread(
        target=run, args=("second", alpine, GatedFetcher(tmp_path / "w2", entered=second_inside))
    )
    first.start()
    assert first_inside.wait(timeout=30)  # the first sync is building, held at its download
    second.start()
    # Without the lock the second sync would be downloading within this second; with it, it waits.
    overlapped = second_inside.wait(timeout=1.5)
    release_first.set()
    first.join(timeout=60)
    second.join(timeout=60)
    assert not errors, errors
    assert not overlapped, "the second sync built while the first one was building"
    assert len(waits) == 1 and "process" in waits[0]
    # The second built on what the first published: both sources are in the final database.
    with VulnerabilityDb.open(database) as db:
        kinds = {state.kind for state in db.metadata().sources}
        groups = {group.name for group in db.metadata().groups}
    assert kinds == {FeedKind.DEBIAN, FeedKind.ALPINE}
    assert "alpine:3.11" in groups and any(name.startswith("debian:") for name in groups)
    assert {o.source.kind for o in results["second"].outcomes} == {FeedKind.ALPINE}
    assert {s.kind for s in results["second"].metadata.sources} == {FeedKind.DEBIAN, FeedKind.ALPINE}


def test_many_concurrent_syncs_lose_no_source(tmp_path: Path) -> None:
    """Eight threads at once, each with its own source: every source survives in the end."""
    database = tmp_path / "vulnerability.db"
    base = SAMPLES / "alpine" / "secdb-json-derived"
    branches = sorted(path.name for path in base.iterdir() if (path / "main.json").is_file())[:8]
    assert len(branches) >= 4
    sources = [
        FeedSource(kind=FeedKind.ALPINE, url=(base / branch / "main.json").as_uri()) for branch in branches
    ]
    start = threading.Barrier(len(sources))
    errors: list[BaseException] = []

    def run(index: int, source: FeedSource) -> None:
        try:
            start.wait(timeout=30)
            sync_feeds([source], HttpFeedFetcher(tmp_path / f"w{index}"), database)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in enumerate(sources)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with VulnerabilityDb.open(database) as db:
        assert {state.url for state in db.metadata().sources} == {source.url for source in sources}


def test_lock_timeout_names_the_holder(tmp_path: Path) -> None:
    database = tmp_path / "vulnerability.db"
    with (
        BuildLock(database),
        pytest.raises(BuildLockTimeoutError, match="another feed sync is building") as caught,
    ):
        sync_feeds([], HttpFeedFetcher(tmp_path / "w"), database, options=SyncOptions(lock_timeout=0))
    assert str(database) in str(caught.value) and "process" in str(caught.value)
    # Released: the next one goes through.
    assert sync_feeds([], HttpFeedFetcher(tmp_path / "w"), database, options=SyncOptions(lock_timeout=0))


def test_lock_excludes_threads_of_one_process(tmp_path: Path) -> None:
    """A counter updated read-modify-write under the lock by many threads loses no increment."""
    database = tmp_path / "vulnerability.db"
    counter = tmp_path / "counter"
    counter.write_text("0")
    inside = 0
    most_inside = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most_inside
        for _ in range(25):
            with BuildLock(database):
                with guard:
                    inside += 1
                    most_inside = max(most_inside, inside)
                value = int(counter.read_text())
                threading.Event().wait(0.001)  # let the others run between the read and the write
                counter.write_text(str(value + 1))
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert int(counter.read_text()) == 150
    assert most_inside == 1


def test_stale_builds_are_removed_only_under_the_lock(tmp_path: Path) -> None:
    database = tmp_path / "db" / "vulnerability.db"
    database.parent.mkdir()
    stale = database.with_name("vulnerability.db.build-0123456789ab")
    stale.write_bytes(b"x" * 4096)
    other = database.with_name("other.db.build-0123456789ab")  # another database's build: not ours
    other.write_bytes(b"x")
    work = tmp_path / "work"
    work.mkdir()
    leftover = work / "feed-abc123"
    leftover.write_bytes(b"partial download")
    debian, _ = _mirror(tmp_path)
    sync_feeds([debian], HttpFeedFetcher(work), database)
    assert not stale.exists() and not leftover.exists()
    assert other.exists()
    assert remove_stale_builds(database) == 0
