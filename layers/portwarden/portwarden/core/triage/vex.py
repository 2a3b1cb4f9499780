"""VEX documents in: OpenVEX 0.2 and CycloneDX VEX (1.4 to 1.6), normalized to :class:`VexStatement`.

A document that is not one of these, or states something invalid (an unknown status or justification,
``not_affected`` with neither justification nor impact statement, a statement without vulnerability or
product), is refused as a whole with a :class:`VexDocumentError` naming the statement: a VEX file that is
half applied would hide why a finding is (or is not) suppressed.

CycloneDX analysis states map to OpenVEX statuses: ``not_affected`` and ``false_positive`` ->
``not_affected``, ``resolved`` and ``resolved_with_pedigree`` -> ``fixed``, ``exploitable`` ->
``affected``, ``in_triage`` -> ``under_investigation``. Justifications map to OpenVEX's closest one; the
CycloneDX words are kept in the impact statement.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portwarden.core.errors import VexDocumentError
from portwarden.core.triage.model import VexJustification, VexProduct, VexStatement, VexStatus

OPENVEX_CONTEXTS = ("https://openvex.dev/ns", "https://openvex.dev/ns/v0.2.0")
CYCLONEDX_SPEC_VERSIONS = ("1.4", "1.5", "1.6")
MAX_VEX_BYTES = 64 * 1024 * 1024

_CDX_STATES = {
    "not_affected": VexStatus.NOT_AFFECTED,
    "false_positive": VexStatus.NOT_AFFECTED,
    "resolved": VexStatus.FIXED,
    "resolved_with_pedigree": VexStatus.FIXED,
    "exploitable": VexStatus.AFFECTED,
    "in_triage": VexStatus.UNDER_INVESTIGATION,
}
_CDX_JUSTIFICATIONS = {
    "code_not_present": VexJustification.VULNERABLE_CODE_NOT_PRESENT,
    "code_not_reachable": VexJustification.VULNERABLE_CODE_NOT_IN_EXECUTE_PATH,
    "requires_configuration": VexJustification.VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY,
    "requires_dependency": VexJustification.COMPONENT_NOT_PRESENT,
    "requires_environment": VexJustification.VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY,
    "protected_by_compiler": VexJustification.INLINE_MITIGATIONS_ALREADY_EXIST,
    "protected_at_runtime": VexJustification.INLINE_MITIGATIONS_ALREADY_EXIST,
    "protected_at_perimeter": VexJustification.INLINE_MITIGATIONS_ALREADY_EXIST,
    "protected_by_mitigating_control": VexJustification.INLINE_MITIGATIONS_ALREADY_EXIST,
}


def read_vex(path: Path) -> tuple[VexStatement, ...]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_VEX_BYTES + 1)
    except OSError as exc:
        raise VexDocumentError(f"cannot read VEX document {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_VEX_BYTES:
        raise VexDocumentError(f"{path} is larger than {MAX_VEX_BYTES} bytes")
    return parse_vex(data, str(path))


def parse_vex(data: bytes, location: str) -> tuple[VexStatement, ...]:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VexDocumentError(f"{location} is not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise VexDocumentError(f"{location} is not a VEX document (the top level is not an object)")
    context = document.get("@context")
    if isinstance(context, str) and context.startswith("https://openvex.dev/ns"):
        if context.rstrip("/") not in OPENVEX_CONTEXTS:
            raise VexDocumentError(
                f"{location}: OpenVEX context {context} is not supported (Portwarden reads OpenVEX 0.2.0)"
            )
        return _openvex(document, location)
    if document.get("bomFormat") == "CycloneDX":
        version = document.get("specVersion")
        if version not in CYCLONEDX_SPEC_VERSIONS:
            raise VexDocumentError(
                f"{location}: CycloneDX spec version {version} is not supported "
                f"(Portwarden reads {', '.join(CYCLONEDX_SPEC_VERSIONS)})"
            )
        return _cyclonedx(document, location)
    raise VexDocumentError(f"{location} is not a VEX document Portwarden reads (OpenVEX 0.2, CycloneDX VEX)")


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _time(value: object, where: str) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise VexDocumentError(f"{where}: timestamp {text!r} is not RFC 3339") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# ---- OpenVEX ---------------------------------------------------------------------------------------------


def _openvex_ids(component: dict[str, Any]) -> list[str]:
    ids = [_text(component.get("@id"))]
    identifiers = component.get("identifiers")
    if isinstance(identifiers, dict):
        ids += [_text(identifiers.get(key)) for key in ("purl", "cpe23", "cpe22")]
    return [value for value in dict.fromkeys(ids) if value]


def _openvex(document: dict[str, Any], location: str) -> tuple[VexStatement, ...]:
    statements = document.get("statements")
    if not isinstance(statements, list) or not statements:
        raise VexDocumentError(f"{location}: OpenVEX document without statements")
    document_time = _time(document.get("timestamp"), location)
    result: list[VexStatement] = []
    for index, raw in enumerate(statements):
        where = f"{location} statement {index}"
        if not isinstance(raw, dict):
            raise VexDocumentError(f"{where}: not a JSON object")
        vulnerability = raw.get("vulnerability")
        if isinstance(vulnerability, dict):
            name = _text(vulnerability.get("name")) or _text(vulnerability.get("@id"))
            aliases = tuple(a for a in (_text(v) for v in vulnerability.get("aliases") or ()) if a)
        else:
            name, aliases = "", ()
        if not name:
            raise VexDocumentError(f"{where}: no vulnerability name")
        products = tuple(
            VexProduct(
                ids=tuple(ids),
                subcomponents=tuple(
                    sub_id for sub in _dicts(product.get("subcomponents")) for sub_id in _openvex_ids(sub)
                ),
            )
            for product in _dicts(raw.get("products"))
            if (ids := _openvex_ids(product))
        )
        if not products:
            raise VexDocumentError(f"{where}: no product")
        status_text = _text(raw.get("status"))
        try:
            status = VexStatus(status_text)
        except ValueError as exc:
            raise VexDocumentError(f"{where}: unknown status {status_text!r}") from exc
        justification = _text(raw.get("justification")) or None
        if justification is not None and justification not in VexJustification.__members__.values():
            raise VexDocumentError(f"{where}: unknown justification {justification!r}")
        impact = _text(raw.get("impact_statement")) or None
        if status is VexStatus.NOT_AFFECTED and not (justification or impact):
            raise VexDocumentError(f"{where}: not_affected needs a justification or an impact_statement")
        result.append(
            VexStatement(
                vulnerability=name,
                aliases=aliases,
                products=products,
                status=status,
                justification=justification,
                impact_statement=impact,
                action_statement=_text(raw.get("action_statement")) or None,
                timestamp=_time(raw.get("timestamp"), where) or document_time,
                document=location,
                index=index,
                format="openvex",
            )
        )
    return tuple(result)


# ---- CycloneDX VEX ---------------------------------------------------------------------------------------


def _cyclonedx_components(document: dict[str, Any]) -> dict[str, list[str]]:
    """bom-ref -> the identifiers of that component (purl, CPE, the image's name@digest)."""
    found: dict[str, list[str]] = {}
    stack = _dicts(document.get("components"))
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("component"), dict):
        stack.append(metadata["component"])
    while stack:
        component = stack.pop()
        ref = _text(component.get("bom-ref"))
        ids = [_text(component.get("purl")), _text(component.get("cpe"))]
        version = _text(component.get("version"))
        if _text(component.get("type")) == "container" and version.startswith("sha256:"):
            ids.append(version)
        if ref:
            found[ref] = [value for value in ids if value] + [ref]
        stack.extend(_dicts(component.get("components")))
    return found


