"""Triage: VEX documents (OpenVEX 0.2, CycloneDX VEX) and ignore rules, product matching by image digest,
repository and purl, and what suppression does to matches."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.errors import ConfigurationError, VexDocumentError
from portwarden.core.model.analysis import AnalysisSource, ImageAnalysis
from portwarden.core.model.match import Match, MatchDetail, MatchedPackage, MatchFix
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.triage import load_triage_inputs
from portwarden.core.triage.apply import apply_triage
from portwarden.core.triage.config import parse_config
from portwarden.core.triage.model import TriageInputs, VexStatus
from portwarden.core.triage.openvex import findings_openvex
from portwarden.core.triage.products import ImageIdentity, purl_names_package
from portwarden.core.triage.vex import parse_vex

DIGEST = "sha256:" + "1" * 64
OTHER_DIGEST = "sha256:" + "2" * 64
LIBSSL_PURL = "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl"
LODASH_PURL = "pkg:npm/lodash@4.17.20"
TODAY = date(2026, 6, 1)


def _analysis() -> ImageAnalysis:
    return ImageAnalysis(
        source=AnalysisSource(
            type="registry",
            reference="registry.example/team/app:1.2",
            location="registry.example/team/app:1.2",
            manifest_digest=DIGEST,
            config_digest="sha256:" + "3" * 64,
            platform="linux/amd64",
        ),
        packages=(
            Package(
                name="libssl3",
                version="3.0.11-1~deb12u1",
                type=PackageType.DEB,
                purl=LIBSSL_PURL,
                locations=(Location(path="/var/lib/dpkg/status"),),
                found_by="dpkg",
            ),
            Package(
                name="lodash",
                version="4.17.20",
                type=PackageType.NPM,
                purl=LODASH_PURL,
                locations=(Location(path="/app/node_modules/lodash/package.json"),),
                found_by="npm",
            ),
        ),
    )


def _match(
    vuln_id: str, package: Package, *, aliases: tuple[str, ...] = (), state: FixState = FixState.FIXED
) -> Match:
    namespace = "debian:12" if package.type is PackageType.DEB else "npm"
    return Match(
        id=vuln_id,
        aliases=aliases,
        severity=Severity.HIGH,
        fix=MatchFix(state=state, versions=("9.9",) if state is FixState.FIXED else ()),
        package=MatchedPackage(
            name=package.name,
            version=package.version,
            type=package.type.value,
            purl=package.purl,
            location=package.locations[0].path,
        ),
        namespace=namespace,
        matched_by=MatchDetail(
            matcher="m", namespace=namespace, searched_by="s", constraint="< 9.9", version_format="dpkg"
        ),
    )


ANALYSIS = _analysis()
LIBSSL, LODASH = ANALYSIS.packages
OPENSSL_MATCH = _match("CVE-2023-5363", LIBSSL)
LODASH_MATCH = _match("GHSA-35jh-r3h4-6jhm", LODASH, aliases=("CVE-2021-23337",))
MATCHES = [OPENSSL_MATCH, LODASH_MATCH]


def _openvex(*statements: dict[str, Any], context: str = "https://openvex.dev/ns/v0.2.0") -> bytes:
    return json.dumps(
        {
            "@context": context,
            "@id": "https://example.test/vex/1",
            "author": "security@example.test",
            "timestamp": "2026-01-01T00:00:00Z",
            "version": 1,
            "statements": list(statements),
        }
    ).encode()


def _statement(
    vuln: str, products: list[dict[str, Any]], status: str = "not_affected", **extra: Any
) -> dict[str, Any]:
    statement: dict[str, Any] = {"vulnerability": {"name": vuln}, "products": products, "status": status}
    if status == "not_affected" and "justification" not in extra and "impact_statement" not in extra:
        extra["justification"] = "vulnerable_code_not_in_execute_path"
    statement.update(extra)
    return statement


def _triage(data: bytes, *, repo_tag: str | None = None) -> Any:
    inputs = TriageInputs(statements=parse_vex(data, "vex.json"))
    return apply_triage(ANALYSIS, MATCHES, inputs, today=TODAY, repo_tag=repo_tag)


# ---- products --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "named"),
    [
        (DIGEST, True),
        (OTHER_DIGEST, False),
        (f"registry.example/team/app@{DIGEST}", True),
        (f"registry.example/other/app@{DIGEST}", False),
        (f"pkg:oci/app@{DIGEST}?repository_url=registry.example/team/app", True),
        (f"pkg:oci/app@{OTHER_DIGEST}", False),
        ("pkg:oci/app?repository_url=registry.example/team/app", True),
        ("pkg:oci/app?repository_url=registry.example/team/app&tag=1.2", True),
        ("pkg:oci/app?repository_url=registry.example/team/app&tag=9", False),
        ("pkg:oci/app?repository_url=registry.example/team/other", False),
        ("registry.example/team/app", True),
        ("registry.example/team/app:1.2", True),
        ("registry.example/team/app:1.3", False),
        ("registry.example/team/other", False),
        (LODASH_PURL, False),
        ("cpe:2.3:a:example:app:1.2:*:*:*:*:*:*:*", False),
    ],
)
def test_image_identifiers(identifier: str, named: bool) -> None:
    assert ImageIdentity.of(ANALYSIS).named_by(identifier) is named


@pytest.mark.parametrize(
    ("identifier", "named"),
    [
        (LIBSSL_PURL, True),
        ("pkg:deb/debian/libssl3", True),  # every version
        ("pkg:deb/debian/libssl3@3.0.11-1~deb12u1", True),
        ("pkg:deb/debian/libssl3@3.0.11-1~deb12u2", False),
        ("pkg:deb/debian/libssl3?arch=amd64", True),  # stated qualifiers must hold
        ("pkg:deb/debian/libssl3?arch=arm64", False),
        ("pkg:deb/ubuntu/libssl3", False),
        ("pkg:rpm/debian/libssl3", False),
    ],
)
def test_package_purls(identifier: str, named: bool) -> None:
    assert purl_names_package(identifier, LIBSSL_PURL) is named


# ---- OpenVEX ---------------------------------------------------------------------------------------------


def test_not_affected_for_the_image_digest_suppresses_with_the_statement() -> None:
    outcome = _triage(_openvex(_statement("CVE-2023-5363", [{"@id": f"pkg:oci/app@{DIGEST}"}])))
    assert [m.id for m in outcome.matches] == ["GHSA-35jh-r3h4-6jhm"]
    (suppressed,) = outcome.suppressed
    assert suppressed.match == OPENSSL_MATCH
    (reason,) = suppressed.suppressed_by
    assert reason.kind == "vex" and reason.statement is not None
    assert reason.statement.justification == "vulnerable_code_not_in_execute_path"
    assert "vex.json statement 0" in reason.reason


def test_a_statement_for_another_image_or_package_does_not_apply() -> None:
    outcome = _triage(
        _openvex(
            _statement("CVE-2023-5363", [{"@id": OTHER_DIGEST}]),
            _statement("CVE-2023-5363", [{"@id": "pkg:deb/debian/libssl1.1"}]),
        )
    )
    assert outcome.matches == tuple(MATCHES) and not outcome.suppressed


def test_vulnerability_aliases_on_either_side_connect_statement_and_match() -> None:
    by_alias = _triage(_openvex(_statement("CVE-2021-23337", [{"@id": LODASH_PURL}])))
    assert [s.match.id for s in by_alias.suppressed] == ["GHSA-35jh-r3h4-6jhm"]
    statement_alias = _statement("GHSA-xxxx", [{"@id": "registry.example/team/app"}], status="fixed")
    statement_alias["vulnerability"]["aliases"] = ["CVE-2023-5363"]
    fixed = _triage(_openvex(statement_alias))
    assert [s.match.id for s in fixed.suppressed] == ["CVE-2023-5363"]


def test_subcomponents_narrow_an_image_statement_to_those_packages() -> None:
    outcome = _triage(
        _openvex(
            _statement(
                "CVE-2023-5363",
                [{"@id": f"registry.example/team/app@{DIGEST}", "subcomponents": [{"@id": LODASH_PURL}]}],
            ),
            _statement(
                "CVE-2021-23337",
                [
                    {
                        "@id": "registry.example/team/app:1.2",
                        "subcomponents": [{"@id": "x", "identifiers": {"purl": "pkg:npm/lodash"}}],
                    }
                ],
            ),
        )
    )
    # libssl3 is not a subcomponent of the first statement; lodash is one of the second.
    assert [s.match.id for s in outcome.suppressed] == ["GHSA-35jh-r3h4-6jhm"]


def test_the_latest_statement_decides_and_affected_only_annotates() -> None:
    product = [{"@id": LIBSSL_PURL}]
    outcome = _triage(
        _openvex(
            _statement("CVE-2023-5363", product, timestamp="2026-03-01T00:00:00Z"),
            _statement(
                "CVE-2023-5363",
                product,
                status="affected",
                action_statement="upgrade",
                timestamp="2026-04-01T00:00:00Z",
            ),
        )
    )
    assert not outcome.suppressed
    (annotated,) = outcome.annotated
    assert annotated.match == OPENSSL_MATCH and annotated.statement.status is VexStatus.AFFECTED
    older_affected = _triage(
        _openvex(
            _statement(
                "CVE-2023-5363", product, status="under_investigation", timestamp="2026-01-01T00:00:00Z"
            ),
            _statement("CVE-2023-5363", product, timestamp="2026-02-01T00:00:00Z"),
        )
    )
    assert [s.match.id for s in older_affected.suppressed] == ["CVE-2023-5363"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{", "is not JSON"),
        (
            _openvex(_statement("CVE-1", [{"@id": DIGEST}]), context="https://openvex.dev/ns/v0.0.1"),
            "not supported",
        ),
        (_openvex(_statement("CVE-1", [{"@id": DIGEST}], status="maybe")), "unknown status 'maybe'"),
        (
            _openvex(
                {"vulnerability": {"name": "CVE-1"}, "products": [{"@id": DIGEST}], "status": "not_affected"}
            ),
            "not_affected needs a justification or an impact_statement",
        ),
        (_openvex(_statement("CVE-1", [{"@id": DIGEST}], justification="trust_me")), "unknown justification"),
        (_openvex(_statement("CVE-1", [])), "statement 0: no product"),
        (_openvex({"products": [{"@id": DIGEST}], "status": "fixed"}), "no vulnerability name"),
        (json.dumps({"hello": 1}).encode(), "not a VEX document"),
    ],
)
def test_invalid_vex_documents_are_refused_as_a_whole(document: bytes, message: str) -> None:
    with pytest.raises(VexDocumentError, match=message):
        parse_vex(document, "vex.json")


# ---- CycloneDX VEX ---------------------------------------------------------------------------------------


def _cdx_vex(*vulnerabilities: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "version": 1,
            "metadata": {
                "component": {"type": "container", "bom-ref": "img", "name": "app", "version": DIGEST}
            },
            "components": [
                {"type": "library", "bom-ref": "lodash-ref", "name": "lodash", "purl": LODASH_PURL}
            ],
            "vulnerabilities": list(vulnerabilities),
        }
    ).encode()


def test_cyclonedx_vex_states_map_to_openvex_and_refs_resolve() -> None:
    statements = parse_vex(
        _cdx_vex(
            {
                "id": "CVE-2021-23337",
                "analysis": {
                    "state": "not_affected",
                    "justification": "code_not_reachable",
                    "detail": "no template()",
                },
                "affects": [{"ref": "lodash-ref"}],
            },
            {"id": "CVE-2023-5363", "analysis": {"state": "resolved"}, "affects": [{"ref": "img"}]},
            {"id": "CVE-2024-0001", "analysis": {"state": "in_triage"}, "affects": [{"ref": "img"}]},
            {"id": "CVE-2024-0002", "analysis": {"state": "exploitable"}, "affects": [{"ref": "img"}]},
            {"id": "CVE-2024-0003", "ratings": [], "affects": [{"ref": "img"}]},  # a report, not a statement
        ),
        "cdx.json",
    )
    assert [(s.vulnerability, s.status) for s in statements] == [
        ("CVE-2021-23337", VexStatus.NOT_AFFECTED),
        ("CVE-2023-5363", VexStatus.FIXED),
        ("CVE-2024-0001", VexStatus.UNDER_INVESTIGATION),
        ("CVE-2024-0002", VexStatus.AFFECTED),
    ]
    assert statements[0].justification == "vulnerable_code_not_in_execute_path"
    assert statements[0].impact_statement is not None and "no template()" in statements[0].impact_statement
    outcome = apply_triage(ANALYSIS, MATCHES, TriageInputs(statements=statements), today=TODAY)
    assert sorted(s.match.id for s in outcome.suppressed) == ["CVE-2023-5363", "GHSA-35jh-r3h4-6jhm"]


def test_cyclonedx_without_any_analysis_is_not_a_vex_document() -> None:
    with pytest.raises(VexDocumentError, match="no vulnerability with an analysis"):
        parse_vex(_cdx_vex({"id": "CVE-1", "affects": [{"ref": "img"}]}), "cdx.json")
    with pytest.raises(VexDocumentError, match="unknown analysis state"):
        parse_vex(_cdx_vex({"id": "CVE-1", "analysis": {"state": "meh"}, "affects": [{"ref": "img"}]}), "c")


# ---- ignore rules ----------------------------------------------------------------------------------------


def _rules(text: str) -> TriageInputs:
    config = parse_config(text.encode(), ".portwarden.yaml", base=Path("."))
    return TriageInputs(rules=config.rules)


def test_ignore_rules_select_by_id_alias_package_fix_state_and_location() -> None:
    cases = {
        "vulnerability: CVE-2021-23337": ["GHSA-35jh-r3h4-6jhm"],  # an alias
        "vulnerability: CVE-2023-5363\n    package: {name: libssl3, version: 3.0.11-1~deb12u1}": [
            "CVE-2023-5363"
        ],
        "vulnerability: CVE-2023-5363\n    package: {name: libssl1.1}": [],
        "package: {type: npm}": ["GHSA-35jh-r3h4-6jhm"],
        "package: {location: '/app/**'}": ["GHSA-35jh-r3h4-6jhm"],
        "package: {location: '/usr/**'}": [],
        "fix-state: fixed\n    namespace: debian:12": ["CVE-2023-5363"],
        "fix-state: wont-fix": [],
    }
    for criteria, expected in cases.items():
        inputs = _rules(f"ignore:\n  - {criteria}\n    reason: accepted\n")
        outcome = apply_triage(ANALYSIS, MATCHES, inputs, today=TODAY)
        assert [s.match.id for s in outcome.suppressed] == expected, criteria
        for item in outcome.suppressed:
            (reason,) = item.suppressed_by
            assert reason.kind == "ignore-rule" and reason.reason.endswith("accepted")


def test_an_expired_rule_no_longer_applies_and_says_so() -> None:
    inputs = _rules(
        "ignore:\n"
        "  - vulnerability: CVE-2023-5363\n    reason: until the upgrade\n    expires: 2026-05-31\n"
        "  - vulnerability: CVE-2021-23337\n    reason: still valid\n    expires: 2026-06-01\n"
    )
    outcome = apply_triage(ANALYSIS, MATCHES, inputs, today=TODAY)
    assert [s.match.id for s in outcome.suppressed] == ["GHSA-35jh-r3h4-6jhm"]  # valid through its last day
    assert outcome.warnings == (".portwarden.yaml: ignore rule 0 expired on 2026-05-31: not applied",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ignore:\n  - vulnerability: CVE-1\n", "reason: Field required"),
        ("ignore:\n  - vulnerability: CVE-1\n    reason: '  '\n", "needs a reason"),
        ("ignore:\n  - reason: everything\n", "must name a vulnerability, a package"),
        ("ignore:\n  - vulnerabilty: CVE-1\n    reason: typo\n", "vulnerabilty"),
        ("ignore:\n  - vulnerability: CVE-1\n    reason: r\n    fix-state: maybe\n", "fix-state"),
        ("ignore:\n  - package: {}\n    reason: r\n", "at least one of name"),
        ("ignore:\n  - vulnerability: CVE-1\n    reason: r\n    index: 3\n", "unknown key 'index'"),
        ("ignores: []\n", "unknown key 'ignores'"),
        ("ignore: [\n", "not valid YAML"),
        ("vex: [1]\n", "`vex` must be a list of file paths"),
    ],
)
def test_configuration_errors_name_the_rule_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        parse_config(text.encode(), ".portwarden.yaml", base=Path("."))


def test_both_vex_and_rules_are_kept_as_reasons(tmp_path: Path) -> None:
    vex_file = tmp_path / "vex" / "image.openvex.json"
    vex_file.parent.mkdir()
    vex_file.write_bytes(_openvex(_statement("CVE-2023-5363", [{"@id": DIGEST}])))
    config = parse_config(
        b"ignore:\n  - vulnerability: CVE-2023-5363\n    reason: reviewed\nvex: [vex/image.openvex.json]\n",
        "cfg",
        base=tmp_path,
    )
    outcome = apply_triage(ANALYSIS, MATCHES, load_triage_inputs([], config), today=TODAY)
    (item,) = outcome.suppressed
    assert [reason.kind for reason in item.suppressed_by] == ["vex", "ignore-rule"]


# ---- OpenVEX out -----------------------------------------------------------------------------------------


def test_findings_openvex_round_trips_suppressions_and_keeps_the_rest_affected() -> None:
    from datetime import UTC, datetime

    statements = parse_vex(_openvex(_statement("CVE-2023-5363", [{"@id": DIGEST}])), "in.json")
    inputs = TriageInputs(
        statements=statements, rules=_rules("ignore:\n  - package: {type: npm}\n    reason: risk ok\n").rules
    )
    outcome = apply_triage(ANALYSIS, MATCHES, inputs, today=TODAY)
    document = findings_openvex(ANALYSIS, outcome, now=datetime(2026, 6, 1, tzinfo=UTC))
    assert document["@context"] == "https://openvex.dev/ns/v0.2.0" and document["version"] == 1
    by_vuln = {s["vulnerability"]["name"]: s for s in document["statements"]}
    openssl = by_vuln["CVE-2023-5363"]
    assert openssl["status"] == "not_affected"
    assert openssl["justification"] == "vulnerable_code_not_in_execute_path"
    assert openssl["products"][0]["@id"].startswith(f"pkg:oci/app@{DIGEST}?")
    assert openssl["products"][0]["subcomponents"] == [{"@id": LIBSSL_PURL}]
    # An ignore rule accepts a risk: the package stays affected, with the reason.
    lodash = by_vuln["GHSA-35jh-r3h4-6jhm"]
    assert lodash["status"] == "affected" and "risk ok" in lodash["action_statement"]
    assert lodash["vulnerability"]["aliases"] == ["CVE-2021-23337"]
    # Read back, the document suppresses what it says is not affected, and only that.
    again = parse_vex(json.dumps(document).encode(), "out.json")
    replay = apply_triage(ANALYSIS, MATCHES, TriageInputs(statements=again), today=TODAY)
    assert [s.match.id for s in replay.suppressed] == ["CVE-2023-5363"]
    assert [a.match.id for a in replay.annotated] == ["GHSA-35jh-r3h4-6jhm"]
