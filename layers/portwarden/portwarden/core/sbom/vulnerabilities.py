"""Scan documents: an SBOM together with the vulnerabilities matched against it.

* ``scan_json``: the native SBOM document plus ``vulnerabilities`` (one object per match, the shape of
  ``portwarden.core.model.match.Match``), what ``portwarden scan -o json`` prints;
* ``cyclonedx_with_vulnerabilities``: the CycloneDX 1.6 document plus its ``vulnerabilities`` section,
  each entry pointing at the affected component by ``bom-ref``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.match import Match
from portwarden.core.model.package import Package
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.sbom import encode
from portwarden.core.sbom.identity import package_ids

if TYPE_CHECKING:
    from portwarden.core.triage.model import TriageOutcome


def scan_document(
    analysis: ImageAnalysis, matches: Sequence[Match], triage: TriageOutcome | None = None
) -> dict[str, Any]:
    """The SBOM plus ``vulnerabilities`` (reported matches; a ``vex`` object on those a VEX statement
    marks affected or under investigation) and ``suppressed`` (each match with its ``suppressed_by``)."""
    document: dict[str, Any] = json.loads(encode(analysis, "json"))
    statements = {id(item.match): item.statement for item in triage.annotated} if triage else {}
    entries = []
    for match in matches:
        entry = match.model_dump(mode="json")
        statement = statements.get(id(match))
        if statement is not None:
            entry["vex"] = statement.model_dump(mode="json", exclude_none=True)
        entries.append(entry)
    document["vulnerabilities"] = entries
    document["suppressed"] = [
        {
            **item.match.model_dump(mode="json"),
            "suppressed_by": [
                reason.model_dump(mode="json", exclude_none=True) for reason in item.suppressed_by
            ],
        }
        for item in (triage.suppressed if triage else ())
    ]
    return document


def scan_json(analysis: ImageAnalysis, matches: Sequence[Match], *, indent: int = 2) -> str:
    return json.dumps(scan_document(analysis, matches), indent=indent, ensure_ascii=False) + "\n"


def package_key(
    name: str, version: str, package_type: str, purl: str | None, location: str | None
) -> tuple[str, ...]:
    """What a match records of its package, enough to find the package (and its SBOM element) again."""
    return (package_type, name, version, purl or "", location or "")


def _key_of(package: Package) -> tuple[str, ...]:
    location = package.locations[0].path if package.locations else None
    return package_key(package.name, package.version, package.type.value, package.purl, location)


def match_package_refs(analysis: ImageAnalysis) -> dict[tuple[str, ...], str]:
    """Package identity -> the element id the SBOM encoders give that package (the first one, for twins)."""
    refs: dict[tuple[str, ...], str] = {}
    for package, ref in zip(analysis.packages, package_ids(analysis.packages), strict=True):
        refs.setdefault(_key_of(package), ref)
    return refs


_CDX_SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
    Severity.NEGLIGIBLE: "info",
    Severity.UNKNOWN: "unknown",
}


def _cdx_method(version: str) -> str:
    return {"2.0": "CVSSv2", "3.0": "CVSSv3", "3.1": "CVSSv31", "4.0": "CVSSv4"}.get(version, "other")


def _source_of(match: Match) -> dict[str, str]:
    vuln_id = match.id
    if vuln_id.startswith("GHSA-"):
        return {"name": "GitHub Advisory Database", "url": f"https://github.com/advisories/{vuln_id}"}
    if vuln_id.startswith("CVE-"):
        return {"name": "NVD", "url": f"https://nvd.nist.gov/vuln/detail/{vuln_id}"}
    return {"name": "OSV", "url": f"https://osv.dev/vulnerability/{vuln_id}"}


def cyclonedx_vulnerabilities(analysis: ImageAnalysis, matches: Sequence[Match]) -> list[dict[str, Any]]:
    """The CycloneDX 1.6 ``vulnerabilities`` array: one entry per vulnerability, affecting its components."""
    refs = match_package_refs(analysis)
    entries: dict[str, dict[str, Any]] = {}
    for match in matches:
        package = match.package
        ref = refs.get(
            package_key(package.name, package.version, package.type, package.purl, package.location)
        )
        entry = entries.get(match.id)
        if entry is None:
            ratings: list[dict[str, Any]] = [
                {
                    "score": score.score,
                    "severity": _CDX_SEVERITY.get(_band(score.score, score.version), "unknown"),
                    "method": _cdx_method(score.version),
                    "vector": score.vector,
                    **({"source": {"name": score.source}} if score.source else {}),
                }
                for score in match.cvss
                if score.score is not None
            ]
            ratings.insert(
                0,
                {
                    "severity": _CDX_SEVERITY[match.severity],
                    "method": "other",
                    "source": {"name": match.namespace},
                },
            )
            entry = {
                "bom-ref": f"vuln-{match.id}",
                "id": match.id,
                "source": _source_of(match),
                "references": [{"id": alias, "source": {"name": "alias"}} for alias in match.aliases],
                "ratings": ratings,
                "affects": [],
                "properties": [
                    {"name": "portwarden:namespace", "value": match.namespace},
                    {"name": "portwarden:kev", "value": str(match.kev).lower()},
                ],
            }
            if match.description:
                entry["description"] = match.description
            if match.published:
                entry["published"] = match.published.isoformat()
            if match.urls:
                entry["advisories"] = [{"url": url} for url in match.urls]
            if match.epss is not None:
                entry["properties"].append({"name": "portwarden:epss", "value": f"{match.epss:.5f}"})
            if match.fix.state is FixState.FIXED and match.fix.versions:
                entry["recommendation"] = "Upgrade to " + " or ".join(match.fix.versions)
            if not entry["references"]:
                del entry["references"]
            entries[match.id] = entry
        if ref is not None and all(item["ref"] != ref for item in entry["affects"]):
            status = "affected"
            entry["affects"].append(
                {"ref": ref, "versions": [{"version": package.version, "status": status}]}
            )
    return [entry for entry in entries.values() if entry["affects"]]


def _band(score: float | None, version: str) -> Severity:
    if score is None:
        return Severity.UNKNOWN
    if score == 0:
        return Severity.NEGLIGIBLE
    if score < 4.0:
        return Severity.LOW
    if score < 7.0:
        return Severity.MEDIUM
    if score < 9.0 or version.startswith("2"):
        return Severity.HIGH
    return Severity.CRITICAL


def cyclonedx_with_vulnerabilities(
    analysis: ImageAnalysis, matches: Sequence[Match], *, indent: int = 2
) -> str:
    """The CycloneDX JSON document of the analysis, with the matches as its ``vulnerabilities``."""
    document: dict[str, Any] = json.loads(encode(analysis, "cyclonedx-json"))
    document["vulnerabilities"] = cyclonedx_vulnerabilities(analysis, matches)
    return json.dumps(document, indent=indent, ensure_ascii=False) + "\n"
