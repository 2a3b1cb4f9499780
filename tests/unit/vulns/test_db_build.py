"""The vulnerability database file: build, publish atomically, open read-only, query, carry over."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portwarden.core.errors import VulnerabilityDatabaseError
from portwarden.core.model.vulnerability import (
    AffectedRange,
    CvssScore,
    EpssScore,
    EventKind,
    FixState,
    KevEntry,
    NvdRecord,
    RangeEvent,
    Severity,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.vulns.db import (
    SCHEMA_VERSION,
    DbBuilder,
    FeedKind,
    SourceState,
    SourceStatus,
    VulnerabilityDb,
)

BUILT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def fixed_range(namespace: str, name: str, fixed: str, version_format: str = "pypi") -> AffectedRange:
    return AffectedRange(
        namespace=namespace,
        package_name=name,
        version_format=version_format,
        ranges=(
            VersionRange(
                events=(
                    RangeEvent(kind=EventKind.INTRODUCED, version="0"),
                    RangeEvent(kind=EventKind.FIXED, version=fixed),
                )
            ),
        ),
        fix_state=FixState.FIXED,
        fix_versions=(fixed,),
    )


def record(vuln_id: str, namespace: str, name: str, fixed: str, **extra: object) -> VulnerabilityRecord:
    return VulnerabilityRecord(
        id=vuln_id,
        namespace=namespace,
        source="osv",
        affected=(fixed_range(namespace, name, fixed),),
        **extra,  # type: ignore[arg-type]
    )


def state(key: str, kind: FeedKind = FeedKind.OSV, **extra: object) -> SourceState:
    fields: dict[str, object] = {"status": SourceStatus.UPDATED, **extra}
    return SourceState(key=key, kind=kind, url=key.split("|", 1)[1], **fields)  # type: ignore[arg-type]


def build(path: Path, feeds: dict[str, list[VulnerabilityRecord]], previous: Path | None = None) -> None:
    with DbBuilder(path, previous=previous, clock=lambda: BUILT) as builder:
        for feed, records in feeds.items():
            with builder.source_transaction():
                builder.add_records(feed, records)
            builder.set_source_state(state(feed, etag='"v1"', record_count=len(records)))
        builder.publish()


def test_build_open_and_query(tmp_path: Path) -> None:
    path = tmp_path / "db" / "vulnerability.db"
    cvss = CvssScore(version="3.1", vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", base_score=7.5)
    build(
        path,
        {
            "osv|http://x/PyPI/all.zip": [
                record("PYSEC-1", "pypi", "django", "4.2.1", aliases=("CVE-2023-1",), cvss=(cvss,)),
                record("PYSEC-2", "pypi", "flask", "2.0"),
            ]
        },
    )
    with VulnerabilityDb.open(path) as db:
        metadata = db.metadata()
        assert metadata.schema_version == SCHEMA_VERSION
        assert metadata.built_at == BUILT
        assert metadata.record_counts["vulnerabilities"] == 2
        assert metadata.record_counts["affected"] == 2
        (source,) = metadata.sources
        assert source.etag == '"v1"' and source.kind is FeedKind.OSV
        assert [(g.name, g.record_count) for g in metadata.groups] == [("pypi", 2)]

        (row,) = db.affected("pypi", ["django", "not-there"])
        assert row.vuln_id == "PYSEC-1" and row.fix_versions == ("4.2.1",)
        assert row.ranges == (("ECOSYSTEM", ({"introduced": "0"}, {"fixed": "4.2.1"})),)
        assert db.affected("npm", ["django"]) == []

        stored = db.vulnerability(row.feed, "PYSEC-1", "pypi")
        assert stored is not None
        assert stored.aliases == ("CVE-2023-1",) and stored.cvss == (cvss,) and stored.source == "osv"


def test_published_file_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "vulnerability.db"
    build(path, {"osv|u": [record("A", "pypi", "a", "1")]})
    with VulnerabilityDb.open(path) as db, pytest.raises(sqlite3.OperationalError):
        db._db.execute("DELETE FROM vulnerabilities")


def test_failed_build_keeps_previous_database(tmp_path: Path) -> None:
    path = tmp_path / "vulnerability.db"
    build(path, {"osv|u": [record("A", "pypi", "a", "1")]})
    before = path.read_bytes()
    with pytest.raises(RuntimeError), DbBuilder(path, previous=path) as builder:
        builder.add_records("osv|u", [record("B", "pypi", "b", "1")])
        raise RuntimeError("sync crashed half-way")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vulnerability.db"]  # no build file left behind
    with VulnerabilityDb.open(path) as db:
        assert [r.vuln_id for r in db.affected("pypi", ["a", "b"])] == ["A"]


def test_source_transaction_rolls_back_partial_writes(tmp_path: Path) -> None:
    path = tmp_path / "vulnerability.db"
    with DbBuilder(path) as builder:
        with pytest.raises(ValueError), builder.source_transaction():
            builder.add_records("osv|bad", [record("X", "pypi", "x", "1")])
            raise ValueError("truncated archive")
        builder.add_records("osv|good", [record("Y", "pypi", "y", "1")])
        metadata = builder.publish()
    assert metadata.record_counts["vulnerabilities"] == 1
    with VulnerabilityDb.open(path) as db:
        assert [r.vuln_id for r in db.affected("pypi", ["x", "y"])] == ["Y"]


def test_carry_over_copies_one_feed_from_the_previous_build(tmp_path: Path) -> None:
    path = tmp_path / "vulnerability.db"
    build(path, {"osv|a": [record("A", "pypi", "a", "1")], "osv|b": [record("B", "npm", "b", "1")]})
    with DbBuilder(path, previous=path) as builder:
        assert set(builder.previous_states) == {"osv|a", "osv|b"}
        assert builder.carry_over("osv|a") == 1
        builder.add_records("osv|b", [record("B2", "npm", "b", "2")])
        builder.set_source_state(builder.previous_states["osv|a"])
        builder.set_source_state(state("osv|b"))
        builder.publish()
    with VulnerabilityDb.open(path) as db:
        assert [r.vuln_id for r in db.affected("pypi", ["a"])] == ["A"]
        assert [r.vuln_id for r in db.affected("npm", ["b"])] == ["B2"]


def test_withdrawn_records_are_stored_but_never_matched(tmp_path: Path) -> None:
    path = tmp_path / "vulnerability.db"
    build(path, {"osv|u": [record("W", "pypi", "w", "1", withdrawn=BUILT)]})
    with VulnerabilityDb.open(path) as db:
        assert db.affected("pypi", ["w"]) == []
        assert [row.id for row in db.records("W")] == ["W"]


def test_delete_records_replaces_an_advisory(tmp_path: Path) -> None:
    path = tmp_path / "vulnerability.db"
    build(path, {"osv|u": [record("A", "pypi", "a", "1"), record("B", "pypi", "b", "1")]})
    with DbBuilder(path, previous=path) as builder:
        builder.carry_over("osv|u")
        builder.delete_records("osv|u", ["A"])
        builder.add_records("osv|u", [record("A", "pypi", "a", "2")])
        builder.publish()
    with VulnerabilityDb.open(path) as db:
        rows = db.affected("pypi", ["a", "b"])
        assert sorted((r.vuln_id, r.fix_versions) for r in rows) == [("A", ("2",)), ("B", ("1",))]


def test_enrichment_tables(tmp_path: Path) -> None:
    path = tmp_path / "vulnerability.db"
    with DbBuilder(path) as builder:
        builder.add_nvd(
            "nvd|u",
            [
                NvdRecord(id="CVE-1", severity=Severity.HIGH),
                NvdRecord(id="CVE-2", vuln_status="Rejected", severity=Severity.LOW),
            ],
        )
        builder.replace_kev("kev|u", [KevEntry(cve_id="CVE-1", product="thing")])
        builder.replace_epss("epss|u", [EpssScore(cve_id="CVE-1", epss=0.5, percentile=0.9)])
        for key, kind in (("nvd|u", FeedKind.NVD), ("kev|u", FeedKind.KEV), ("epss|u", FeedKind.EPSS)):
            builder.set_source_state(state(key, kind))
        metadata = builder.publish()
    assert {(g.name, g.record_count) for g in metadata.groups} == {("nvd", 1), ("kev", 1), ("epss", 1)}
    with VulnerabilityDb.open(path) as db:
        assert db.nvd(["CVE-1", "CVE-2"])["CVE-1"].severity is Severity.HIGH
        assert "CVE-2" not in db.nvd(["CVE-2"])
        assert db.kev(["CVE-1", "CVE-9"]) == {"CVE-1"}
        assert db.kev_entries(["CVE-1"])["CVE-1"].product == "thing"
        assert db.epss(["CVE-1"]) == {"CVE-1": (0.5, 0.9)}


def test_open_rejects_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(VulnerabilityDatabaseError, match="no vulnerability database"):
        VulnerabilityDb.open(tmp_path / "absent.db")
    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE metadata (key TEXT, value TEXT)")
    connection.execute("INSERT INTO metadata VALUES ('schema_version', '999')")
    connection.commit()
    connection.close()
    with pytest.raises(VulnerabilityDatabaseError, match="schema version 999"):
        VulnerabilityDb.open(other)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(VulnerabilityDatabaseError):
        VulnerabilityDb.open(garbage)


def test_a_source_without_rows_still_shows_its_error(tmp_path: Path) -> None:
    path = tmp_path / "vulnerability.db"
    with DbBuilder(path) as builder:
        builder.set_source_state(
            state("debian|u", FeedKind.DEBIAN, status=SourceStatus.FAILED, last_error="HTTP 500")
        )
        metadata = builder.publish()
    (group,) = metadata.groups
    assert group.record_count == 0 and group.last_error == "HTTP 500" and group.kind is FeedKind.DEBIAN
