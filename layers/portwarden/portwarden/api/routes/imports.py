"""SBOM imports (Anchore's ``/imports/images``): an operation, its uploaded parts, then
``POST /images`` with ``source.import`` turns them into an analyzed image."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from portwarden.api.context import Scope, scope
from portwarden.api.dependencies import current_event
from portwarden.api.shapes import iso
from portwarden.core.errors import InvalidRequestError, NotFoundError
from portwarden.core.model.accounts import IMPORT_CONTENT_KINDS, ImportOperation, ImportStatus
from portwarden.core.ports import ImportStore

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

# How long an operation accepts parts and can be finished.
OPERATION_LIFETIME = timedelta(hours=24)


def imports_of(current: Scope) -> ImportStore:
    return current.need(current.deps.imports, "SBOM imports")


def _body(operation: ImportOperation) -> dict[str, Any]:
    status = operation.status
    if status is ImportStatus.PENDING and operation.expires_at < datetime.now(UTC):
        status = ImportStatus.EXPIRED
    return {
        "uuid": operation.uuid,
        "status": status.value,
        "created_at": iso(operation.created_at),
        "expires_at": iso(operation.expires_at),
    }


def pending_operation(store: ImportStore, operation_id: str) -> ImportOperation:
    operation = store.get_operation(operation_id)
    if operation is None:
        raise NotFoundError(f"import operation {operation_id} not found")
    if operation.status is not ImportStatus.PENDING or operation.expires_at < datetime.now(UTC):
        raise InvalidRequestError(
            f"import operation {operation_id} is {_body(operation)['status']}, not pending"
        )
    return operation


@router.post("/imports/images", summary="Start an SBOM import", tags=["imports"])
def start_import() -> dict[str, Any]:
    current = scope()
    now = datetime.now(UTC)
    operation = ImportOperation(uuid=str(uuid.uuid4()), created_at=now, expires_at=now + OPERATION_LIFETIME)
    imports_of(current).put_operation(operation)
    return _body(operation)


@router.get("/imports/images", summary="SBOM import operations", tags=["imports"])
def list_imports() -> list[dict[str, Any]]:
    return [_body(operation) for operation in imports_of(scope()).list_operations()]


@router.get("/imports/images/<operation_id>", summary="One SBOM import operation", tags=["imports"])
def get_import(operation_id: str) -> dict[str, Any]:
    operation = imports_of(scope()).get_operation(operation_id)
    if operation is None:
        raise NotFoundError(f"import operation {operation_id} not found")
    return _body(operation)


@router.delete(
    "/imports/images/<operation_id>", summary="Drop an SBOM import and its parts", tags=["imports"]
)
def delete_import(operation_id: str) -> None:
    if not imports_of(scope()).delete_operation(operation_id):
        raise NotFoundError(f"import operation {operation_id} not found")


@router.post(
    "/imports/images/<operation_id>/<kind>", summary="Upload one part of an import", tags=["imports"]
)
def upload_part(operation_id: str, kind: str) -> dict[str, Any]:
    current = scope()
    if kind not in IMPORT_CONTENT_KINDS:
        raise NotFoundError(f"unknown import part {kind!r}; one of {', '.join(IMPORT_CONTENT_KINDS)}")
    store = imports_of(current)
    pending_operation(store, operation_id)
    raw = current_event().get("body") or ""
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    if not data:
        raise InvalidRequestError(f"the {kind} part is empty")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    store.put_content(operation_id, kind, digest, data)
    return {"digest": digest, "created_at": iso(datetime.now(UTC))}


@router.get(
    "/imports/images/<operation_id>/<kind>", summary="Digests of the uploaded parts", tags=["imports"]
)
def list_parts(operation_id: str, kind: str) -> list[str]:
    current = scope()
    if kind not in IMPORT_CONTENT_KINDS:
        raise NotFoundError(f"unknown import part {kind!r}")
    store = imports_of(current)
    if store.get_operation(operation_id) is None:
        raise NotFoundError(f"import operation {operation_id} not found")
    return store.list_contents(operation_id, kind)
