"""Every feed download is bounded: by a per-kind size limit, and by the free space of the work directory.

``file:///dev/zero`` is the endless source of the fault this guards against: it has no size to announce,
so only the bounded copy can stop it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.core.errors import FeedUnavailableError
from portwarden.core.services.sync_feeds import (
    DEFAULT_DOWNLOAD_LIMITS,
    FeedSource,
    SyncOptions,
    sync_feeds,
)
from portwarden.core.vulns.db import FeedKind, SourceStatus, VulnerabilityDb
from tests.conftest import FIXTURES_DIR

MIB = 1024 * 1024
ZERO = "file:///dev/zero"
TRACKER = FIXTURES_DIR / "feeds-sample" / "debian" / "vunnel-fixtures" / "debian.json"


def test_endless_file_stops_at_the_limit_and_leaves_nothing(tmp_path: Path) -> None:
    fetcher = HttpFeedFetcher(tmp_path / "work")
    with pytest.raises(FeedUnavailableError) as caught:
        fetcher.fetch(ZERO, max_bytes=3 * MIB)
    assert str(caught.value).startswith(ZERO)
    assert "download limit of 3.0 MiB" in str(caught.value)
    assert list((tmp_path / "work").iterdir()) == []


def test_regular_file_above_the_limit_is_refused_before_copying(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 * MIB))
    copied: list[Path] = []

    class Watching(HttpFeedFetcher):
        def _new_body(self):  # type: ignore[no-untyped-def]
            handle, path = super()._new_body()
            copied.append(path)
            return handle, path

    with pytest.raises(FeedUnavailableError, match=r"2\.0 MiB is larger than the download limit of 1\.0 MiB"):
        Watching(tmp_path / "work").fetch(big.as_uri(), max_bytes=MIB)
    assert copied == []  # refused on the file's size: nothing was written
    # At the limit exactly it is fine.
    fetched = HttpFeedFetcher(tmp_path / "work").fetch(big.as_uri(), max_bytes=2 * MIB)
    assert fetched.path is not None and Path(fetched.path).stat().st_size == 2 * MIB


def test_too_little_free_space_is_refused_before_writing(tmp_path: Path) -> None:
    document = tmp_path / "debian.json"
    shutil.copy(TRACKER, document)
    size = document.stat().st_size
    fetcher = HttpFeedFetcher(
        tmp_path / "work", min_free_bytes=10 * MIB, disk_free=lambda _: 10 * MIB + size - 1
    )
    with pytest.raises(FeedUnavailableError, match="not enough free disk space") as caught:
        fetcher.fetch(document.as_uri())
    assert str(tmp_path / "work") in str(caught.value) and "reserve of 10.0 MiB" in str(caught.value)
    assert list((tmp_path / "work").iterdir()) == []
    roomy = HttpFeedFetcher(tmp_path / "work", min_free_bytes=10 * MIB, disk_free=lambda _: 10 * MIB + size)
    assert roomy.fetch(document.as_uri()).path is not None


def test_free_space_is_watched_while_writing(tmp_path: Path) -> None:
    # The endless source announces no size; the disk fills while it is copied.
    answers = iter([1024 * MIB, 1024 * MIB, 100 * MIB])
    fetcher = HttpFeedFetcher(tmp_path / "work", min_free_bytes=200 * MIB, disk_free=lambda _: next(answers))
    with pytest.raises(FeedUnavailableError, match="not enough free disk space"):
        fetcher.fetch(ZERO)  # no size limit at all: only the free-space watch stops it
    assert list((tmp_path / "work").iterdir()) == []


def test_sync_caps_each_kind_and_keeps_the_previous_rows(tmp_path: Path) -> None:
    database = tmp_path / "db" / "vulnerability.db"
    fetcher = HttpFeedFetcher(tmp_path / "work")
    mirror = tmp_path / "mirror" / "debian.json"
    mirror.parent.mkdir()
    shutil.copy(TRACKER, mirror)
    tracker = FeedSource(kind=FeedKind.DEBIAN, url=mirror.as_uri())
    first = sync_feeds([tracker], fetcher, database)
    count = first.outcomes[0].record_count
    assert count > 0

    # The mirror now points at an endless file: the download stops at the Debian limit, not at a full disk.
    mirror.unlink()
    mirror.symlink_to("/dev/zero")
    options = SyncOptions(download_limits={FeedKind.DEBIAN: 4 * MIB})
    (outcome,) = sync_feeds([tracker], fetcher, database, options=options).outcomes
    assert outcome.status is SourceStatus.FAILED
    assert outcome.error is not None and mirror.as_uri() in outcome.error and "4.0 MiB" in outcome.error
    assert outcome.record_count == count  # the previous rows were kept
    assert list((tmp_path / "work").iterdir()) == []
    with VulnerabilityDb.open(database) as db:
        assert db.metadata().vulnerability_count == count


def test_default_limits_cover_every_kind_generously() -> None:
    assert set(DEFAULT_DOWNLOAD_LIMITS) == set(FeedKind)
    # Real documents: OSV's largest all.zip is a few hundred MB, the Debian tracker JSON about 80 MB.
    assert DEFAULT_DOWNLOAD_LIMITS[FeedKind.OSV] >= 2048 * MIB
    assert DEFAULT_DOWNLOAD_LIMITS[FeedKind.DEBIAN] >= 512 * MIB
    options = SyncOptions(download_limits={FeedKind.KEV: MIB})
    assert options.download_limit(FeedKind.KEV) == MIB
    assert options.download_limit(FeedKind.EPSS) == DEFAULT_DOWNLOAD_LIMITS[FeedKind.EPSS]
