"""Namespaces, name normalization, severity rules and record merging shared by the feed parsers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portwarden.core.model.vulnerability import AffectedRange, FixState, Severity, VulnerabilityRecord
from portwarden.core.vulns.feeds.merge import merge_records
from portwarden.core.vulns.feeds.naming import (
    NamespaceInfo,
    alpine_namespace,
    debian_namespace,
    normalize_package_name,
    osv_namespace,
)
from portwarden.core.vulns.feeds.severity import (
    cvss_score,
    severity_from_cvss,
    severity_from_label,
    severity_from_score,
)


@pytest.mark.parametrize(
    ("ecosystem", "expected"),
    [
        ("PyPI", NamespaceInfo("pypi", "pypi")),
        ("npm", NamespaceInfo("npm", "npm")),
        ("Maven", NamespaceInfo("maven", "maven")),
        ("Go", NamespaceInfo("go", "go")),
        ("RubyGems", NamespaceInfo("rubygems", "rubygems")),
        ("crates.io", NamespaceInfo("crates.io", "crates.io")),
        ("NuGet", NamespaceInfo("nuget", "nuget")),
        ("Packagist", NamespaceInfo("packagist", "packagist")),
        ("Debian:12", NamespaceInfo("debian:12", "dpkg")),
        ("Alpine:v3.20", NamespaceInfo("alpine:3.20", "apk")),
        ("Ubuntu:22.04:LTS", NamespaceInfo("ubuntu:22.04", "dpkg")),
        ("Ubuntu:Pro:16.04:LTS", NamespaceInfo("ubuntu:16.04", "dpkg", "pro")),
        ("Rocky Linux:9", NamespaceInfo("rocky:9", "rpm")),
        ("Wolfi", NamespaceInfo("wolfi:rolling", "apk")),
        ("pypi", None),  # OSV ecosystems are case-sensitive
        ("Debian", None),
        # Red Hat names the repository CPE; only the main stream of a major release is an image's.
        ("Red Hat:enterprise_linux:9::appstream", NamespaceInfo("rhel:9", "rpm")),
        ("Red Hat:enterprise_linux:8::baseos", NamespaceInfo("rhel:8", "rpm")),
        ("Red Hat:rhel_eus:9.4::appstream", None),
        ("AlmaLinux:8", NamespaceInfo("almalinux:8", "rpm")),
        # SUSE files packages under the product or the SLE module that ships them; all are SLES.
        ("SUSE:Linux Enterprise Server 15 SP5", NamespaceInfo("sles:15.5", "rpm")),
        ("SUSE:Linux Enterprise Module for Basesystem 15 SP6", NamespaceInfo("sles:15.6", "rpm")),
        ("SUSE:Linux Enterprise Server 15 SP4-LTSS", NamespaceInfo("sles:15.4", "rpm", "ltss")),
        ("SUSE:Linux Enterprise Server 12", NamespaceInfo("sles:12", "rpm")),
        ("SUSE:Linux Enterprise Micro 5.5", None),
        ("openSUSE:Leap 15.6", NamespaceInfo("opensuse-leap:15.6", "rpm")),
        ("openSUSE:Tumbleweed", NamespaceInfo("opensuse-tumbleweed:rolling", "rpm")),
        ("openSUSE:Leap Micro 5.5", None),
        ("Chainguard", NamespaceInfo("chainguard:rolling", "apk")),
    ],
)
def test_osv_ecosystems(ecosystem: str, expected: NamespaceInfo | None) -> None:
    assert osv_namespace(ecosystem) == expected


def test_distro_release_names() -> None:
    assert debian_namespace("bookworm") == "debian:12"
    assert debian_namespace("trixie") == "debian:13"
    assert debian_namespace("sid") == "debian:unstable"
    assert debian_namespace("potato") is None
    assert alpine_namespace("v3.20") == "alpine:3.20"
    assert alpine_namespace("edge") == "alpine:edge"
    assert alpine_namespace("latest-stable") is None


@pytest.mark.parametrize(
    ("namespace", "name", "normalized"),
    [
        ("pypi", "Django", "django"),
        ("pypi", "zope.interface", "zope-interface"),
        ("pypi", "Foo__Bar-.baz", "foo-bar-baz"),
        ("npm", "@Babel/Core", "@babel/core"),
        ("npm", "lodash", "lodash"),
        ("maven", "org.apache.logging.log4j:log4j-core", "org.apache.logging.log4j:log4j-core"),
        ("maven", "org.apache.logging.log4j/log4j-core", "org.apache.logging.log4j:log4j-core"),
        ("maven", "com.Example:Lib:1.0", "com.example:lib"),
        ("go", "github.com/Sirupsen/logrus", "github.com/Sirupsen/logrus"),
        ("nuget", "Newtonsoft.Json", "newtonsoft.json"),
        ("rubygems", "Rails", "Rails"),
        ("debian:12", "libssl3 ", "libssl3"),
    ],
)
def test_name_normalization(namespace: str, name: str, normalized: str) -> None:
    assert normalize_package_name(namespace, name) == normalized


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("MODERATE", Severity.MEDIUM),
        ("moderate", Severity.MEDIUM),
        ("CRITICAL", Severity.CRITICAL),
        ("high**", Severity.HIGH),
        ("unimportant", Severity.NEGLIGIBLE),
        ("negligible", Severity.NEGLIGIBLE),
        ("important", Severity.HIGH),
        ("not yet assigned", Severity.UNKNOWN),
        ("end-of-life", Severity.UNKNOWN),
        (None, Severity.UNKNOWN),
    ],
)
def test_severity_labels(label: object, severity: Severity) -> None:
    assert severity_from_label(label) is severity


def test_severity_bands() -> None:
    assert severity_from_score("3.1", 0.0) is Severity.NEGLIGIBLE
    assert severity_from_score("3.1", 3.9) is Severity.LOW
    assert severity_from_score("3.1", 4.0) is Severity.MEDIUM
    assert severity_from_score("3.1", 7.0) is Severity.HIGH
    assert severity_from_score("3.1", 9.0) is Severity.CRITICAL
    assert severity_from_score("2.0", 10.0) is Severity.HIGH  # v2 has no Critical band
    assert severity_from_score("4.0", None) is Severity.UNKNOWN


def test_cvss_scoring_and_preference() -> None:
    v31 = cvss_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", source="osv")
    v2 = cvss_score("(AV:N/AC:L/Au:N/C:P/I:P/A:P)", source="osv")
    v4 = cvss_score("CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N", source="osv")
    assert v31 is not None and (v31.version, v31.base_score, v31.severity) == ("3.1", 9.8, Severity.CRITICAL)
    assert v2 is not None and (v2.version, v2.base_score, v2.severity) == ("2.0", 7.5, Severity.HIGH)
    assert v4 is not None and v4.version == "4.0" and v4.severity is Severity.MEDIUM
    assert severity_from_cvss([v2, v4, v31]) is Severity.CRITICAL  # v3.x preferred
    assert severity_from_cvss([v2, v4]) is Severity.MEDIUM  # then v4
    assert severity_from_cvss([]) is Severity.UNKNOWN
    assert cvss_score("CVSS:3.1/AV:N", source="osv") is None
    assert cvss_score("", source="osv") is None
    # A vector the library rejects is kept when the source states version and score (NVD).
    kept = cvss_score("AV:N/AC:L/Au:X", source="nvd@nist.gov", base_score=5.0, version="2.0")
    assert kept is not None and kept.severity is Severity.MEDIUM


def test_severity_rank_orders_the_scale() -> None:
    assert [severity.rank for severity in Severity] == [0, 1, 2, 3, 4, 5]
    assert Severity.CRITICAL.rank > Severity.HIGH.rank > Severity.UNKNOWN.rank


def _record(**changes: object) -> VulnerabilityRecord:
    base = VulnerabilityRecord(
        id="CVE-2099-1",
        namespace="alpine:3.20",
        source="alpine-secdb",
        affected=(
            AffectedRange(
                namespace="alpine:3.20",
                package_name="a",
                version_format="apk",
                fix_state=FixState.FIXED,
                fix_versions=("1-r1",),
            ),
        ),
    )
    return base.model_copy(update=changes)


def test_merge_unions_parts_of_one_identity() -> None:
    other_package = AffectedRange(namespace="alpine:3.20", package_name="b", version_format="apk")
    first = _record(urls=("u1",), modified=datetime(2024, 1, 1, tzinfo=UTC))
    second = _record(
        urls=("u1", "u2"),
        aliases=("XSA-1",),
        severity=Severity.HIGH,
        severity_source="cvss",
        modified=datetime(2024, 6, 1, tzinfo=UTC),
        withdrawn=datetime(2024, 6, 1, tzinfo=UTC),
        affected=(*first.affected, other_package),
    )
    elsewhere = _record(namespace="alpine:3.19")
    merged = merge_records([first, elsewhere, second])
    assert [(record.id, record.namespace) for record in merged] == [
        ("CVE-2099-1", "alpine:3.20"),
        ("CVE-2099-1", "alpine:3.19"),
    ]
    combined = merged[0]
    assert combined.urls == ("u1", "u2")
    assert combined.aliases == ("XSA-1",)
    assert [affected.package_name for affected in combined.affected] == ["a", "b"]
    assert (combined.severity, combined.severity_source) == (Severity.HIGH, "cvss")
    assert combined.modified == datetime(2024, 6, 1, tzinfo=UTC)
    assert combined.withdrawn is None  # one part is still live


def test_records_serialize_to_json_rows() -> None:
    record = _record()
    row = record.affected[0].model_dump(mode="json")
    assert row["fix_state"] == "fixed" and row["fix_versions"] == ["1-r1"]
    assert AffectedRange.model_validate(row) == record.affected[0]
    assert VulnerabilityRecord.model_validate_json(record.model_dump_json()) == record
