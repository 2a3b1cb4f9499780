"""VEX documents stored per account (``/vex``): OpenVEX 0.2 or CycloneDX VEX, validated as ``--vex``
files are. The account's statements apply to its vulnerability reports (suppressed matches move to a
``suppressed`` list) and to its policy checks (the ``vulnerabilities`` gate counts only what is not
suppressed). Anchore has no such routes; the shapes are Portwarden's own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from portwarden.api.context import Scope, scope
from portwarden.api.dependencies import current_event
from portwarden.api.shapes import iso
from portwarden.core.errors import InvalidRequestError, NotFoundError
from portwarden.core.ports import VexStore
from portwarden.core.triage.model import StoredVexDocument
from portwarden.core.triage.stored import accept_vex_document

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


def vex_of(current: Scope) -> VexStore:
    return current.need(current.deps.vex, "VEX documents")


def _summary(document: StoredVexDocument) -> dict[str, Any]:
    return {
        "id": document.id,
        "format": document.format,
        "created_at": iso(document.created_at),
        "statement_count": len(document.statements),
        "vulnerabilities": list(document.vulnerabilities),
    }


def _full(document: StoredVexDocument) -> dict[str, Any]:
    return {
        **_summary(document),
        "statements": [statement.model_dump(mode="json") for statement in document.statements],
        "document": document.document,
    }


@router.post("/vex", summary="Store a VEX document (OpenVEX 0.2 or CycloneDX VEX)", tags=["vex"])
def add_vex_document() -> dict[str, Any]:
    current = scope()
    store = vex_of(current)
    raw = current_event().get("body") or ""
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    if not data.strip():
        raise InvalidRequestError("the body must be a VEX document (OpenVEX 0.2 or CycloneDX VEX)")
    # VexDocumentError (400) names what is wrong: the statement, the field, the value.
    document = accept_vex_document(data, now=datetime.now(UTC))
    store.put_document(document)
    return _full(document)


@router.get("/vex", summary="The account's VEX documents", tags=["vex"])
def list_vex_documents() -> list[dict[str, Any]]:
    return [_summary(document) for document in vex_of(scope()).list_documents()]


@router.get("/vex/<document_id>", summary="One VEX document with its statements", tags=["vex"])
def get_vex_document(document_id: str) -> dict[str, Any]:
    document = vex_of(scope()).get_document(document_id)
    if document is None:
        raise NotFoundError(f"VEX document {document_id} not found")
    return _full(document)


@router.delete("/vex/<document_id>", summary="Delete a VEX document", tags=["vex"])
def delete_vex_document(document_id: str) -> dict[str, Any]:
    if not vex_of(scope()).delete_document(document_id):
        raise NotFoundError(f"VEX document {document_id} not found")
    return {"id": document_id, "status": "deleted"}
