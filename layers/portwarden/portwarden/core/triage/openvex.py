"""The OpenVEX 0.2 document of a scan's findings (``portwarden scan -o openvex``).

The product is the image (its ``pkg:oci`` purl when it has a registry reference, else its manifest
digest); each statement names the vulnerable packages as subcomponents. Reported matches are
``affected`` (or ``under_investigation`` when a VEX statement said so) with the upgrade to make; matches
a VEX statement suppressed keep that statement's status and justification. A match suppressed by an
ignore rule stays ``affected``: an ignore rule accepts a risk, it does not state that the image is not
affected, and the reason is carried in the action statement.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import portwarden
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.match import Match
from portwarden.core.model.vulnerability import FixState
from portwarden.core.sbom.identity import image_purl
from portwarden.core.triage.model import TriageOutcome, VexStatement, VexStatus

OPENVEX_CONTEXT = "https://openvex.dev/ns/v0.2.0"
_DOCUMENT_NAMESPACE = uuid.UUID("1d8b7f0e-3c0a-5f51-9a4e-6b1f0c2d9e73")


def _subcomponent(match: Match) -> str:
    package = match.package
    return package.purl or f"pkg:generic/{package.name}@{package.version}"


def _fix_action(match: Match) -> str:
    if match.fix.state is FixState.FIXED and match.fix.versions:
        return f"Upgrade {match.package.name} to {' or '.join(match.fix.versions)}"
    return f"No fix available yet ({match.fix.state.value}); track the advisory"


def findings_openvex(
    analysis: ImageAnalysis, outcome: TriageOutcome, *, now: datetime, author: str = "Portwarden"
) -> dict[str, Any]:
    product = image_purl(analysis.source) or analysis.source.manifest_digest
    annotated = {id(item.match): item.statement for item in outcome.annotated}
    # (vulnerability, status, justification, impact, action) -> aliases, subcomponents
    groups: dict[tuple[str, str, str | None, str | None, str | None], tuple[list[str], list[str]]] = {}

    def add(match: Match, status: VexStatus, statement: VexStatement | None, action: str | None) -> None:
        key = (
            match.id,
            status.value,
            statement.justification if statement else None,
            statement.impact_statement if statement else None,
            action,
        )
        aliases, parts = groups.setdefault(key, ([], []))
        aliases.extend(alias for alias in match.aliases if alias not in aliases)
        subcomponent = _subcomponent(match)
        if subcomponent not in parts:
            parts.append(subcomponent)

    for match in outcome.matches:
        said = annotated.get(id(match))
        if said is not None and said.status is VexStatus.UNDER_INVESTIGATION:
            add(match, VexStatus.UNDER_INVESTIGATION, said, None)
        else:
            add(match, VexStatus.AFFECTED, None, _fix_action(match))
    for item in outcome.suppressed:
        vex = next((s.statement for s in item.suppressed_by if s.statement is not None), None)
        if vex is not None:
            add(item.match, vex.status, vex, vex.action_statement)
            continue
        reasons = "; ".join(s.reason for s in item.suppressed_by)
        add(item.match, VexStatus.AFFECTED, None, f"{_fix_action(item.match)}. Risk accepted: {reasons}")

    timestamp = now.isoformat(timespec="seconds")
    statements = []
    for (vuln_id, status, justification, impact, action), (aliases, parts) in groups.items():
        vulnerability: dict[str, Any] = {"name": vuln_id}
        if aliases:
            vulnerability["aliases"] = aliases
        entry: dict[str, Any] = {
            "vulnerability": vulnerability,
            "products": [{"@id": product, "subcomponents": [{"@id": part} for part in parts]}],
            "status": status,
        }
        if justification:
            entry["justification"] = justification
        if impact:
            entry["impact_statement"] = impact
        if action and status == VexStatus.AFFECTED.value:
            entry["action_statement"] = action
        statements.append(entry)
    name = f"{analysis.source.manifest_digest}@{timestamp}"
    return {
        "@context": OPENVEX_CONTEXT,
        "@id": f"https://portwarden.dev/vex/{uuid.uuid5(_DOCUMENT_NAMESPACE, name)}",
        "author": author,
        "timestamp": timestamp,
        "version": 1,
        "tooling": f"portwarden {portwarden.__version__}",
        "statements": statements,
    }
