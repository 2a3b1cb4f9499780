"""Debian security tracker and Alpine secdb parsing against the real sample files."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pytest
import yaml

from portwarden.core.errors import FeedFormatError
from portwarden.core.model.vulnerability import EventKind, FixState, RangeEvent, Severity, VulnerabilityRecord
from portwarden.core.vulns.feeds._jsonstream import iter_object_members
from portwarden.core.vulns.feeds.alpine_secdb import parse_alpine_secdb, records_from_secdb
from portwarden.core.vulns.feeds.debian_tracker import iter_debian_tracker
from portwarden.core.vulns.feeds.merge import merge_records
from portwarden.core.vulns.feeds.report import FeedParseReport
from tests.conftest import FIXTURES_DIR

SAMPLES = FIXTURES_DIR / "feeds-sample"
DEBIAN_VUNNEL = SAMPLES / "debian" / "vunnel-fixtures" / "debian.json"
DEBIAN_VULNERABLECODE = SAMPLES / "debian" / "vulnerablecode-fixtures" / "debian.json"
ALPINE = SAMPLES / "alpine"


def _index(records: list[VulnerabilityRecord]) -> dict[tuple[str, str], VulnerabilityRecord]:
    return {(record.id, record.namespace): record for record in records}


def test_debian_tracker_counts_and_namespaces() -> None:
    report = FeedParseReport("debian-tracker")
    with DEBIAN_VUNNEL.open("rb") as stream:
        records = list(iter_debian_tracker(stream, report))
    assert len(records) == 21 == report.records
    assert report.errors == 0
    assert report.counts["not_affected"] == 4  # CVE-2007-2383: fixed_version "0" in four releases
    assert report.counts["no_release_data"] == 1  # chromium-browser's "releases": []
    assert {record.namespace for record in records} == {
        "debian:8",
        "debian:9",
        "debian:10",
        "debian:11",
        "debian:12",
        "debian:13",
        "debian:unstable",
    }
    assert not any(record.id == "CVE-2007-2383" for record in records)


def test_debian_resolved_is_fixed_with_its_version_and_urgency() -> None:
    records = _index(list(iter_debian_tracker(DEBIAN_VUNNEL.read_bytes())))
    record = records[("CVE-2008-7220", "debian:10")]
    assert record.source == "debian-tracker"
    assert record.severity is Severity.HIGH and record.severity_source == "debian"  # "high**"
    assert record.description is not None and record.description.startswith("Unspecified vulnerability")
    assert record.urls == ("https://security-tracker.debian.org/tracker/CVE-2008-7220",)
    (affected,) = record.affected
    assert affected.package_name == "prototypejs"
    assert affected.version_format == "dpkg"
    assert affected.fix_state is FixState.FIXED
    assert affected.fix_versions == ("1.6.0.2-1",)
    assert affected.ranges[0].events == (
        RangeEvent(kind=EventKind.INTRODUCED, version="0"),
        RangeEvent(kind=EventKind.FIXED, version="1.6.0.2-1"),
    )
    # Per-release fixed versions are kept apart.
    assert records[("CVE-2022-0456", "debian:11")].affected[0].fix_versions == ("98.0.4758.80-1~deb11u1",)
    assert records[("CVE-2022-0456", "debian:12")].affected[0].fix_versions == ("98.0.4758.80-1",)
    # "not yet assigned" is no severity: NVD fills it later.
    assert records[("CVE-2022-0456", "debian:12")].severity is Severity.UNKNOWN


def test_debian_open_states() -> None:
    vunnel = _index(list(iter_debian_tracker(DEBIAN_VUNNEL.read_bytes())))
    end_of_life = vunnel[("CVE-2022-0456", "debian:10")].affected[0]
    assert end_of_life.fix_state is FixState.WONT_FIX and end_of_life.note == "end-of-life"
    assert end_of_life.ranges[0].events == (RangeEvent(kind=EventKind.INTRODUCED, version="0"),)

    vulnerablecode = _index(list(iter_debian_tracker(DEBIAN_VULNERABLECODE.read_bytes())))
    no_dsa = vulnerablecode[("CVE-2014-8242", "debian:10")]
    (affected,) = no_dsa.affected
    # A plain no-dsa ("Minor issue") is left to a point release: not fixed yet, not "won't fix".
    assert affected.fix_state is FixState.NOT_FIXED
    assert affected.fix_versions == ()
    assert affected.note == "no-dsa: Minor issue, too instrusive to backport"
    assert no_dsa.severity is Severity.LOW
    # The same CVE is fixed in bookworm but no-dsa in bullseye.
    assert vulnerablecode[("CVE-2021-37231", "debian:12")].affected[0].fix_state is FixState.FIXED
    assert vulnerablecode[("CVE-2021-37231", "debian:11")].affected[0].fix_state is FixState.NOT_FIXED
    # Debian's temporary ids are records like any other.
    assert vulnerablecode[("TEMP-0000000-A2EB44", "debian:9")].affected[0].fix_versions == ("1.3.3",)


def _tracker(
    releases: dict[str, dict[str, Any]], package: str = "pkg", vuln_id: str = "CVE-2099-0001"
) -> bytes:
    return json.dumps({package: {vuln_id: {"description": "d", "releases": releases}}}).encode()


@pytest.mark.parametrize(
    ("release", "fix_state", "fix_versions", "severity"),
    [
        (
            {"status": "resolved", "fixed_version": "1.2-1", "urgency": "medium"},
            FixState.FIXED,
            ("1.2-1",),
            "Medium",
        ),
        ({"status": "resolved", "urgency": "low"}, FixState.UNKNOWN, (), "Low"),
        ({"status": "open", "urgency": "unimportant"}, FixState.NOT_FIXED, (), "Negligible"),
        (
            {"status": "open", "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": ""},
            FixState.NOT_FIXED,
            (),
            "Low",
        ),
        ({"status": "open", "urgency": "low", "nodsa_reason": "ignored"}, FixState.WONT_FIX, (), "Low"),
        ({"status": "open", "urgency": "high", "nodsa_reason": "postponed"}, FixState.NOT_FIXED, (), "High"),
        ({"status": "open", "urgency": "end-of-life"}, FixState.WONT_FIX, (), "Unknown"),
        ({"status": "undetermined", "urgency": "not yet assigned"}, FixState.UNKNOWN, (), "Unknown"),
    ],
)
def test_each_debian_status_maps_to_a_fix_state(
    release: dict[str, Any], fix_state: FixState, fix_versions: tuple[str, ...], severity: str
) -> None:
    (record,) = iter_debian_tracker(_tracker({"bookworm": release}))
    assert record.namespace == "debian:12"
    (affected,) = record.affected
    assert affected.fix_state is fix_state
    assert affected.fix_versions == fix_versions
    assert record.severity == severity


def test_debian_not_affected_produces_nothing() -> None:
    report = FeedParseReport("debian-tracker")
    records = list(
        iter_debian_tracker(_tracker({"trixie": {"status": "resolved", "fixed_version": "0"}}), report)
    )
    assert records == []
    assert report.counts["not_affected"] == 1


def test_debian_record_gathers_all_source_packages_of_an_id() -> None:
    document = {
        "firefox-esr": {"CVE-2099-1": {"releases": {"bookworm": {"status": "open", "urgency": "high"}}}},
        "thunderbird": {
            "CVE-2099-1": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "1:2"}}}
        },
    }
    (record,) = iter_debian_tracker(json.dumps(document).encode())
    assert [(a.package_name, a.fix_state) for a in record.affected] == [
        ("firefox-esr", FixState.NOT_FIXED),
        ("thunderbird", FixState.FIXED),
    ]
    assert record.severity is Severity.HIGH
    assert record.affected[0].severity is Severity.HIGH and record.affected[1].severity is None


def test_debian_unknown_release_and_bad_entries_are_reported() -> None:
    document = {
        "pkg": {
            "CVE-2099-2": {"releases": {"potato": {"status": "open"}, "bookworm": {"status": "open"}}},
            "CVE-2099-3": "not an object",
        },
        "other": ["not", "an", "object"],
    }
    report = FeedParseReport("debian-tracker")
    records = list(iter_debian_tracker(json.dumps(document).encode(), report))
    assert [(record.id, record.namespace) for record in records] == [("CVE-2099-2", "debian:12")]
    assert report.counts["unknown_release"] == 1
    assert report.errors == 2


def test_debian_tracker_is_streamed_in_small_chunks_and_gzip() -> None:
    data = DEBIAN_VUNNEL.read_bytes()
    members = list(iter_object_members(io.BytesIO(data), "test", chunk_chars=7))
    assert [key for key, _ in members] == list(json.loads(data))
    assert dict(members) == json.loads(data)
    from_gzip = list(iter_debian_tracker(gzip.compress(data)))
    assert from_gzip == list(iter_debian_tracker(data))


@pytest.mark.parametrize(
    "broken", [b"", b"[]", b'{"pkg": {"CVE-1": ', b'{"pkg": {}} trailing', b'{"a": 1 "b": 2}']
)
def test_debian_tracker_broken_documents_raise(broken: bytes) -> None:
    if broken == b'{"pkg": {}} trailing':
        # Content after the closing brace is ignored: the object itself is complete.
        assert list(iter_debian_tracker(broken)) == []
        return
    with pytest.raises(FeedFormatError):
        list(iter_debian_tracker(broken))


def test_alpine_secdb_json_excerpt() -> None:
    report = FeedParseReport("alpine-secdb")
    records = _index(parse_alpine_secdb((ALPINE / "secdb-json" / "v3.11" / "main.json").read_bytes(), report))
    assert report.records == 5 and report.errors == 0
    assert set(records) == {
        ("XSA-248", "alpine:3.11"),
        ("XSA-252", "alpine:3.11"),
        ("CVE-2018-7540", "alpine:3.11"),
        ("CVE-2017-9669", "alpine:3.11"),
        ("CVE-2017-9671", "alpine:3.11"),
    }
    # "CVE-2018-7540 XSA-252" is one issue under two names.
    combined = records[("CVE-2018-7540", "alpine:3.11")]
    assert combined.aliases == ("XSA-252",)
    (affected,) = combined.affected
    assert (affected.package_name, affected.version_format) == ("xen", "apk")
    assert affected.fix_state is FixState.FIXED and affected.fix_versions == ("4.10.0-r2",)
    assert affected.ranges[0].events == (
        RangeEvent(kind=EventKind.INTRODUCED, version="0"),
        RangeEvent(kind=EventKind.FIXED, version="4.10.0-r2"),
    )
    assert combined.severity is Severity.UNKNOWN
    assert records[("CVE-2017-9669", "alpine:3.11")].affected[0].package_name == "apk-tools"


def test_alpine_not_affected_key_and_empty_file() -> None:
    report = FeedParseReport("alpine-secdb")
    document = yaml.safe_load((ALPINE / "alpine-secdb-yaml" / "v3.8" / "main.yaml").read_text())
    records = _index(records_from_secdb(document, report))
    # "db" lists five Oracle Berkeley DB CVEs under "0": never affected.
    assert report.counts["not_affected"] == 5
    assert records and {namespace for _, namespace in records} == {"alpine:3.8"}
    assert not any(key[0] == "CVE-2016-0682" for key in records)
    empty = parse_alpine_secdb((ALPINE / "secdb-json" / "v3.3" / "community.json").read_bytes())
    assert empty == []


def test_alpine_derived_branch_file_matches_its_source() -> None:
    derived = (ALPINE / "secdb-json-derived" / "v3.11" / "main.json").read_bytes()
    report = FeedParseReport("alpine-secdb")
    records = parse_alpine_secdb(derived, report)
    source = json.loads(derived)
    expected_ids = {
        entry.split()[0]
        for package in source["packages"]
        for version, entries in package["pkg"]["secfixes"].items()
        if version != "0"
        for entry in entries or []
        if entry and entry.split()
    }
    assert {record.id for record in records} == expected_ids
    assert {record.namespace for record in records} == {"alpine:3.11"}
    assert report.errors == 0


def test_alpine_main_and_community_merge_into_one_identity() -> None:
    def secdb(repo: str, package: str) -> bytes:
        return json.dumps(
            {
                "distroversion": "v3.20",
                "reponame": repo,
                "packages": [{"pkg": {"name": package, "secfixes": {"1.0-r1": ["CVE-2099-5"]}}}],
            }
        ).encode()

    records = parse_alpine_secdb(secdb("main", "libfoo")) + parse_alpine_secdb(
        secdb("community", "foo-tools")
    )
    (merged,) = merge_records(records)
    assert merged.namespace == "alpine:3.20"
    assert [affected.package_name for affected in merged.affected] == ["libfoo", "foo-tools"]


def test_alpine_malformed_documents() -> None:
    with pytest.raises(FeedFormatError):
        parse_alpine_secdb(b"not json")
    with pytest.raises(FeedFormatError, match="distroversion"):
        parse_alpine_secdb(b'{"packages": []}')
    report = FeedParseReport("alpine-secdb")
    records = parse_alpine_secdb(
        json.dumps(
            {
                "distroversion": "edge",
                "packages": [
                    {"pkg": {"secfixes": {}}},
                    {"pkg": {"name": "ok", "secfixes": {"2-r0": ["CVE-2099-6"], "3-r0": "CVE-2099-7"}}},
                ],
            }
        ).encode(),
        report,
    )
    assert [(record.id, record.namespace) for record in records] == [("CVE-2099-6", "alpine:edge")]
    assert (report.errors, report.warnings) == (1, 1)
