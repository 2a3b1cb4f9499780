"""Matching rules: namespaces, source packages, name normalization, fix states, severity, enrichment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.model.distro import Distro
from portwarden.core.model.match import Match
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
from portwarden.core.vulns.db import DbBuilder, VulnerabilityDb
from portwarden.core.vulns.matcher import Matcher
from portwarden.core.vulns.namespaces import distro_namespace

DEBIAN_12 = Distro(id="debian", version_id="12.5", version_codename="bookworm")
ALPINE_320 = Distro(id="alpine", version_id="3.20.3")
ROCKY_9 = Distro(id="rocky", version_id="9.4")


def span(*events: tuple[str, str]) -> VersionRange:
    return VersionRange(
        events=tuple(RangeEvent(kind=EventKind(kind), version=version) for kind, version in events)
    )


def affected(
    namespace: str, name: str, version_format: str, *ranges: VersionRange, **extra: Any
) -> AffectedRange:
    fixed = tuple(e.version for r in ranges for e in r.events if e.kind is EventKind.FIXED)
    fields: dict[str, Any] = {
        "fix_state": FixState.FIXED if fixed else FixState.NOT_FIXED,
        "fix_versions": fixed,
        **extra,
    }
    return AffectedRange(
        namespace=namespace, package_name=name, version_format=version_format, ranges=ranges, **fields
    )


def vuln(vuln_id: str, *entries: AffectedRange, source: str = "osv", **extra: Any) -> VulnerabilityRecord:
    return VulnerabilityRecord(
        id=vuln_id, namespace=entries[0].namespace, source=source, affected=entries, **extra
    )


def pkg(name: str, version: str, package_type: PackageType, **metadata: Any) -> Package:
    purl = metadata.pop("purl", None)
    return Package(
        name=name,
        version=version,
        type=package_type,
        purl=purl,
        found_by="test",
        locations=(Location(path=f"/lib/{name}"),),
        metadata=metadata,
    )


RECORDS = [
    # Debian tracker style: by source package, fixed / not-fixed / wont-fix, per-package urgency.
    vuln(
        "CVE-2023-5363",
        affected("debian:12", "openssl", "dpkg", span(("introduced", "0"), ("fixed", "3.0.11-1~deb12u2"))),
        source="debian-tracker",
    ),
    vuln(
        "CVE-2010-0928",
        affected("debian:12", "openssl", "dpkg", span(("introduced", "0")), severity=Severity.NEGLIGIBLE),
        source="debian-tracker",
        severity=Severity.NEGLIGIBLE,
        severity_source="debian",
    ),
    vuln(
        "CVE-2023-45853",
        affected(
            "debian:12",
            "zlib",
            "dpkg",
            span(("introduced", "0")),
            fix_state=FixState.WONT_FIX,
            note="ignored",
        ),
        source="debian-tracker",
    ),
    # An advisory that names the binary package.
    vuln(
        "CVE-2099-0001",
        affected("debian:12", "libfoo1", "dpkg", span(("introduced", "0"), ("fixed", "2.0-1"))),
    ),
    vuln(
        "CVE-2024-0001",
        affected("alpine:3.20", "openssl", "apk", span(("introduced", "0"), ("fixed", "3.3.2-r0"))),
    ),
    vuln(
        "RLSA-2024:1",
        affected("rocky:9", "openssl", "rpm", span(("introduced", "0"), ("fixed", "1:3.0.7-27.el9"))),
    ),
    # Language ecosystems.
    vuln(
        "GHSA-pypi-0001",
        affected("pypi", "zope-interface", "pypi", span(("introduced", "0"), ("fixed", "5.0"))),
        aliases=("CVE-2020-1111",),
        severity=Severity.HIGH,
        severity_source="database_specific",
    ),
    vuln(
        "PYSEC-2020-1",
        affected("pypi", "zope-interface", "pypi", span(("introduced", "0"), ("fixed", "5.0"))),
        aliases=("CVE-2020-1111", "GHSA-pypi-0001"),
    ),
    vuln(
        "GHSA-log4j",
        affected(
            "maven",
            "org.apache.logging.log4j:log4j-core",
            "maven",
            span(("introduced", "2.0-beta9"), ("fixed", "2.3.1")),
            span(("introduced", "2.4"), ("fixed", "2.12.2")),
            span(("introduced", "2.13.0"), ("fixed", "2.15.0")),
        ),
        aliases=("CVE-2021-44228",),
    ),
    vuln(
        "GO-2023-1",
        affected("go", "github.com/Sirupsen/logrus", "go", span(("introduced", "0"), ("fixed", "1.9.0"))),
    ),
    vuln(
        "GHSA-npm-scope",
        affected("npm", "@babel/traverse", "npm", span(("introduced", "0"), ("fixed", "7.23.2"))),
    ),
    vuln(
        "GHSA-open-interval",
        affected(
            "npm",
            "legacy",
            "npm",
            span(("introduced", "0"), ("fixed", "1.0.0")),
            span(("introduced", "2.0.0")),
        ),
    ),
    vuln(
        "GHSA-versions-list",
        affected("npm", "listed", "npm", versions=("1.2.3",), fix_state=FixState.UNKNOWN),
    ),
    vuln(
        "GHSA-crate",
        affected("crates.io", "smallvec", "crates.io", span(("introduced", "0"), ("fixed", "1.6.1"))),
    ),
    vuln(
        "GHSA-withdrawn",
        affected("npm", "legacy", "npm", span(("introduced", "0"))),
        withdrawn=datetime(2024, 1, 1, tzinfo=UTC),
    ),
]


@pytest.fixture(scope="module")
def matcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matcher]:
    path = tmp_path_factory.mktemp("db") / "vulnerability.db"
    with DbBuilder(path) as builder:
        builder.add_records("test|records", RECORDS)
        builder.add_nvd(
            "nvd|u",
            [
                NvdRecord(
                    id="CVE-2023-5363",
                    severity=Severity.HIGH,
                    cvss=(
                        CvssScore(
                            version="3.1",
                            vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
                            base_score=7.5,
                            source="nvd@nist.gov",
                        ),
                    ),
                ),
                NvdRecord(id="CVE-2010-0928", severity=Severity.MEDIUM),
                NvdRecord(id="CVE-2020-1111", severity=Severity.LOW),
            ],
        )
        builder.replace_kev("kev|u", [KevEntry(cve_id="CVE-2021-44228")])
        builder.replace_epss("epss|u", [EpssScore(cve_id="CVE-2021-44228", epss=0.97, percentile=0.999)])
        builder.publish()
    with VulnerabilityDb.open(path) as db:
        yield Matcher(db)


def by_id(matches: list[Match]) -> dict[str, Match]:
    return {match.id: match for match in matches}


def test_dpkg_matches_through_the_source_package(matcher: Matcher) -> None:
    libssl = pkg(
        "libssl3",
        "3.0.11-1~deb12u1",
        PackageType.DEB,
        source_name="openssl",
        source_version="3.0.11-1~deb12u1",
    )
    found = by_id(matcher.match([libssl], DEBIAN_12))
    fixed = found["CVE-2023-5363"]
    assert fixed.fix.state is FixState.FIXED and fixed.fix.versions == ("3.0.11-1~deb12u2",)
    assert fixed.namespace == "debian:12" and fixed.package.name == "libssl3"
    assert fixed.matched_by.matcher == "dpkg-matcher"
    assert fixed.matched_by.searched_by == "source-package:openssl"
    assert fixed.matched_by.constraint == "< 3.0.11-1~deb12u2"
    assert fixed.matched_by.fallback_ordering is False
    assert found["CVE-2010-0928"].fix.state is FixState.NOT_FIXED

    patched = pkg(
        "libssl3",
        "3.0.11-1~deb12u2",
        PackageType.DEB,
        source_name="openssl",
        source_version="3.0.11-1~deb12u2",
    )
    assert "CVE-2023-5363" not in by_id(matcher.match([patched], DEBIAN_12))


def test_wont_fix_state_is_reported(matcher: Matcher) -> None:
    zlib = pkg(
        "zlib1g", "1:1.2.13.dfsg-1", PackageType.DEB, source_name="zlib", source_version="1:1.2.13.dfsg-1"
    )
    (match,) = matcher.match([zlib], DEBIAN_12)
    assert match.id == "CVE-2023-45853" and match.fix.state is FixState.WONT_FIX and match.fix.versions == ()


def test_binary_name_is_searched_when_it_differs_from_the_source(matcher: Matcher) -> None:
    libfoo = pkg("libfoo1", "1.0-1", PackageType.DEB, source_name="foo", source_version="1.0-1")
    (match,) = matcher.match([libfoo], DEBIAN_12)
    assert match.id == "CVE-2099-0001" and match.matched_by.searched_by == "binary-package:libfoo1"
    # No source recorded at all: the binary name is the only name there is.
    bare = pkg("libfoo1", "1.0-1", PackageType.DEB)
    assert [m.id for m in matcher.match([bare], DEBIAN_12)] == ["CVE-2099-0001"]


def test_os_packages_need_the_right_distro_namespace(matcher: Matcher) -> None:
    libssl = pkg("libssl3", "3.0.11-1~deb12u1", PackageType.DEB, source_name="openssl")
    assert matcher.match([libssl], Distro(id="debian", version_id="11")) == []
    assert matcher.match([libssl], None) == []


def test_apk_matches_through_origin(matcher: Matcher) -> None:
    libcrypto = pkg(
        "libcrypto3", "3.3.1-r0", PackageType.APK, source_name="openssl", source_version="3.3.1-r0"
    )
    (match,) = matcher.match([libcrypto], ALPINE_320)
    assert match.id == "CVE-2024-0001" and match.matched_by.matcher == "apk-matcher"
    assert match.namespace == "alpine:3.20"


def test_rpm_matches_through_source_rpm(matcher: Matcher) -> None:
    libs = pkg(
        "openssl-libs",
        "1:3.0.7-25.el9",
        PackageType.RPM,
        source_name="openssl",
        source_version="1:3.0.7-25.el9",
    )
    (match,) = matcher.match([libs], ROCKY_9)
    assert match.id == "RLSA-2024:1" and match.fix.versions == ("1:3.0.7-27.el9",)


def test_pypi_names_are_pep503_normalized_and_aliases_merge(matcher: Matcher) -> None:
    package = pkg("Zope.Interface", "4.7.1", PackageType.PYTHON)
    (match,) = matcher.match([package], None)
    # GHSA and PYSEC state the same issue (shared aliases): one finding, the GHSA id, the other as alias.
    assert match.id == "GHSA-pypi-0001"
    assert set(match.aliases) == {"CVE-2020-1111", "PYSEC-2020-1"}
    assert match.matched_by.searched_by == "package-name:zope-interface"
    # The ecosystem's own severity wins over NVD's.
    assert match.severity is Severity.HIGH


def test_maven_is_matched_by_group_and_artifact_with_kev_and_epss(matcher: Matcher) -> None:
    by_metadata = pkg("log4j-core", "2.14.1", PackageType.JAVA_ARCHIVE, group_id="org.apache.logging.log4j")
    by_purl = pkg(
        "log4j-core",
        "2.14.1",
        PackageType.JAVA_ARCHIVE,
        purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
    )
    no_group = pkg("log4j-core", "2.14.1", PackageType.JAVA_ARCHIVE)
    matches = matcher.match([by_metadata, by_purl, no_group], None)
    assert len(matches) == 2
    match = matches[0]
    assert match.id == "GHSA-log4j" and match.kev is True
    assert match.epss == pytest.approx(0.97) and match.epss_percentile == pytest.approx(0.999)
    # The fix is the one closing the interval the version is in (2.13.0 - 2.15.0), not every fix.
    assert match.fix.versions == ("2.15.0",)
    assert (
        matcher.match(
            [pkg("log4j-core", "2.12.2", PackageType.JAVA_ARCHIVE, group_id="org.apache.logging.log4j")], None
        )
        == []
    )


def test_go_module_paths_are_case_sensitive(matcher: Matcher) -> None:
    assert [
        m.id
        for m in matcher.match([pkg("github.com/Sirupsen/logrus", "v1.8.1", PackageType.GO_MODULE)], None)
    ] == ["GO-2023-1"]
    assert matcher.match([pkg("github.com/sirupsen/logrus", "v1.8.1", PackageType.GO_MODULE)], None) == []
    assert matcher.match([pkg("github.com/Sirupsen/logrus", "(devel)", PackageType.GO_MODULE)], None) == []


def test_npm_scopes_and_case(matcher: Matcher) -> None:
    (match,) = matcher.match([pkg("@Babel/Traverse", "7.22.0", PackageType.NPM)], None)
    assert match.id == "GHSA-npm-scope" and match.matched_by.matcher == "javascript-matcher"


def test_an_open_interval_is_not_fixed_even_if_another_interval_is(matcher: Matcher) -> None:
    (early,) = matcher.match([pkg("legacy", "0.5.0", PackageType.NPM)], None)
    assert early.fix.state is FixState.FIXED and early.fix.versions == ("1.0.0",)
    (late,) = matcher.match([pkg("legacy", "2.5.0", PackageType.NPM)], None)
    assert late.fix.state is FixState.NOT_FIXED and late.fix.versions == ()
    assert late.matched_by.constraint == ">= 2.0.0"
    # Between the intervals: not affected. The withdrawn advisory (every version) never matches.
    assert matcher.match([pkg("legacy", "1.5.0", PackageType.NPM)], None) == []


def test_explicit_versions_list(matcher: Matcher) -> None:
    (match,) = matcher.match([pkg("listed", "1.2.3", PackageType.NPM)], None)
    assert match.fix.state is FixState.UNKNOWN and match.matched_by.constraint == "= 1.2.3"
    assert matcher.match([pkg("listed", "1.2.4", PackageType.NPM)], None) == []


def test_unparsable_version_is_flagged_not_fatal(matcher: Matcher) -> None:
    odd = pkg(
        "libssl3", "not a version!", PackageType.DEB, source_name="openssl", source_version="not a version!"
    )
    matches = by_id(matcher.match([odd], DEBIAN_12))
    # Unparsable versions sort before every version: "fixed in X" counts them as affected, flagged.
    assert matches["CVE-2023-5363"].matched_by.fallback_ordering is True
    assert matches["CVE-2023-5363"].fix.state is FixState.FIXED


def test_severity_precedence_and_cvss(matcher: Matcher) -> None:
    libssl = pkg(
        "libssl3",
        "3.0.11-1~deb12u1",
        PackageType.DEB,
        source_name="openssl",
        source_version="3.0.11-1~deb12u1",
    )
    found = by_id(matcher.match([libssl], DEBIAN_12))
    # No distro severity: NVD's fills in, and its CVSS is kept.
    filled = found["CVE-2023-5363"]
    assert filled.severity is Severity.HIGH
    assert [(c.version, c.score, c.source) for c in filled.cvss] == [("3.1", 7.5, "nvd@nist.gov")]
    # Debian's urgency (per package) wins over NVD's Medium.
    assert found["CVE-2010-0928"].severity is Severity.NEGLIGIBLE


def test_results_are_sorted_most_severe_first(matcher: Matcher) -> None:
    packages = [
        pkg(
            "libssl3",
            "3.0.11-1~deb12u1",
            PackageType.DEB,
            source_name="openssl",
            source_version="3.0.11-1~deb12u1",
        ),
        pkg(
            "zlib1g", "1:1.2.13.dfsg-1", PackageType.DEB, source_name="zlib", source_version="1:1.2.13.dfsg-1"
        ),
    ]
    severities = [m.severity.rank for m in matcher.match(packages, DEBIAN_12)]
    assert severities == sorted(severities, reverse=True) and len(severities) == 3


@pytest.mark.parametrize(
    ("distro", "namespace"),
    [
        (Distro(id="debian", version_id="12.5"), "debian:12"),
        (Distro(id="debian", version_codename="trixie"), "debian:13"),
        (Distro(id="debian"), "debian:unstable"),
        (Distro(id="ubuntu", version_id="22.04"), "ubuntu:22.04"),
        (Distro(id="alpine", version_id="3.20.3"), "alpine:3.20"),
        (Distro(id="alpine", version_id="3.21.0_alpha20240807"), "alpine:edge"),
        (Distro(id="rhel", version_id="9.4"), "rhel:9"),
        (Distro(id="centos", version_id="7"), "rhel:7"),
        (Distro(id="rocky", version_id="9.4"), "rocky:9"),
        (Distro(id="almalinux", version_id="8.10"), "almalinux:8"),
        (Distro(id="ol", version_id="8.9"), "ol:8"),
        (Distro(id="amzn", version_id="2023"), "amzn:2023"),
        (Distro(id="sles", version_id="15.5"), "sles:15.5"),
        (Distro(id="wolfi", version_id="20230201"), "wolfi:rolling"),
        (Distro(id="busybox", version_id="1.36.1"), None),
    ],
)
def test_distro_namespaces(distro: Distro, namespace: str | None) -> None:
    assert distro_namespace(distro) == namespace


def test_matches_of_a_shared_database_file_path(tmp_path: Path) -> None:
    # The matcher reads only through the opened database: a copy elsewhere (a Lambda's /tmp) works alike.
    source = tmp_path / "a.db"
    with DbBuilder(source) as builder:
        builder.add_records("f", [RECORDS[0]])
        builder.publish()
    copy = tmp_path / "copy" / "vulnerability.db"
    copy.parent.mkdir()
    copy.write_bytes(source.read_bytes())
    with VulnerabilityDb.open(copy) as db:
        libssl = pkg("libssl3", "3.0.0-1", PackageType.DEB, source_name="openssl", source_version="3.0.0-1")
        assert [m.id for m in Matcher(db).match([libssl], DEBIAN_12)] == ["CVE-2023-5363"]
