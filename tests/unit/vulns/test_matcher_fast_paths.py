"""The matcher's fast paths give the same results as the plain ones.

Matches are assembled without pydantic validation, range evaluations and record views are cached,
the cyclic garbage collector is paused during a match, and the database stores the reported fields of
a record in columns of their own. Each test here pins one of those to the behaviour it replaces.
"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from portwarden.core.model.match import Match, MatchCvss, MatchDetail, MatchedPackage, MatchFix
from portwarden.core.model.package import Location, Package, PackageType
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
from portwarden.core.vulns.matcher import Matcher
from portwarden.core.vulns.matching import construct
from portwarden.core.vulns.versions.semver import split_semver_like

PUBLISHED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
CVSS = CvssScore(
    version="3.1", vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", base_score=9.8, source="osv"
)


def pypi_range(name: str, *events: tuple[str, str], **extra: object) -> AffectedRange:
    fixed = tuple(version for kind, version in events if kind == "fixed")
    return AffectedRange(
        namespace="pypi",
        package_name=name,
        version_format="pypi",
        ranges=(VersionRange(events=tuple(RangeEvent(kind=EventKind(k), version=v) for k, v in events)),),
        fix_state=FixState.FIXED if fixed else FixState.NOT_FIXED,
        fix_versions=fixed,
        **extra,  # type: ignore[arg-type]
    )


def advisory(vuln_id: str, *affected: AffectedRange, **extra: object) -> VulnerabilityRecord:
    return VulnerabilityRecord(
        id=vuln_id,
        namespace="pypi",
        source="osv",
        affected=affected,
        **extra,  # type: ignore[arg-type]
    )


RECORDS = [
    advisory(
        "GHSA-aaaa-0001",
        pypi_range("demo", ("introduced", "1.0"), ("fixed", "1.4"), ("introduced", "2.0"), ("fixed", "2.3")),
        aliases=("CVE-2024-0001",),
        summary="Demo overflow",
        description="A longer description of the demo overflow.",
        cvss=(CVSS,),
        urls=("https://example.test/a", "https://example.test/b"),
        published=PUBLISHED,
        cwes=("CWE-787",),
    ),
    # States the same issue through a second CVE id: bridges the two records below into one issue.
    advisory(
        "PYSEC-2024-1",
        pypi_range("demo", ("introduced", "0"), ("fixed", "2.3")),
        aliases=("CVE-2024-0001", "CVE-2024-0002"),
    ),
    advisory("OSV-2024-2", pypi_range("demo", ("introduced", "0")), aliases=("CVE-2024-0002",)),
    advisory(
        "PYSEC-2024-9",
        pypi_range("other", ("introduced", "0"), ("last_affected", "3.0")),
        description="Only a description.",
    ),
    # A bound the PEP 440 comparator cannot parse: the match is flagged.
    advisory("PYSEC-2024-10", pypi_range("legacy", ("introduced", "0.1-doduo"), ("fixed", "1.0"))),
]


def state(key: str, kind: FeedKind) -> SourceState:
    return SourceState(key=key, kind=kind, url=key.split("|", 1)[1], status=SourceStatus.UPDATED)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "vulnerability.db"
    with DbBuilder(path) as builder:
        builder.add_records("osv|u", RECORDS)
        builder.add_nvd(
            "nvd|u",
            [
                NvdRecord(
                    id="CVE-2024-0002",
                    severity=Severity.MEDIUM,
                    cvss=(CvssScore(version="3.1", vector="CVSS:3.1/AV:L", base_score=5.5, source="nvd"),),
                )
            ],
        )
        builder.replace_kev("kev|u", [KevEntry(cve_id="CVE-2024-0002")])
        builder.replace_epss("epss|u", [EpssScore(cve_id="CVE-2024-0001", epss=0.5, percentile=0.75)])
        for key, kind in (
            ("osv|u", FeedKind.OSV),
            ("nvd|u", FeedKind.NVD),
            ("kev|u", FeedKind.KEV),
            ("epss|u", FeedKind.EPSS),
        ):
            builder.set_source_state(state(key, kind))
        builder.publish()
    return path


@pytest.fixture
def matcher(database: Path) -> Iterator[Matcher]:
    with VulnerabilityDb.open(database) as db:
        yield Matcher(db)


def package(name: str, version: str) -> Package:
    return Package(
        name=name,
        version=version,
        type=PackageType.PYTHON,
        found_by="test",
        locations=(Location(path=f"/app/{name}"),),
    )


PACKAGES = [
    package("demo", "1.2"),
    package("demo", "2.1"),
    package("other", "3.0"),
    package("legacy", "0.5"),
    package("unaffected", "1.0"),
]


def test_assembled_models_are_the_validated_models() -> None:
    values = {
        "matcher": "python-matcher",
        "namespace": "pypi",
        "searched_by": "package-name:demo",
        "constraint": ">= 1.0, < 1.4",
        "version_format": "pypi",
        "fallback_ordering": False,
    }
    detail = construct.complete(MatchDetail, dict(values))
    validated_detail = MatchDetail(**values)  # type: ignore[arg-type]
    # MatchFix leaves out its trailing default (available_since), as the matcher does.
    fix = construct.trusted(MatchFix, {"state": FixState.FIXED, "versions": ("1.4",)})
    validated_fix = MatchFix(state=FixState.FIXED, versions=("1.4",))
    cvss = construct.trusted(
        MatchCvss, {"version": "3.1", "vector": "CVSS:3.1/AV:N", "score": 9.8, "source": "osv"}
    )
    matched = MatchedPackage(name="demo", version="1.2", type="python", purl=None, location="/app/demo")
    match_values = {
        "id": "GHSA-aaaa-0001",
        "aliases": ("CVE-2024-0001",),
        "severity": Severity.CRITICAL,
        "cvss": (cvss,),
        "fix": fix,
        "package": matched,
        "namespace": "pypi",
        "urls": ("https://example.test/a",),
        "description": "Demo overflow",
        "published": PUBLISHED,
        "kev": False,
        "epss": 0.5,
        "epss_percentile": 0.75,
        "matched_by": detail,
    }
    assembled = construct.complete(Match, dict(match_values))
    validated = Match(
        **{**match_values, "fix": validated_fix, "matched_by": validated_detail}  # type: ignore[arg-type]
    )

    assert assembled == validated
    assert hash(assembled) == hash(validated)
    assert assembled.model_dump() == validated.model_dump()
    assert assembled.model_dump_json() == validated.model_dump_json()
    assert assembled.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    assert fix.model_fields_set == validated_fix.model_fields_set == {"state", "versions"}
    assert fix.available_since is None
    assert Match.model_validate_json(assembled.model_dump_json()) == assembled

    # Frozen like any validated instance, and copies leave the original alone.
    with pytest.raises(ValidationError):
        assembled.kev = True  # type: ignore[misc]
    copied = assembled.model_copy(update={"kev": True})
    assert copied.kev is True and assembled.kev is False
    assert assembled.model_fields_set == set(match_values)


def test_every_match_is_what_validation_would_build(matcher: Matcher) -> None:
    matches = matcher.match(PACKAGES, None)
    assert matches
    for match in matches:
        revalidated = Match.model_validate(match.model_dump())
        assert revalidated == match
        assert revalidated.model_dump_json() == match.model_dump_json()


def test_statements_bridged_by_aliases_are_one_finding(matcher: Matcher) -> None:
    (match,) = matcher.match([package("demo", "1.2")], None)
    # GHSA-aaaa-0001 and OSV-2024-2 share no name; PYSEC-2024-1 aliases both CVEs and joins them.
    assert match.id == "GHSA-aaaa-0001"
    assert set(match.aliases) == {"CVE-2024-0001", "CVE-2024-0002", "PYSEC-2024-1", "OSV-2024-2"}
    assert match.kev is True  # through CVE-2024-0002, a statement merged into this finding
    assert match.fix.state is FixState.FIXED and match.fix.versions == ("1.4",)
    assert match.matched_by.constraint == ">= 1.0, < 1.4, >= 2.0, < 2.3"
    assert {(c.vector, c.source) for c in match.cvss} == {
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "osv"),
        ("CVSS:3.1/AV:L", "nvd"),
    }


def test_the_interval_decides_the_fix(matcher: Matcher) -> None:
    matches = {m.id: m for m in matcher.match([package("demo", "2.1")], None)}
    assert matches["GHSA-aaaa-0001"].fix.versions == ("2.3",)


def test_repeated_matches_are_identical(matcher: Matcher) -> None:
    # The second round is served from the row, evaluation and record-view caches.
    first = matcher.match(PACKAGES, None)
    second = matcher.match(PACKAGES, None)
    assert [m.model_dump_json() for m in first] == [m.model_dump_json() for m in second]


def test_a_fresh_matcher_on_the_same_file_agrees(matcher: Matcher, database: Path) -> None:
    expected = [m.model_dump_json() for m in matcher.match(PACKAGES, None)]
    with VulnerabilityDb.open(database) as db:
        assert [m.model_dump_json() for m in Matcher(db).match(PACKAGES, None)] == expected


def test_unparsable_bounds_and_last_affected(matcher: Matcher) -> None:
    matches = {m.package.name: m for m in matcher.match(PACKAGES, None)}
    assert matches["legacy"].matched_by.fallback_ordering is True
    assert matches["legacy"].matched_by.constraint == ">= 0.1-doduo, < 1.0"
    assert matches["demo"].matched_by.fallback_ordering is False
    assert matches["other"].matched_by.constraint == "<= 3.0"
    assert matches["other"].fix.state is FixState.NOT_FIXED
    assert matches["other"].description == "Only a description."
    assert "unaffected" not in matches


def test_garbage_collector_state_is_restored(matcher: Matcher) -> None:
    assert gc.isenabled()
    matcher.match(PACKAGES, None)
    assert gc.isenabled()
    gc.disable()
    try:
        matcher.match(PACKAGES, None)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_reported_fields_round_trip_through_their_columns(database: Path) -> None:
    with VulnerabilityDb.open(database) as db:
        assert db.metadata().schema_version == SCHEMA_VERSION == 3
        assert db.plans_usable
        stored = db.vulnerability("osv|u", "GHSA-aaaa-0001", "pypi")
        assert stored is not None
        assert stored.aliases == ("CVE-2024-0001",)
        assert stored.summary == "Demo overflow"
        assert stored.description == "A longer description of the demo overflow."
        assert stored.cvss == (CVSS,)
        assert stored.urls == ("https://example.test/a", "https://example.test/b")
        assert stored.published == PUBLISHED
        assert stored.cve_ids == ("CVE-2024-0001",)
        bare = db.vulnerability("osv|u", "PYSEC-2024-9", "pypi")
        assert bare is not None
        assert (bare.aliases, bare.summary, bare.cvss, bare.urls, bare.published) == ((), None, (), (), None)
        # Rows of several names come back by name, and a name without rows is left out.
        by_name = db.affected_by_name("pypi", ["demo", "other", "nothing", "demo"])
        assert sorted(by_name) == ["demo", "other"]
        assert sorted(row.vuln_id for row in by_name["demo"]) == [
            "GHSA-aaaa-0001",
            "OSV-2024-2",
            "PYSEC-2024-1",
        ]
        (other,) = by_name["other"]
        assert other.ranges == (("ECOSYSTEM", ({"introduced": "0"}, {"last_affected": "3.0"})),)
        assert other.fix_versions == () and other.versions == ()
        # The rest of the record (CWEs, dates) is kept in the document column.
        (document,) = db._db.execute(
            "SELECT document FROM vulnerabilities WHERE id = 'GHSA-aaaa-0001'"
        ).fetchone()
        assert '"cwes":["CWE-787"]' in document


def test_the_opened_database_refuses_writes(database: Path) -> None:
    with VulnerabilityDb.open(database) as db, pytest.raises(sqlite3.OperationalError):
        db._db.execute("DELETE FROM affected")


@pytest.mark.parametrize(
    ("version", "components", "expected"),
    [
        ("1..2", 3, ((1, 2, 0), "")),
        ("v1.2.3.4-rc1", 3, ((1, 2, 3), ".4-rc1")),
        ("1.2.3.4-rc1", 4, ((1, 2, 3, 4), "-rc1")),
        ("1.21rc2", 3, ((1, 21, 0), "rc2")),
        ("1.0.0.alpha", 3, ((1, 0, 0), "alpha")),
        (".5", 3, ((5, 0, 0), "")),
        ("", 3, ((0, 0, 0), "")),
        ("V2+build.5", 3, ((2, 0, 0), "+build.5")),
        ("1.٣", 3, ((1, 0, 0), "٣")),  # only ASCII digits are numbers
    ],
)
def test_semver_split(version: str, components: int, expected: tuple[tuple[int, ...], str]) -> None:
    assert split_semver_like(version, components) == expected
