"""Contract tests of the triage and vulnerability-data routes as ``portwarden serve`` answers them:
``/query/vulnerabilities`` (the database's records by id), ``/images/{digest}/vuln/explain``, and VEX
documents stored per account (``/vex``) applied to the account's vulnerability reports and checks.

A small vulnerability database is built where the server looks for it, so the analysis's Match phase
finds real matches: zlib (the source of the image's ``zlib1g``) and the npm package ``left-pad``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from tests.unit.api.support import REGISTRY, ServeHarness, encoded, serve_harness
from tests.unit.api.test_api_contract import TAG, add_image, analyzed_image, error_of, stop_bundle

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


# ---- VEX documents --------------------------------------------------------------------------------


def openvex(vulnerability: str, product: str, status: str = "not_affected", **extra: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "vulnerability": {"name": vulnerability},
        "products": [{"@id": product}],
        "status": status,
        **extra,
    }
    if status == "not_affected" and "justification" not in extra:
        statement["justification"] = "vulnerable_code_not_in_execute_path"
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.test/vex/1",
        "author": "security@example.test",
        "timestamp": "2026-11-01T00:00:00Z",
        "version": 1,
        "statements": [statement],
    }


def cyclonedx_vex(vulnerability: str, purl: str) -> dict[str, Any]:
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "components": [{"bom-ref": "left-pad", "type": "library", "name": "left-pad", "purl": purl}],
        "vulnerabilities": [
            {
                "id": vulnerability,
                "analysis": {"state": "not_affected", "justification": "code_not_reachable"},
                "affects": [{"ref": "left-pad"}],
            }
        ],
    }


def matched_image(harness: ServeHarness) -> str:
    """An analyzed image matched against the test database: the zlib and left-pad CVEs."""
    digest = analyzed_image(harness)
    report = harness.admin.get(f"/v1/images/{digest}/vuln/all").body
    assert {v["vuln"] for v in report["vulnerabilities"]} == {ZLIB_CVE, LEFT_PAD_CVE}
    assert report["suppressed"] == []
    return digest


def test_vex_documents_are_stored_listed_fetched_and_deleted_per_account(harness: ServeHarness) -> None:
    admin = harness.admin
    added = admin.post("/v1/vex", openvex(ZLIB_CVE, "pkg:deb/debian/zlib1g"))
    assert added.status == 200, added.body
    document = added.body
    assert document["format"] == "openvex" and document["statement_count"] == 1
    assert document["vulnerabilities"] == [ZLIB_CVE]
    assert document["statements"][0]["status"] == "not_affected"
    assert document["statements"][0]["document"] == f"vex:{document['id']}"
    cyclonedx = admin.post("/v1/vex", cyclonedx_vex(LEFT_PAD_CVE, "pkg:npm/left-pad@1.3.0")).body
    assert cyclonedx["format"] == "cyclonedx"

    listed = admin.get("/v1/vex").body
    assert [d["id"] for d in listed] == [document["id"], cyclonedx["id"]]
    assert "document" not in listed[0]
    fetched = admin.get(f"/v1/vex/{document['id']}").body
    assert fetched["document"]["@context"] == "https://openvex.dev/ns/v0.2.0"

    team = harness.new_account("team", "dev")
    assert team.get("/v1/vex").body == []
    assert team.get(f"/v1/vex/{document['id']}").status == 404
    assert team.delete(f"/v1/vex/{document['id']}").status == 404
    assert admin.delete(f"/v1/vex/{document['id']}").status == 200
    assert admin.get(f"/v1/vex/{document['id']}").status == 404
    assert admin.delete(f"/v1/vex/{document['id']}").status == 404
    assert [d["id"] for d in admin.get("/v1/vex").body] == [cyclonedx["id"]]


def test_a_bad_vex_document_is_a_400_with_the_reason_and_nothing_is_stored(harness: ServeHarness) -> None:
    admin = harness.admin
    cases = [
        (
            openvex(ZLIB_CVE, "pkg:deb/debian/zlib1g", justification=""),
            "justification or an impact_statement",
        ),
        (openvex(ZLIB_CVE, "pkg:deb/debian/zlib1g", status="maybe"), "unknown status 'maybe'"),
        ({**openvex(ZLIB_CVE, "x"), "@context": "https://openvex.dev/ns/v0.1.0"}, "not supported"),
        ({**cyclonedx_vex(ZLIB_CVE, "pkg:npm/x@1"), "specVersion": "1.2"}, "spec version 1.2"),
        ({"components": []}, "not a VEX document"),
    ]
    for body, reason in cases:
        answer = admin.post("/v1/vex", body)
        assert answer.status == 400, (body, answer.body)
        assert reason in error_of(answer), answer.body
        assert answer.body["detail"]["validation_details"] == [answer.body["message"]]
    not_json = admin.call("POST", "/v1/vex", raw_body=b"{not json")
    assert not_json.status == 400 and "not JSON" in error_of(not_json)
    assert admin.call("POST", "/v1/vex", raw_body=b"").status == 400
    assert admin.get("/v1/vex").body == []


def test_stored_vex_suppresses_matches_of_that_account_only(harness: ServeHarness) -> None:
    digest = matched_image(harness)
    admin = harness.admin
    statement = admin.post("/v1/vex", openvex(ZLIB_CVE, "pkg:deb/debian/zlib1g")).body

    report = admin.get(f"/v1/images/{encoded(digest)}/vuln/all").body
    assert [v["vuln"] for v in report["vulnerabilities"]] == [LEFT_PAD_CVE]
    [suppressed] = report["suppressed"]
    assert suppressed["vuln"] == ZLIB_CVE and suppressed["package_name"] == "zlib1g"
    [reason] = suppressed["suppressed_by"]
    assert reason["kind"] == "vex" and reason["statement"]["document"] == f"vex:{statement['id']}"
    assert "not_affected" in reason["reason"]
    # The os report has the same suppression; without include_suppressed the list is left out
    os_report = admin.get(f"/v1/images/{digest}/vuln/os?include_suppressed=false").body
    assert os_report["vulnerabilities"] == [] and "suppressed" not in os_report
    # A statement about another product does not apply
    admin.post("/v1/vex", openvex(LEFT_PAD_CVE, f"{REGISTRY}/acme/elsewhere"))
    still = admin.get(f"/v1/images/{digest}/vuln/non-os").body
    assert [v["vuln"] for v in still["vulnerabilities"]] == [LEFT_PAD_CVE] and still["suppressed"] == []
    # A statement naming the image's repository does
    admin.post("/v1/vex", openvex(LEFT_PAD_CVE, f"{REGISTRY}/acme/app", status="fixed"))
    assert admin.get(f"/v1/images/{digest}/vuln/all").body["vulnerabilities"] == []

    # Another account's copy of the image is not touched by these statements
    team = harness.new_account("team", "dev")
    add_image(harness, team)
    harness.run_queued()
    theirs = team.get(f"/v1/images/{digest}/vuln/all").body
    assert {v["vuln"] for v in theirs["vulnerabilities"]} == {ZLIB_CVE, LEFT_PAD_CVE}
    assert theirs["suppressed"] == []

    # Deleting the document brings its match back
    admin.delete(f"/v1/vex/{statement['id']}")
    back = admin.get(f"/v1/images/{digest}/vuln/os").body
    assert [v["vuln"] for v in back["vulnerabilities"]] == [ZLIB_CVE]


def vulnerability_stop_bundle() -> dict[str, Any]:
    bundle = stop_bundle("vulns", gate="vulnerabilities", trigger="package")
    bundle["policies"][0]["rules"][0]["params"] = [
        {"name": "package_type", "value": "all"},
        {"name": "severity_comparison", "value": ">="},
        {"name": "severity", "value": "medium"},
    ]
    return bundle


def check_of(harness: ServeHarness, digest: str) -> dict[str, Any]:
    answer = harness.admin.get(f"/v1/images/{digest}/check?tag={TAG}&detail=true")
    assert answer.status == 200, answer.body
    entry: dict[str, Any] = answer.body[0][digest][TAG][0]
    return entry


def _vulnerability_rows(entry: dict[str, Any]) -> list[list[Any]]:
    result = entry["detail"]["result"]
    rows: list[list[Any]] = result["result"][result["image_id"]]["result"]["rows"]
    return [row for row in rows if row[3] == "vulnerabilities"]


def test_the_vulnerabilities_gate_counts_only_what_stored_vex_leaves(harness: ServeHarness) -> None:
    digest = matched_image(harness)
    admin = harness.admin
    assert admin.post("/v1/policies", vulnerability_stop_bundle()).status == 200
    failing = check_of(harness, digest)
    assert failing["status"] == "fail"
    assert len(_vulnerability_rows(failing)) == 2

    zlib = admin.post("/v1/vex", openvex(ZLIB_CVE, "pkg:deb/debian/zlib1g")).body
    one_left = check_of(harness, digest)
    assert one_left["status"] == "fail"
    assert [ZLIB_CVE in row[5] for row in _vulnerability_rows(one_left)] == [False]
    admin.post("/v1/vex", cyclonedx_vex(LEFT_PAD_CVE, "pkg:npm/left-pad"))
    passing = check_of(harness, digest)
    assert passing["status"] == "pass" and _vulnerability_rows(passing) == []

    # Removing every statement makes the next check count both again (no stale stored evaluation)
    for document in admin.get("/v1/vex").body:
        admin.delete(f"/v1/vex/{document['id']}")
    assert zlib["id"] not in {d["id"] for d in admin.get("/v1/vex").body}
    again = check_of(harness, digest)
    assert again["status"] == "fail" and len(_vulnerability_rows(again)) == 2


# ---- /images/{digest}/vuln/explain ----------------------------------------------------------------


def test_explain_serves_the_evidence_of_the_stored_matches(harness: ServeHarness) -> None:
    digest = matched_image(harness)
    admin = harness.admin
    answer = admin.get(f"/v1/images/{encoded(digest)}/vuln/explain?id={ZLIB_CVE}")
    assert answer.status == 200, answer.body
    explained = answer.body
    assert explained["vulnerability_id"] == ZLIB_CVE and explained["image_digest"] == digest
    assert explained["known_to_database"] is True
    [match] = explained["matches"]
    assert match["package"]["name"] == "zlib1g" and match["package"]["source_package"] == "zlib"
    assert match["package"]["found_in"][0]["path"] == "/var/lib/dpkg/status"
    assert match["package"]["found_in"][0]["layer_index"] == 0
    assert match["record"]["source"] == "debian-tracker" and match["record"]["namespace"] == "debian:12"
    rule = match["version_rule"]
    assert rule["namespace"] == "debian:12" and rule["package_name"] == "zlib"
    assert rule["installed_version"] == "1:1.2.13.dfsg-1" and rule["comparator"] == "dpkg"
    assert match["fix"]["state"] == "fixed" and match["fix"]["versions"] == ["1:1.2.13.dfsg-2"]
    assert match["suppressed"] is False and match["triage"] == []
    # By alias, the same match
    by_alias = admin.get(f"/v1/images/{digest}/vuln/explain?id=DSA-9999-1").body
    assert [m["vulnerability_id"] for m in by_alias["matches"]] == [ZLIB_CVE]
    # A vulnerability the image does not have is explained as such, not an error
    absent = admin.get(f"/v1/images/{digest}/vuln/explain?id={UNRELATED_CVE}").body
    assert absent["matches"] == [] and absent["known_to_database"] is True
    assert "no package of this image matches" in absent["notes"][0]
    # The route is not taken for a vulnerability type, nor the type route for it
    assert admin.get(f"/v1/images/{digest}/vuln/explain").status in (400, 422)
    assert admin.get(f"/v1/images/{digest}/vuln/all").body["vulnerability_type"] == "all"


def test_explain_names_the_stored_vex_statement_and_the_policy_row(harness: ServeHarness) -> None:
    digest = matched_image(harness)
    admin = harness.admin
    admin.post("/v1/policies", vulnerability_stop_bundle())
    before = admin.get(f"/v1/images/{digest}/vuln/explain?id={LEFT_PAD_CVE}&tag={TAG}").body
    [row] = before["policy_rows"]
    assert row["counted"] is True and row["rule"]["gate"] == "vulnerabilities"
    assert row["mapping"]["name"] == "all"

    stored = admin.post("/v1/vex", cyclonedx_vex(LEFT_PAD_CVE, "pkg:npm/left-pad")).body
    after = admin.get(f"/v1/images/{digest}/vuln/explain?id={LEFT_PAD_CVE}").body
    [match] = after["matches"]
    assert match["suppressed"] is True
    [effect] = match["triage"]
    assert effect["effect"] == "suppresses" and effect["statement"]["document"] == f"vex:{stored['id']}"
    assert after["policy_rows"] == []  # suppressed: the gate no longer fires for it
    assert admin.get(f"/v1/images/{digest}/vuln/explain?id={LEFT_PAD_CVE}&policyId=nope").status == 404
    assert admin.get(f"/v1/images/{digest}/vuln/explain?id={LEFT_PAD_CVE}&tag={REGISTRY}/x:1").status == 404


def test_explain_is_a_404_for_an_image_not_analyzed_and_for_another_account(harness: ServeHarness) -> None:
    harness.push("acme/app", "1.0")
    digest = add_image(harness)["imageDigest"]
    pending = harness.admin.get(f"/v1/images/{digest}/vuln/explain?id={ZLIB_CVE}")
    assert pending.status == 404
    assert error_of(pending) == "image is not analyzed - analysis_status: not_analyzed"
    harness.run_queued()
    assert harness.admin.get(f"/v1/images/{digest}/vuln/explain?id={ZLIB_CVE}").status == 200
    team = harness.new_account("team", "dev")
    assert team.get(f"/v1/images/{digest}/vuln/explain?id={ZLIB_CVE}").status == 404


def test_the_new_routes_are_in_the_openapi_document(harness: ServeHarness) -> None:
    paths = harness.admin.get("/v1/swagger.json").body["paths"]
    assert {"/vex", "/vex/{document_id}", "/query/vulnerabilities", "/images/{digest}/vuln/explain"} <= set(
        paths
    )
    assert {"get", "post"} <= set(paths["/vex"]) and {"get", "delete"} <= set(paths["/vex/{document_id}"])
    explain = paths["/images/{digest}/vuln/explain"]["get"]
    assert "id" in {parameter["name"] for parameter in explain["parameters"]}
    report = paths["/images/{digest}/vuln/{vuln_type}"]["get"]
    assert "include_suppressed" in {parameter["name"] for parameter in report["parameters"]}