def _cyclonedx(document: dict[str, Any], location: str) -> tuple[VexStatement, ...]:
    components = _cyclonedx_components(document)
    metadata = document.get("metadata")
    document_time = _time(metadata.get("timestamp"), location) if isinstance(metadata, dict) else None
    result: list[VexStatement] = []
    vulnerabilities = _dicts(document.get("vulnerabilities"))
    for index, vulnerability in enumerate(vulnerabilities):
        analysis = vulnerability.get("analysis")
        if not isinstance(analysis, dict):
            continue  # a vulnerability report, not a statement about it
        where = f"{location} vulnerability {index}"
        name = _text(vulnerability.get("id"))
        if not name:
            raise VexDocumentError(f"{where}: no id")
        state = _text(analysis.get("state"))
        status = _CDX_STATES.get(state)
        if status is None:
            raise VexDocumentError(f"{where}: unknown analysis state {state!r}")
        products = tuple(
            VexProduct(ids=tuple(components.get(ref, [ref])))
            for affected in _dicts(vulnerability.get("affects"))
            if (ref := _text(affected.get("ref")))
        )
        if not products:
            raise VexDocumentError(f"{where}: affects no component")
        cdx_justification = _text(analysis.get("justification"))
        justification = None
        if cdx_justification:
            mapped = _CDX_JUSTIFICATIONS.get(cdx_justification)
            if mapped is None:
                raise VexDocumentError(f"{where}: unknown justification {cdx_justification!r}")
            justification = mapped.value
        detail = _text(analysis.get("detail"))
        impact_parts = [
            f"CycloneDX analysis: {state}" + (f", {cdx_justification}" if cdx_justification else "")
        ]
        if detail:
            impact_parts.append(detail)
        responses = [r for r in (_text(v) for v in analysis.get("response") or ()) if r]
        result.append(
            VexStatement(
                vulnerability=name,
                aliases=tuple(
                    ref_id
                    for ref in _dicts(vulnerability.get("references"))
                    if (ref_id := _text(ref.get("id")))
                ),
                products=products,
                status=status,
                justification=justification,
                impact_statement="; ".join(impact_parts),
                action_statement=", ".join(responses) or None,
                timestamp=_time(analysis.get("lastUpdated"), where)
                or _time(analysis.get("firstIssued"), where)
                or _time(vulnerability.get("updated"), where)
                or document_time,
                document=location,
                index=index,
                format="cyclonedx",
            )
        )
    if not result:
        raise VexDocumentError(
            f"{location}: no vulnerability with an analysis (a CycloneDX VEX statement needs analysis.state)"
        )
    return tuple(result)
