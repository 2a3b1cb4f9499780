"""SARIF 2.1.0 for vulnerability matches, as code-scanning dashboards read it.

One rule per vulnerability (its id, description, help text and a ``security-severity`` score, which
GitHub uses to grade the alert), one result per (vulnerability, package). A result's location is the
file where the package was found, relative to the image root (``usr/lib/python3/…/METADATA``), with a
logical location naming the image, since the findings are about an image rather than a source tree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import portwarden
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.match import Match
from portwarden.core.model.vulnerability import Severity
from portwarden.core.sbom.identity import image_name

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.NEGLIGIBLE: "note",
    Severity.UNKNOWN: "warning",
}
# Used for ``security-severity`` when no CVSS score is known: the middle of each band.
_BAND_SCORE = {
    Severity.CRITICAL: 9.5,
    Severity.HIGH: 8.0,
    Severity.MEDIUM: 5.5,
    Severity.LOW: 2.0,
    Severity.NEGLIGIBLE: 0.0,
    Severity.UNKNOWN: 0.0,
}


def to_sarif(analysis: ImageAnalysis, matches: Sequence[Match]) -> dict[str, Any]:
    image = image_name(analysis.source)
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for match in matches:
        rule_index = _rule(rules, match)
        package = match.package
        fix = (
            f"fixed in {', '.join(match.fix.versions)}"
            if match.fix.versions
            else f"fix state: {match.fix.state.value}"
        )
        message = (
            f"{match.id} ({match.severity.value}) in {package.type} package {package.name} "
            f"{package.version}; {fix}"
        )
        location = (package.location or "/").lstrip("/") or "."
        results.append(
            {
                "ruleId": match.id,
                "ruleIndex": rule_index,
                "level": _LEVEL[match.severity],
                "message": {"text": message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": location, "uriBaseId": "IMAGE_ROOT"}
                        },
                        "logicalLocations": [{"name": image, "kind": "module"}],
                    }
                ],
                "partialFingerprints": {
                    "packageVulnerability": ":".join(
                        (match.id, package.type, package.name, package.version, location)
                    )
                },
                "properties": {
                    "package": package.model_dump(mode="json"),
                    "namespace": match.namespace,
                    "fix": match.fix.model_dump(mode="json"),
                    "kev": match.kev,
                    "epss": match.epss,
                    "matchedBy": match.matched_by.model_dump(mode="json"),
                },
            }
        )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "portwarden",
                "version": portwarden.__version__,
                "rules": list(rules.values()),
            }
        },
        "originalUriBaseIds": {"IMAGE_ROOT": {"uri": "file:///"}},
        "results": results,
        "properties": {
            "image": image,
            "manifestDigest": analysis.source.manifest_digest,
            "distro": f"{analysis.distro.id} {analysis.distro.version_id or ''}".strip()
            if analysis.distro
            else None,
        },
    }
    return {"version": "2.1.0", "$schema": SCHEMA_URI, "runs": [run]}


def _rule(rules: dict[str, dict[str, Any]], match: Match) -> int:
    if match.id not in rules:
        scores = [score.score for score in match.cvss if score.score is not None]
        security_severity = max(scores) if scores else _BAND_SCORE[match.severity]
        summary = match.description or f"{match.id} ({match.severity.value})"
        first_line = summary.strip().splitlines()[0] if summary.strip() else match.id
        help_lines = [f"Vulnerability {match.id}", f"Severity: {match.severity.value}"]
        if match.aliases:
            help_lines.append("Aliases: " + ", ".join(match.aliases))
        help_lines.extend(match.urls[:5])
        rule: dict[str, Any] = {
            "id": match.id,
            "name": "Vulnerability",
            "shortDescription": {"text": first_line[:200]},
            "fullDescription": {"text": summary[:4000]},
            "help": {"text": "\n".join(help_lines)},
            "defaultConfiguration": {"level": _LEVEL[match.severity]},
            "properties": {
                "security-severity": f"{security_severity:.1f}",
                "tags": ["security", "vulnerability", match.severity.value.lower()],
            },
        }
        if match.urls:
            rule["helpUri"] = match.urls[0]
        rules[match.id] = rule
    return list(rules).index(match.id)


def to_sarif_json(analysis: ImageAnalysis, matches: Sequence[Match], *, indent: int = 2) -> str:
    return json.dumps(to_sarif(analysis, matches), indent=indent, ensure_ascii=False) + "\n"
