"""A database with damaged pages: named in a clear error wherever it fails, and rebuilt by the next sync."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.core.errors import VulnerabilityDatabaseError
from portwarden.core.model.package import Package, PackageType
from portwarden.core.services.sync_feeds import FeedSource, sync_feeds
from portwarden.core.vulns.db import DamagedDatabaseError, FeedKind, SourceStatus, VulnerabilityDb
from portwarden.core.vulns.db.reader import integrity_problem
from portwarden.core.vulns.matcher import Matcher
from tests.conftest import FIXTURES_DIR

PYPI_ZIP = FIXTURES_DIR / "feeds-sample" / "osv" / "PyPI" / "all.zip"
PAGE = 16384


def _synced(tmp_path: Path) -> tuple[Path, FeedSource, int]:
    mirror = tmp_path / "mirror" / "all.zip"
    mirror.parent.mkdir()
    shutil.copy(PYPI_ZIP, mirror)
    source = FeedSource(kind=FeedKind.OSV, url=mirror.as_uri())
    database = tmp_path / "db" / "vulnerability.db"
    result = sync_feeds([source], HttpFeedFetcher(tmp_path / "work"), database)
    return database, source, result.outcomes[0].record_count


def _damage(path: Path, first_page: int, last_page: int) -> None:
    """Overwrite whole pages with garbage, as a disk fault would."""
    with path.open("r+b") as handle:
        for page in range(first_page, last_page):
            handle.seek(page * PAGE)
            handle.write(bytes([0xA5]) * PAGE)


def _packages(database: Path) -> list[Package]:
    connection = sqlite3.connect(database)
    try:
        names = [row[0] for row in connection.execute("SELECT DISTINCT package_name FROM affected")]
    finally:
        connection.close()
    return [Package(name=name, version="0.0.1", type=PackageType.PYTHON, found_by="t") for name in names]


def test_queries_on_damaged_pages_name_the_file(tmp_path: Path) -> None:
    database, _, _ = _synced(tmp_path)
    packages = _packages(database)
    pages = database.stat().st_size // PAGE
    assert pages > 40
    # The schema and the first pages of every table stay readable, the data in the middle does not:
    # opening works, matching reads the damage.
    _damage(database, pages // 4, pages * 3 // 4)
    with VulnerabilityDb.open(database) as db, pytest.raises(DamagedDatabaseError) as caught:
        Matcher(db).match(packages, None)
    message = str(caught.value)
    assert str(database) in message and "damaged" in message and "feed sync rebuilds it" in message
    assert "malformed" in message
    assert integrity_problem(database) is not None


def test_open_runs_the_integrity_check_when_it_fails(tmp_path: Path) -> None:
    database, _, _ = _synced(tmp_path)
    # Every page but the file header: the schema itself is unreadable.
    _damage(database, 1, database.stat().st_size // PAGE)
    with pytest.raises(VulnerabilityDatabaseError) as caught:
        VulnerabilityDb.open(database)
    assert isinstance(caught.value, DamagedDatabaseError)
    assert str(database) in str(caught.value)


def test_sync_rebuilds_a_damaged_database(tmp_path: Path) -> None:
    database, source, count = _synced(tmp_path)
    pages = database.stat().st_size // PAGE
    _damage(database, pages // 4, pages * 3 // 4)
    # The first pages, metadata included, are intact: the damage shows only in the data pages. A sync
    # that copied from the file would fail half-way; this one checks it first and starts over.
    result = sync_feeds([source], HttpFeedFetcher(tmp_path / "work"), database)
    assert result.previous_database_problem is not None
    assert str(database) in result.previous_database_problem
    (outcome,) = result.outcomes
    assert outcome.status is SourceStatus.UPDATED and outcome.record_count == count
    assert integrity_problem(database) is None
    with VulnerabilityDb.open(database) as db:
        assert db.metadata().vulnerability_count == count
        requests_pkg = Package(name="requests", version="2.3.0", type=PackageType.PYTHON, found_by="t")
        assert "PYSEC-2023-74" in {match.id for match in Matcher(db).match([requests_pkg], None)}


def test_sync_rebuilds_a_database_it_cannot_open(tmp_path: Path) -> None:
    database, source, count = _synced(tmp_path)
    _damage(database, 1, database.stat().st_size // PAGE)
    result = sync_feeds([source], HttpFeedFetcher(tmp_path / "work"), database)
    assert result.previous_database_problem is not None and "damaged" in result.previous_database_problem
    assert result.outcomes[0].record_count == count
    assert integrity_problem(database) is None


def test_a_healthy_database_passes_the_check(tmp_path: Path) -> None:
    database, _, _ = _synced(tmp_path)
    assert integrity_problem(database) is None
    result = sync_feeds([], HttpFeedFetcher(tmp_path / "work"), database)
    assert result.previous_database_problem is None
    assert result.metadata.sources[0].status is SourceStatus.KEPT
