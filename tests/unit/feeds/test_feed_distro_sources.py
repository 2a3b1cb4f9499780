"""Amazon Linux updateinfo, Red Hat CSAF (advisories and VEX), SUSE/openSUSE/Rocky/Alma OSV, Wolfi and
Chainguard secdb: parsing the real samples and the test documents written in the upstream formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from portwarden.core.errors import FeedFormatError
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package, PackageType
from portwarden.core.model.vulnerability import (
    AffectedRange,
    EventKind,
    FixState,
    RangeEvent,
    Severity,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.vulns.db import DbBuilder, VulnerabilityDb
from portwarden.core.vulns.feeds.alpine_secdb import parse_alpine_secdb
from portwarden.core.vulns.feeds.amazon_updateinfo import (
    iter_updateinfo,
    mirror_from_list,
    updateinfo_location,
)
from portwarden.core.vulns.feeds.osv import parse_osv_json
from portwarden.core.vulns.feeds.redhat_csaf import document_id_for_path, parse_csaf_document
from portwarden.core.vulns.feeds.report import FeedParseReport
from portwarden.core.vulns.matcher import Matcher
from portwarden.core.vulns.matching.lookups import plan_lookups
from tests.conftest import FIXTURES_DIR

AMAZON = FIXTURES_DIR / "feeds-sample" / "amazon"
REDHAT = FIXTURES_DIR / "feeds-sample" / "redhat" / "csaf"
DISTROS = FIXTURES_DIR / "distros"


def _by_key(records: list[VulnerabilityRecord]) -> dict[tuple[str, str], VulnerabilityRecord]:
    return {(record.id, record.namespace): record for record in records}


# ---- Amazon Linux -------------------------------------------------------------------------------------


def test_amazon_linux_2_advisories_from_the_real_updateinfo() -> None:
    report = FeedParseReport("amazon")
    records = _by_key(list(iter_updateinfo((AMAZON / "updateinfo_2_items.xml.gz").read_bytes(), report)))
    assert set(records) == {("ALAS2-2018-942", "amzn:2"), ("ALAS2-2018-949", "amzn:2")}
    assert report.records == 2 and report.errors == 0
    qemu = records[("ALAS2-2018-942", "amzn:2")]
    # <severity>important</severity>, one CVE reference.
    assert qemu.severity is Severity.HIGH and qemu.severity_source == "amazon"
    assert qemu.aliases == ("CVE-2017-5715",)
    assert qemu.urls == ("https://alas.aws.amazon.com/AL2/ALAS-2018-942.html",)
    assert qemu.published is not None and qemu.published.isoformat() == "2018-02-07T18:49:00+00:00"
    packages = {affected.package_name: affected for affected in qemu.affected}
    # epoch="10" is part of the fixed EVR.
    assert packages["qemu-img"].fix_versions == ("10:1.5.3-141.amzn2.5.3",)
    assert packages["qemu-img"].ranges[0].events == (
        RangeEvent(kind=EventKind.INTRODUCED, version="0"),
        RangeEvent(kind=EventKind.FIXED, version="10:1.5.3-141.amzn2.5.3"),
    )
    assert packages["qemu-img"].version_format == "rpm" and packages["qemu-img"].fix_state is FixState.FIXED
    java = records[("ALAS2-2018-949", "amzn:2")]
    assert len(java.aliases) == 15 and "CVE-2018-2678" in java.aliases


def test_amazon_linux_2023_and_2022_namespaces_and_epoch_zero() -> None:
    (al2023,) = iter_updateinfo((AMAZON / "updateinfo_AL2023.xml.gz").read_bytes())
    assert (al2023.id, al2023.namespace) == ("ALAS2023-2023-001", "amzn:2023")
    assert al2023.urls == ("https://alas.aws.amazon.com/AL2023/ALAS-2023-001.html",)
    rsyslog = next(affected for affected in al2023.affected if affected.package_name == "rsyslog")
    # epoch="0" is left out of the version, as rpm prints it; three architectures give one fix.
    assert rsyslog.fix_versions == ("8.2204.0-3.amzn2023.0.2",)
    (al2022,) = iter_updateinfo((AMAZON / "updateinfo_AL2022.xml.gz").read_bytes())
    assert al2022.namespace == "amzn:2022"


def test_amazon_linux_2_extras_topic_and_non_security_updates() -> None:
    report = FeedParseReport("amazon")
    (docker,) = iter_updateinfo((DISTROS / "amazon" / "extras-docker-updateinfo.xml").read_bytes(), report)
    assert (docker.id, docker.namespace) == ("ALAS2DOCKER-2099-001", "amzn:2")
    assert docker.urls == ("https://alas.aws.amazon.com/AL2/ALASDOCKER-2099-001.html",)
    (affected,) = docker.affected  # x86_64 and aarch64 state the same fix
    assert affected.fix_versions == ("20.10.25-1.amzn2.0.4",)
    assert affected.note == "Amazon Linux 2 extras topic docker"
    assert report.counts["not_security"] == 1  # ALAS2DOCKER-2099-002 is type="bugfix"


def test_amazon_updateinfo_refuses_entities_and_other_documents() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE updates [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><updates><update><id>&b;</id></update></updates>'
    )
    with pytest.raises(FeedFormatError, match="not a readable XML document"):
        list(iter_updateinfo(bomb))
    with pytest.raises(FeedFormatError, match="not <updates>"):
        list(iter_updateinfo(b"<repomd/>"))
    with pytest.raises(FeedFormatError, match="not a readable XML document"):
        list(iter_updateinfo(gzip.compress(b"<updates><update>")))
    # The original Amazon Linux AMI's advisories are not Amazon Linux 2 or 2023.
    report = FeedParseReport("amazon")
    old = b"<updates><update type='security'><id>ALAS-2018-1000</id><pkglist/></update></updates>"
    assert list(iter_updateinfo(old, report)) == []
    assert report.counts["unsupported_release"] == 1


def test_repository_metadata_lead_to_the_updateinfo() -> None:
    assert updateinfo_location((AMAZON / "repomd_valid.xml").read_bytes()) == "repodata/updateinfo.xml.gz"
    with pytest.raises(FeedFormatError, match="names no updateinfo"):
        updateinfo_location(b'<repomd xmlns="http://linux.duke.edu/metadata/repo"/>')
    assert (
        mirror_from_list(b"https://cdn.amazonlinux.com/2/core/2.0/x86_64/abc/\n")
        == "https://cdn.amazonlinux.com/2/core/2.0/x86_64/abc"
    )
    with pytest.raises(FeedFormatError):
        mirror_from_list(b"\n# nothing\n")


# ---- Red Hat CSAF -------------------------------------------------------------------------------------


def test_red_hat_advisories_keep_source_rpms_of_the_main_stream() -> None:
    (record,) = parse_csaf_document((REDHAT / "2024" / "rhsa-2024_9371.json").read_bytes())
    assert (record.id, record.namespace, record.source) == ("RHSA-2024:9371", "rhel:9", "redhat-csaf")
    assert record.aliases == ("CVE-2024-8088",)
    assert record.severity is Severity.MEDIUM  # aggregate_severity "Moderate"
    (affected,) = record.affected  # the src rpm only: binaries state the same fix
    assert (affected.package_name, affected.fix_versions) == ("python3.9", ("3.9.19-8.el9",))
    assert "https://access.redhat.com/security/cve/CVE-2024-8088" in record.urls
    (tigervnc,) = parse_csaf_document((REDHAT / "2024" / "rhsa-2024_0010.json").read_bytes())
    assert [a.package_name for a in tigervnc.affected] == ["tigervnc"]
    assert tigervnc.aliases == ("CVE-2023-5367", "CVE-2023-6377", "CVE-2023-6478")


def test_red_hat_extended_support_streams_are_not_matched() -> None:
    # RHSA-2025:0002 is for RHEL 8.4 AUS/E4S/TUS only: no image installs from those streams.
    report = FeedParseReport("redhat")
    assert parse_csaf_document((REDHAT / "2025" / "rhsa-2025_0002.json").read_bytes(), report) == []
    assert report.counts["no_matchable_product"] == 1


def test_red_hat_vex_fix_states() -> None:
    records = _by_key(parse_csaf_document((DISTROS / "redhat/vex/2099/cve-2099-1001.json").read_bytes()))
    (rhel9,) = records[("CVE-2099-1001", "rhel:9")].affected
    assert (rhel9.package_name, rhel9.fix_state, rhel9.note) == ("gcc", FixState.WONT_FIX, "Will not fix")
    assert rhel9.ranges[0].events == (RangeEvent(kind=EventKind.INTRODUCED, version="0"),)
    (rhel8,) = records[("CVE-2099-1001", "rhel:8")].affected
    assert (rhel8.fix_state, rhel8.note) == (FixState.NOT_FIXED, "Fix deferred")
    assert records[("CVE-2099-1001", "rhel:9")].cvss[0].base_score == 5.5

    report = FeedParseReport("redhat")
    assert parse_csaf_document((DISTROS / "redhat/vex/2099/cve-2099-1003.json").read_bytes(), report) == []
    assert report.counts["under_investigation"] == 1


def test_red_hat_vex_module_streams() -> None:
    report = FeedParseReport("redhat")
    (record,) = parse_csaf_document((DISTROS / "redhat/vex/2099/cve-2099-1002.json").read_bytes(), report)
    assert record.namespace == "rhel:8" and record.aliases == ("RHSA-2099:0102",)
    fixes = {affected.package_name: affected.fix_versions for affected in record.affected}
    assert fixes == {
        "nodejs:18::nodejs": ("1:18.19.0-1.module+el8.9.0+21055+7a4d3f2a",),
        "nodejs:20::nodejs": ("1:20.11.0-1.module+el8.9.0+21103+eb1c2a1b",),
    }
    assert report.counts["known_not_affected"] == 1  # RHEL 9's nodejs: no entry


def test_red_hat_document_ids_from_paths_and_bad_documents() -> None:
    assert document_id_for_path("2024/rhsa-2024_6163.json") == "RHSA-2024:6163"
    assert document_id_for_path("2099/cve-2099-1001.json") == "CVE-2099-1001"
    with pytest.raises(FeedFormatError):
        parse_csaf_document(b"[]")
    with pytest.raises(FeedFormatError, match="tracking"):
        parse_csaf_document(json.dumps({"document": {"tracking": {}}, "product_tree": {}}).encode())


# ---- OSV distributions and secdb ----------------------------------------------------------------------


def test_suse_osv_products_map_to_sles_and_leap_releases() -> None:
    report = FeedParseReport("osv")
    records = _by_key(parse_osv_json((DISTROS / "osv/SUSE/SUSE-SU-2099-0301-1.json").read_bytes(), report))
    assert set(records) == {
        ("SUSE-SU-2099:0301-1", "sles:15.5"),
        ("SUSE-SU-2099:0301-1", "sles:15.4"),
        ("SUSE-SU-2099:0301-1", "opensuse-leap:15.5"),
    }
    assert report.counts["unsupported_ecosystem"] == 1  # SLE Micro is another distribution
    (ltss,) = records[("SUSE-SU-2099:0301-1", "sles:15.4")].affected
    assert ltss.note is not None and "LTSS" in ltss.note
    (basesystem,) = records[("SUSE-SU-2099:0301-1", "sles:15.5")].affected
    assert (basesystem.package_name, basesystem.fix_versions) == ("openssl-3", ("3.0.8-150500.5.20.1",))
    assert basesystem.version_format == "rpm" and basesystem.note is None


def test_rocky_and_alma_osv() -> None:
    (rocky,) = parse_osv_json((DISTROS / "osv/Rocky Linux/RLSA-2099-0201.json").read_bytes())
    assert (rocky.namespace, rocky.affected[0].fix_versions) == ("rocky:9", ("3.9.19-8.el9_5",))
    alma = _by_key(parse_osv_json((DISTROS / "osv/AlmaLinux/ALSA-2099-0202.json").read_bytes()))
    assert set(alma) == {("ALSA-2099:0202", "almalinux:9"), ("ALSA-2099:0202", "almalinux:8")}


def test_wolfi_and_chainguard_secdb() -> None:
    report = FeedParseReport("wolfi")
    wolfi = _by_key(
        parse_alpine_secdb(
            (DISTROS / "wolfi/security.json").read_bytes(),
            report,
            namespace="wolfi:rolling",
            source="wolfi-secdb",
        )
    )
    assert set(wolfi) == {
        ("CVE-2099-5001", "wolfi:rolling"),
        ("CVE-2099-5002", "wolfi:rolling"),
        ("CVE-2099-5004", "wolfi:rolling"),
    }
    assert report.counts["not_affected"] == 1  # busybox "0"
    assert wolfi[("CVE-2099-5001", "wolfi:rolling")].source == "wolfi-secdb"
    assert wolfi[("CVE-2099-5001", "wolfi:rolling")].affected[0].version_format == "apk"
    chainguard = parse_alpine_secdb(
        (DISTROS / "chainguard/security.json").read_bytes(), namespace="chainguard:rolling"
    )
    assert {record.namespace for record in chainguard} == {"chainguard:rolling"}
    # Without a namespace, a document without Alpine's distroversion is refused.
    with pytest.raises(FeedFormatError, match="distroversion"):
        parse_alpine_secdb((DISTROS / "wolfi/security.json").read_bytes())


# ---- lookups of modular rpms --------------------------------------------------------------------------


def _modular_nodejs() -> Package:
    return Package(
        name="nodejs",
        version="1:18.14.2-3.module+el8.8.0+18367+a2a3e6b8",
        type=PackageType.RPM,
        found_by="rpm",
        metadata={
            "source_name": "nodejs",
            "source_version": "1:18.14.2-3.module+el8.8.0+18367+a2a3e6b8",
            "modularity_label": "nodejs:18:8080020230228121233:63b34585",
        },
    )


def test_a_modular_rpm_is_searched_under_its_stream_only_where_feeds_name_streams() -> None:
    # Red Hat's data names module streams: a stream-18 nodejs must never meet another stream's statement.
    rhel = plan_lookups([_modular_nodejs()], Distro(id="rhel", version_id="8.9"))
    assert [(lookup.namespace, lookup.name) for lookup in rhel] == [("rhel:8", "nodejs:18::nodejs")]
    # AlmaLinux's OSV data names the plain package: both names are searched there.
    alma = plan_lookups([_modular_nodejs()], Distro(id="almalinux", version_id="8.9"))
    assert [(lookup.namespace, lookup.name) for lookup in alma] == [
        ("almalinux:8", "nodejs:18::nodejs"),
        ("almalinux:8", "nodejs"),
    ]
    plain = _modular_nodejs().model_copy(update={"metadata": {"source_name": "nodejs"}})
    assert [lookup.name for lookup in plan_lookups([plain], Distro(id="rhel", version_id="8.9"))] == [
        "nodejs"
    ]


def test_red_hat_keeps_the_newest_fix_of_a_major_release() -> None:
    # One document stating both fixes of CVE-2024-8088 on RHEL 9: the 9.4 z-stream's 3.9.18-3.el9_4.5
    # (RHSA-2024:6163) and 9.5's 3.9.19-8.el9 (RHSA-2024:9371). Only the newest fixes the main stream.
    newer = json.loads((REDHAT / "2024" / "rhsa-2024_9371.json").read_text())
    older = json.loads((REDHAT / "2024" / "rhsa-2024_6163.json").read_text())
    newer["product_tree"]["branches"][0]["branches"].extend(older["product_tree"]["branches"][0]["branches"])
    newer["product_tree"]["relationships"].extend(older["product_tree"]["relationships"])
    newer["vulnerabilities"][0]["product_status"]["fixed"].extend(
        older["vulnerabilities"][0]["product_status"]["fixed"]
    )
    (record,) = parse_csaf_document(json.dumps(newer).encode())
    (affected,) = record.affected
    assert affected.fix_versions == ("3.9.19-8.el9",)
    assert affected.ranges[0].events[-1] == RangeEvent(kind=EventKind.FIXED, version="3.9.19-8.el9")


def test_the_distributions_own_feed_gives_the_finding(tmp_path: Path) -> None:
    # The same issue stated by Red Hat's CSAF data (RHSA id, CVE alias) and by an aggregator under the
    # CVE id: the distribution's statement is the finding, the other id an alias.
    def record(vuln_id: str, source: str, aliases: tuple[str, ...], fixed: str) -> VulnerabilityRecord:
        return VulnerabilityRecord(
            id=vuln_id,
            namespace="rhel:9",
            source=source,
            aliases=aliases,
            affected=(
                AffectedRange(
                    namespace="rhel:9",
                    package_name="openssl",
                    version_format="rpm",
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
                ),
            ),
        )

    path = tmp_path / "vulnerability.db"
    with DbBuilder(path) as builder:
        builder.add_records("osv|u", [record("CVE-2099-7001", "osv", (), "1:3.0.7-29.el9")])
        builder.add_records(
            "redhat|u", [record("RHSA-2099:0701", "redhat-csaf", ("CVE-2099-7001",), "1:3.0.7-28.el9_4")]
        )
        builder.publish()
    openssl = Package(
        name="openssl-libs",
        version="1:3.0.7-27.el9",
        type=PackageType.RPM,
        found_by="rpm",
        metadata={"source_name": "openssl", "source_version": "1:3.0.7-27.el9"},
    )
    with VulnerabilityDb.open(path) as db:
        (match,) = Matcher(db).match([openssl], Distro(id="rhel", version_id="9.4"))
    assert match.id == "RHSA-2099:0701" and "CVE-2099-7001" in match.aliases
    assert match.fix.versions == ("1:3.0.7-28.el9_4",)
