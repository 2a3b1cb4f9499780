"""OSV parsing against the real sample feeds: all.zip archives, single records, modified_id.csv."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest

from portwarden.core.errors import FeedFormatError
from portwarden.core.model.vulnerability import (
    EventKind,
    FixState,
    RangeEvent,
    RangeType,
    Severity,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.vulns.feeds.osv import iter_modified_ids, iter_osv_zip, parse_osv_json, parse_osv_record
from portwarden.core.vulns.feeds.report import FeedParseReport
from tests.conftest import FIXTURES_DIR

OSV_DIR = FIXTURES_DIR / "feeds-sample" / "osv"
PYPI_ZIP = OSV_DIR / "PyPI" / "all.zip"
GO_ZIP = OSV_DIR / "Go" / "all.zip"
GHSA_DIR = OSV_DIR / "github-advisory-database" / "advisories" / "github-reviewed"


def _events(*pairs: tuple[str, str]) -> tuple[RangeEvent, ...]:
    return tuple(RangeEvent(kind=EventKind(kind), version=version) for kind, version in pairs)


@pytest.fixture(scope="module")
def pypi_records() -> tuple[list[VulnerabilityRecord], FeedParseReport]:
    report = FeedParseReport("osv")
    return list(iter_osv_zip(PYPI_ZIP, report)), report


@pytest.fixture(scope="module")
def go_records() -> tuple[list[VulnerabilityRecord], FeedParseReport]:
    report = FeedParseReport("osv")
    with GO_ZIP.open("rb") as stream:
        return list(iter_osv_zip(stream, report)), report


def _by_id(records: list[VulnerabilityRecord], vuln_id: str) -> VulnerabilityRecord:
    (record,) = [record for record in records if record.id == vuln_id]
    return record


def test_pypi_zip_counts(pypi_records: tuple[list[VulnerabilityRecord], FeedParseReport]) -> None:
    records, report = pypi_records
    assert report.counts["documents"] == 2661
    assert report.errors == 0
    # One withdrawn PYSEC record has only a GIT range and no version list: nothing to match on.
    assert report.counts["no_matchable_affected"] == 1
    assert len(records) == 2660 == report.records
    assert {record.namespace for record in records} == {"pypi"}
    assert report.counts["git_range_skipped"] == 1391


def test_go_zip_counts(go_records: tuple[list[VulnerabilityRecord], FeedParseReport]) -> None:
    records, report = go_records
    assert report.counts["documents"] == 4291
    assert len(records) == 4291
    assert report.errors == 0
    assert report.counts["withdrawn"] == 17
    assert {record.namespace for record in records} == {"go"}
    assert all(span.type is RangeType.SEMVER for r in records for a in r.affected for span in a.ranges)


def test_git_ranges_are_skipped_and_ecosystem_ranges_kept(
    pypi_records: tuple[list[VulnerabilityRecord], FeedParseReport],
) -> None:
    records, _ = pypi_records
    record = _by_id(records, "PYSEC-2021-335")
    (affected,) = record.affected
    # The source has a GIT range (commit hashes) and an ECOSYSTEM range; only the latter survives.
    assert affected.ranges == (
        VersionRange(
            type=RangeType.ECOSYSTEM,
            events=_events(("introduced", "4.0"), ("fixed", "4.3"), ("introduced", "5.0"), ("fixed", "5.2")),
        ),
    )
    assert affected.fix_versions == ("4.3", "5.2")
    assert all(
        len(event.version) < 40 for r in records for a in r.affected for s in a.ranges for event in s.events
    )


def test_known_pysec_record_in_full(pypi_records: tuple[list[VulnerabilityRecord], FeedParseReport]) -> None:
    records, _ = pypi_records
    record = _by_id(records, "PYSEC-2021-9")
    assert record.namespace == "pypi"
    assert record.source == "osv"
    assert record.aliases == ("CVE-2021-3281", "GHSA-fvgf-6h6h-3322")
    assert record.published == datetime(2021, 2, 2, 7, 15, tzinfo=UTC)
    assert record.modified == datetime(2021, 3, 5, 19, 19, tzinfo=UTC)
    assert record.withdrawn is None
    assert record.description is not None and record.description.startswith("In Django 2.2 before 2.2.18")
    # No severity in the PYSEC record: left for NVD to fill.
    assert record.severity is Severity.UNKNOWN and record.severity_source is None
    (affected,) = record.affected
    assert affected.package_name == "django"
    assert affected.version_format == "pypi"
    assert affected.ranges == (
        VersionRange(
            events=_events(
                ("introduced", "2.2"),
                ("fixed", "2.2.18"),
                ("introduced", "3.0"),
                ("fixed", "3.0.12"),
                ("introduced", "3.1"),
                ("fixed", "3.1.6"),
            )
        ),
    )
    assert affected.fix_state is FixState.FIXED
    assert affected.fix_versions == ("2.2.18", "3.0.12", "3.1.6")
    assert len(affected.versions) == 36 and affected.versions[0] == "2.2" and affected.versions[-1] == "3.1.5"


def test_withdrawn_record_is_kept_with_its_date(
    pypi_records: tuple[list[VulnerabilityRecord], FeedParseReport],
) -> None:
    records, report = pypi_records
    record = _by_id(records, "PYSEC-2022-43059")
    assert record.withdrawn == datetime(2023, 11, 8, 0, 54, 24, tzinfo=UTC)
    assert record.affected[0].package_name == "aiohttp"
    # The vector is scored with the cvss package: AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H is 5.5.
    assert [(score.version, score.base_score) for score in record.cvss] == [("3.1", 5.5)]
    assert record.severity is Severity.MEDIUM and record.severity_source == "cvss"
    assert report.counts["withdrawn"] == 9


def test_fix_state_for_last_affected_and_version_lists(
    pypi_records: tuple[list[VulnerabilityRecord], FeedParseReport],
) -> None:
    records, _ = pypi_records
    last_affected = _by_id(records, "PYSEC-2022-42969").affected[0]
    assert last_affected.ranges[0].events == _events(("introduced", "0"), ("last_affected", "1.11.0"))
    assert last_affected.fix_state is FixState.NOT_FIXED
    assert last_affected.fix_versions == ()
    listed_only = _by_id(records, "PYSEC-2024-1").affected[0]
    assert listed_only.ranges == () and listed_only.versions == ("0.5",)
    assert listed_only.fix_state is FixState.UNKNOWN


def test_go_record_with_two_modules(go_records: tuple[list[VulnerabilityRecord], FeedParseReport]) -> None:
    records, _ = go_records
    record = _by_id(records, "GO-2023-2102")
    assert record.aliases == ("CVE-2023-39325", "GHSA-4374-p667-p6c8")
    assert record.cve_ids == ("CVE-2023-39325",)
    stdlib, net = record.affected
    assert stdlib.package_name == "stdlib" and stdlib.version_format == "go"
    assert stdlib.fix_versions == ("1.20.10", "1.21.3")
    assert net.package_name == "golang.org/x/net"
    assert net.ranges == (
        VersionRange(type=RangeType.SEMVER, events=_events(("introduced", "0"), ("fixed", "0.17.0"))),
    )


def test_log4shell_ghsa_in_full() -> None:
    path = GHSA_DIR / "2021" / "12" / "GHSA-jfh8-c2jp-5v3q" / "GHSA-jfh8-c2jp-5v3q.json"
    (record,) = parse_osv_json(path.read_bytes())
    assert record.id == "GHSA-jfh8-c2jp-5v3q"
    assert record.namespace == "maven"
    assert record.aliases == ("CVE-2021-44228",)
    assert record.summary == "Remote code injection in Log4j"
    # database_specific.severity wins over the vector; the vector is still kept and scored.
    assert record.severity is Severity.CRITICAL and record.severity_source == "database_specific"
    (cvss,) = record.cvss
    assert cvss.vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    assert (cvss.version, cvss.base_score, cvss.severity) == ("3.1", 10.0, Severity.CRITICAL)
    assert record.cwes == ("CWE-20", "CWE-400", "CWE-502", "CWE-917")
    assert record.published == datetime(2021, 12, 10, 0, 40, 56, tzinfo=UTC)
    assert "https://nvd.nist.gov/vuln/detail/CVE-2021-44228" in record.urls
    # Three affected entries for one package become one AffectedRange with three ranges.
    (affected,) = record.affected
    assert affected.package_name == "org.apache.logging.log4j:log4j-core"
    assert affected.version_format == "maven"
    assert [span.events for span in affected.ranges] == [
        _events(("introduced", "2.13.0"), ("fixed", "2.15.0")),
        _events(("introduced", "0"), ("fixed", "2.3.1")),
        _events(("introduced", "2.4"), ("fixed", "2.12.2")),
    ]
    assert affected.fix_state is FixState.FIXED
    assert affected.fix_versions == ("2.15.0", "2.3.1", "2.12.2")


@pytest.mark.parametrize(
    ("name", "namespace", "package", "severity"),
    [
        ("GHSA-3fx5-fwvr-xrjg", "npm", "ms", Severity.HIGH),
        ("GHSA-24fg-p96v-hxh8", "rubygems", "rails", Severity.MEDIUM),  # MODERATE
        ("GHSA-hvr8-466p-75rh", "pypi", "pillow", Severity.CRITICAL),
        ("GHSA-wjxc-pjx9-4wvm", "crates.io", "ckb", Severity.HIGH),
        ("GHSA-h7jm-g87p-5935", "nuget", "microsoft.netcore.app.runtime.win-arm64", Severity.HIGH),
        ("GHSA-2jm2-2p35-rp3j", "packagist", "devcode-it/openstamanager", Severity.HIGH),
        ("GHSA-pffg-92cg-xf5c", "go", "github.com/consensys/gnark-crypto", Severity.LOW),
    ],
)
def test_ghsa_ecosystems_map_to_namespaces(
    name: str, namespace: str, package: str, severity: Severity
) -> None:
    (record,) = parse_osv_json((OSV_DIR / "ghsa-misc" / f"{name}.json").read_bytes())
    assert record.namespace == namespace
    assert record.affected[0].package_name == package
    assert record.severity is severity


def test_cvss_v4_vectors_are_scored() -> None:
    (record,) = parse_osv_json((OSV_DIR / "ghsa-misc" / "GHSA-hvr8-466p-75rh.json").read_bytes())
    by_version = {score.version: score for score in record.cvss}
    assert by_version["4.0"].vector.startswith("CVSS:4.0/")
    assert by_version["4.0"].base_score == 9.3
    assert by_version["3.0"].base_score == 9.8


def test_severity_from_vectors_when_no_label() -> None:
    document = {
        "id": "TEST-1",
        "severity": [
            {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}
        ],
        "affected": [{"package": {"ecosystem": "npm", "name": "@Scope/Pkg"}, "versions": ["1.0.0"]}],
    }
    (record,) = parse_osv_record(document)
    assert record.severity is Severity.CRITICAL and record.severity_source == "cvss"
    assert record.affected[0].package_name == "@scope/pkg"


def test_ubuntu_record_splits_per_release_and_uses_priority() -> None:
    path = FIXTURES_DIR / "feeds-sample" / "ubuntu" / "osv" / "osv" / "cve" / "2005"
    records = parse_osv_json((path / "UBUNTU-CVE-2005-1515.json").read_bytes())
    assert [record.namespace for record in records] == [
        "ubuntu:14.04",
        "ubuntu:16.04",
        "ubuntu:18.04",
        "ubuntu:20.04",
    ]
    assert all(
        record.severity is Severity.MEDIUM and record.severity_source == "ubuntu" for record in records
    )
    # Ubuntu names the CVE in "upstream"; it becomes an alias so NVD/KEV/EPSS can join on it.
    assert records[0].cve_ids == ("CVE-2005-1515",)
    pro, public = records[0].affected[0], records[1].affected[0]
    assert pro.package_name == "netqmail" and pro.version_format == "dpkg"
    assert pro.note is not None and "Ubuntu Pro" in pro.note
    assert public.note is None
    assert public.fix_versions == ("1.06-6.2~deb10u1build0.16.04.1",)


def test_distro_ecosystems_map_to_namespaces() -> None:
    document = {
        "id": "TEST-2",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "openssl"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u1"}]}
                ],
                "ecosystem_specific": {"urgency": "high"},
            },
            {
                "package": {"ecosystem": "Alpine:v3.20", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.3.1-r0"}]}],
            },
            {"package": {"ecosystem": "Red Hat:rhel_aus:8.2::appstream", "name": "x"}, "versions": ["1"]},
        ],
    }
    report = FeedParseReport("osv")
    debian, alpine = parse_osv_record(document, report)
    assert (debian.namespace, debian.affected[0].version_format) == ("debian:12", "dpkg")
    assert debian.affected[0].severity is Severity.HIGH
    assert (alpine.namespace, alpine.affected[0].version_format) == ("alpine:3.20", "apk")
    assert report.counts["unsupported_ecosystem"] == 1


def _zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _good(vuln_id: str) -> bytes:
    document: dict[str, Any] = {
        "id": vuln_id,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Some_Package"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}],
            }
        ],
    }
    return json.dumps(document).encode()


def test_malformed_records_are_counted_and_the_rest_parsed() -> None:
    archive = _zip_of(
        {
            "GOOD-1.json": _good("GOOD-1"),
            "BROKEN-JSON.json": b'{"id": "BROKEN-JSON", "affected": [',
            "NO-ID.json": b'{"affected": []}',
            "BAD-SHAPE.json": b'{"id": "BAD-SHAPE", "affected": "everything"}',
            "NOT-AN-OBJECT.json": b"[1, 2, 3]",
            "GOOD-2.json": _good("GOOD-2"),
        }
    )
    report = FeedParseReport("osv")
    records = list(iter_osv_zip(archive, report))
    assert [record.id for record in records] == ["GOOD-1", "GOOD-2"]
    assert records[0].affected[0].package_name == "some-package"  # PEP 503
    assert report.errors == 4
    assert {issue.record_id for issue in report.issues} == {
        "BROKEN-JSON.json",
        "NO-ID.json",
        "BAD-SHAPE.json",
        "NOT-AN-OBJECT.json",
    }


def test_bad_parts_of_a_record_are_warnings() -> None:
    document = {
        "id": "PARTLY-BAD",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:Q"}],
        "affected": [
            {"package": {"ecosystem": "PyPI"}},
            {
                "package": {"ecosystem": "PyPI", "name": "ok"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": ""}, {"bogus": "1"}]}
                ],
            },
        ],
    }
    report = FeedParseReport("osv")
    (record,) = parse_osv_record(document, report)
    assert record.cvss == ()
    assert record.affected[0].ranges[0].events == _events(("introduced", "0"))
    assert record.affected[0].fix_state is FixState.NOT_FIXED
    assert report.warnings == 4  # bad vector, nameless package, two bad events


def test_truncated_zip_raises_a_domain_error() -> None:
    data = PYPI_ZIP.read_bytes()
    with pytest.raises(FeedFormatError, match="truncated or not a zip"):
        list(iter_osv_zip(data[: len(data) // 2]))
    with pytest.raises(FeedFormatError):
        list(iter_osv_zip(b"<html>503 Service Unavailable</html>"))


def test_corrupt_member_raises_a_domain_error() -> None:
    archive = bytearray(_zip_of({"A.json": _good("A") * 50}))
    # Flip bytes inside the compressed data of the only member (after its 30-byte local header + name).
    for offset in range(40, 60):
        archive[offset] ^= 0xFF
    with pytest.raises(FeedFormatError, match="damaged"):
        list(iter_osv_zip(bytes(archive)))


def test_non_seekable_stream_is_accepted() -> None:
    class OneWay(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer: Any) -> int:
            chunk = self._inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    records = list(iter_osv_zip(OneWay(_zip_of({"X.json": _good("X")}))))  # type: ignore[arg-type]
    assert [record.id for record in records] == ["X"]


def test_single_record_errors_are_domain_errors() -> None:
    with pytest.raises(FeedFormatError, match="not a readable JSON"):
        parse_osv_json(b"{nope")
    with pytest.raises(FeedFormatError, match="without an id"):
        parse_osv_record({"affected": []})


def test_modified_id_csv_reads_until_the_cursor() -> None:
    lines = (
        b"2024-10-10T12:00:00Z,GHSA-aaaa-bbbb-cccc\n"
        b"2024-10-09T08:30:00.123Z,PYSEC-2024-99\n"
        b"garbage line\n"
        b"2024-10-01T00:00:00Z,PYSEC-2024-1\n"
        b"2024-09-30T00:00:00Z,PYSEC-2023-7\n"
    )
    report = FeedParseReport("osv")
    since = datetime(2024, 10, 1, tzinfo=UTC)
    entries = list(iter_modified_ids(lines, since, report))
    # The cursor is exclusive: PYSEC-2024-1, stamped exactly at it, was applied by the previous sync.
    assert [entry.id for entry in entries] == ["GHSA-aaaa-bbbb-cccc", "PYSEC-2024-99"]
    assert entries[1].modified == datetime(2024, 10, 9, 8, 30, 0, 123000, tzinfo=UTC)
    assert report.warnings == 1
    assert [entry.id for entry in iter_modified_ids(lines)][-1] == "PYSEC-2023-7"


def test_root_modified_id_csv_carries_the_ecosystem() -> None:
    (entry,) = iter_modified_ids(["2024-10-10T12:00:00Z,crates.io/RUSTSEC-2024-0001"])
    assert (entry.ecosystem, entry.id) == ("crates.io", "RUSTSEC-2024-0001")
