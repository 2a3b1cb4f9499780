"""Contract tests of the triage and vulnerability-data routes as ``portwarden serve`` answers them:
``/query/vulnerabilities`` (the database's records by id), ``/images/{digest}/vuln/explain``, and VEX
documents stored per account (``/vex``) applied to the account's vulnerability reports and checks.

A small vulnerability database is built where the server looks for it, so the analysis's Match phase
finds real matches: zlib (the source of the image's ``zlib1g``) and the npm package ``left-pad``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portwarden.core.model.vulnerability import (
    AffectedRange,
    CvssScore,
    EventKind,
    FixState,
    NvdRecord,
    RangeEvent,
    Severity,
    VersionRange,
    VulnerabilityRecord,
)
from portwarden.core.vulns.db import DbBuilder
from tests.unit.api.support import ServeHarness, serve_harness
from tests.unit.api.test_api_contract import error_of

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

ZLIB_CVE = "CVE-2099-1000"
LEFT_PAD_CVE = "CVE-2099-2000"
UNRELATED_CVE = "CVE-2099-3000"


def _range(*events: tuple[str, str]) -> VersionRange:
    return VersionRange(events=tuple(RangeEvent(kind=EventKind(k), version=v) for k, v in events))


RECORDS = [
    VulnerabilityRecord(
        id=ZLIB_CVE,
        namespace="debian:12",
        source="debian-tracker",
        aliases=("DSA-9999-1",),
        description="zlib inflate overflow",
        severity=Severity.HIGH,
        severity_source="debian",
        urls=("https://security-tracker.debian.org/tracker/CVE-2099-1000",),
        affected=(
            AffectedRange(
                namespace="debian:12",
                package_name="zlib",
                version_format="dpkg",
                ranges=(_range(("introduced", "0"), ("fixed", "1:1.2.13.dfsg-2")),),
                fix_state=FixState.FIXED,
                fix_versions=("1:1.2.13.dfsg-2",),
            ),
        ),
    ),
    VulnerabilityRecord(
        id=ZLIB_CVE,
        namespace="ubuntu:22.04",
        source="osv",
        severity=Severity.MEDIUM,
        affected=(
            AffectedRange(
                namespace="ubuntu:22.04",
                package_name="zlib",
                version_format="dpkg",
                ranges=(_range(("introduced", "0")),),
                fix_state=FixState.WONT_FIX,
            ),
        ),
    ),
    VulnerabilityRecord(
        id=LEFT_PAD_CVE,
        namespace="npm",
        source="osv",
        severity=Severity.CRITICAL,
        cvss=(CvssScore(version="3.1", vector="CVSS:3.1/AV:N", base_score=9.8, source="osv"),),
        affected=(
            AffectedRange(
                namespace="npm",
                package_name="left-pad",
                version_format="npm",
                ranges=(_range(("introduced", "0"), ("fixed", "1.3.1")),),
                fix_state=FixState.FIXED,
                fix_versions=("1.3.1",),
            ),
        ),
    ),
    VulnerabilityRecord(
        id=UNRELATED_CVE,
        namespace="debian:12",
        source="debian-tracker",
        affected=(
            AffectedRange(
                namespace="debian:12",
                package_name="openssl",
                version_format="dpkg",
                ranges=(_range(("introduced", "0"), ("fixed", "3.0.0-1")),),
                fix_state=FixState.FIXED,
                fix_versions=("3.0.0-1",),
            ),
        ),
    ),
]


def build_database(home: Path) -> None:
    path = home / "db" / "vulnerability.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    with DbBuilder(path) as builder:
        builder.add_records("test|records", RECORDS)
        builder.add_nvd(
            "nvd|u",
            [
                NvdRecord(
                    id=ZLIB_CVE,
                    severity=Severity.HIGH,
                    cvss=(
                        CvssScore(
                            version="3.1", vector="CVSS:3.1/AV:N", base_score=7.5, source="nvd@nist.gov"
                        ),
                    ),
                )
            ],
        )
        builder.publish()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[ServeHarness]:
    home = tmp_path / "home"
    build_database(home)
    with serve_harness(home) as running:
        yield running


# ---- /query/vulnerabilities ----------------------------------------------------------------------


def test_query_vulnerabilities_answers_anchores_records_with_affected_packages(harness: ServeHarness) -> None:
    answer = harness.admin.get(f"/v1/query/vulnerabilities?id={ZLIB_CVE}")
    assert answer.status == 200, answer.body
    body = answer.body
    assert (body["page"], body["next_page"], body["returned_count"]) == (1, False, 2)
    by_namespace = {record["namespace"]: record for record in body["vulnerabilities"]}
    assert set(by_namespace) == {"debian:12", "ubuntu:22.04"}
    debian = by_namespace["debian:12"]
    assert {
        "id",
        "namespace",
        "severity",
        "link",
        "description",
        "affected_packages",
        "nvd_data",
        "vendor_data",
        "references",
    } <= set(debian)
    assert debian["id"] == ZLIB_CVE and debian["severity"] == "High"
    assert debian["link"] == "https://security-tracker.debian.org/tracker/CVE-2099-1000"
    assert debian["affected_packages"] == [
        {
            "name": "zlib",
            "version": "1:1.2.13.dfsg-2",
            "type": "dpkg",
            "will_not_fix": False,
            "fix_state": "fixed",
        }
    ]
    assert debian["nvd_data"][0]["id"] == ZLIB_CVE and debian["nvd_data"][0]["cvss_v3"]["base_score"] == 7.5
    assert debian["references"][0]["url"].startswith("https://security-tracker")
    ubuntu = by_namespace["ubuntu:22.04"]
    assert (
        ubuntu["affected_packages"][0]["will_not_fix"] is True
        and ubuntu["affected_packages"][0]["version"] == "*"
    )


def test_query_vulnerabilities_filters_pages_and_validates(harness: ServeHarness) -> None:
    admin = harness.admin
    several = admin.get(f"/v1/query/vulnerabilities?id={ZLIB_CVE}&id={LEFT_PAD_CVE}").body
    assert [(r["id"], r["namespace"]) for r in several["vulnerabilities"]] == [
        (ZLIB_CVE, "debian:12"),
        (ZLIB_CVE, "ubuntu:22.04"),
        (LEFT_PAD_CVE, "npm"),
    ]
    npm = several["vulnerabilities"][2]
    assert npm["vendor_data"][0]["cvss_v3"]["base_score"] == 9.8 and npm["nvd_data"] == []
    # Comma-separated ids are the same query
    assert admin.get(f"/v1/query/vulnerabilities?id={ZLIB_CVE},{LEFT_PAD_CVE}").body == several
    first = admin.get(f"/v1/query/vulnerabilities?id={ZLIB_CVE},{LEFT_PAD_CVE}&limit=2").body
    assert first["returned_count"] == 2 and first["next_page"] is True
    last = admin.get(f"/v1/query/vulnerabilities?id={ZLIB_CVE},{LEFT_PAD_CVE}&limit=2&page=2").body
    assert [r["id"] for r in last["vulnerabilities"]] == [LEFT_PAD_CVE] and last["next_page"] is False
    namespaced = admin.get(f"/v1/query/vulnerabilities?id={ZLIB_CVE}&namespace=ubuntu:22.04").body
    assert [r["namespace"] for r in namespaced["vulnerabilities"]] == ["ubuntu:22.04"]
    # A version past the fix is not affected in debian:12; every version is in ubuntu (no fix)
    fixed = admin.get(
        f"/v1/query/vulnerabilities?id={ZLIB_CVE}&affected_package=zlib&affected_package_version=1:1.2.13.dfsg-2"
    ).body
    assert [r["namespace"] for r in fixed["vulnerabilities"]] == ["ubuntu:22.04"]
    vulnerable = admin.get(
        f"/v1/query/vulnerabilities?id={ZLIB_CVE}&affected_package=zlib&affected_package_version=1:1.2.13.dfsg-1"
    ).body
    assert vulnerable["returned_count"] == 2
    assert (
        admin.get(f"/v1/query/vulnerabilities?id={ZLIB_CVE}&affected_package=openssl").body["vulnerabilities"]
        == []
    )
    assert admin.get("/v1/query/vulnerabilities?id=CVE-1999-0001").body["vulnerabilities"] == []
    assert admin.get("/v1/query/vulnerabilities").status in (400, 422)
    assert admin.get("/v1/query/vulnerabilities?id=,").status == 400
    # Any account reads the shared database
    team = harness.new_account("team", "dev")
    assert team.get(f"/v1/query/vulnerabilities?id={ZLIB_CVE}").body["returned_count"] == 2


def test_query_vulnerabilities_before_any_database_is_a_404_not_an_empty_answer(tmp_path: Path) -> None:
    with serve_harness(tmp_path / "home") as bare:
        answer = bare.admin.get(f"/v1/query/vulnerabilities?id={ZLIB_CVE}")
        assert answer.status == 404 and "sync the feeds" in error_of(answer)
