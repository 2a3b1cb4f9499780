"""Registry credentials: add (optionally validated against the registry), list, get, update, delete.

The password is stored for pulls and never returned or logged. ``registry_verify: false`` (what
``anchore-cli registry add --insecure`` sends) lets pulls from that host use plain HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field

from portwarden.api.context import Scope, scope
from portwarden.api.shapes import RegistryConfiguration
from portwarden.core.errors import ConflictError, InvalidRequestError, NotFoundError, PortwardenError
from portwarden.core.model.accounts import RegistryRecord
from portwarden.core.model.base import ValueObject
from portwarden.core.ports import RegistryStore

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

REGISTRY_TYPES = ("docker_v2", "awsecr")


class RegistryRequest(ValueObject):
    model_config = ConfigDict(frozen=True, extra="ignore")

    registry: str = Field(min_length=1, max_length=512)
    registry_user: str = ""
    registry_pass: str = Field(default="", repr=False)
    registry_type: str = "docker_v2"
    registry_verify: bool = True
    registry_name: str | None = None


def _store(current: Scope) -> RegistryStore:
    return current.need(current.deps.registries, "registries")


def _validated(current: Scope, record: RegistryRecord) -> None:
    """Probe the registry with the credentials (``/v2/`` and a token if it asks for one)."""
    probe = current.need(current.deps.registry_probe, "registry validation")
    try:
        probe(record)
    except PortwardenError as exc:
        raise InvalidRequestError(f"cannot log in to {record.registry}: {exc}") from exc


def _record(body: RegistryRequest, existing: RegistryRecord | None) -> RegistryRecord:
    if body.registry_type not in REGISTRY_TYPES:
        raise InvalidRequestError(f"registry_type is one of {', '.join(REGISTRY_TYPES)}")
    if "://" in body.registry:
        raise InvalidRequestError("registry is host[:port][/repository prefix], without a scheme")
    now = datetime.now(UTC)
    return RegistryRecord(
        registry=body.registry,
        registry_name=body.registry_name,
        registry_user=body.registry_user,
        registry_pass=body.registry_pass,
        registry_type=body.registry_type,
        registry_verify=body.registry_verify,
        created_at=existing.created_at if existing else now,
        last_updated=now,
    )


@router.get("/registries", summary="Registries of the account", tags=["registries"])
def list_registries() -> list[RegistryConfiguration]:
    current = scope()
    return [RegistryConfiguration.of(r, current.caller.account) for r in _store(current).list_registries()]


@router.post("/registries", summary="Add a registry", tags=["registries"])
def add_registry(
    body: RegistryRequest,
    validate: Annotated[bool, Query(description="Log in to the registry before saving")] = True,
) -> list[RegistryConfiguration]:
    current = scope()
    store = _store(current)
    if store.get_registry(body.registry) is not None:
        raise ConflictError(f"registry {body.registry} already exists; update it instead")
    record = _record(body, None)
    if validate:
        _validated(current, record)
    store.put_registry(record)
    return [RegistryConfiguration.of(record, current.caller.account)]


@router.get("/registries/<registry>", summary="One registry (a list of one)", tags=["registries"])
def get_registry(registry: str) -> list[RegistryConfiguration]:
    current = scope()
    record = _store(current).get_registry(registry)
    if record is None:
        raise NotFoundError(f"registry {registry} not found")
    return [RegistryConfiguration.of(record, current.caller.account)]


@router.put("/registries/<registry>", summary="Update a registry", tags=["registries"])
def update_registry(
    registry: str, body: RegistryRequest, validate: bool = True
) -> list[RegistryConfiguration]:
    current = scope()
    store = _store(current)
    existing = store.get_registry(registry)
    if existing is None:
        raise NotFoundError(f"registry {registry} not found")
    if body.registry != registry:
        raise InvalidRequestError("the registry in the body must match the one in the path")
    record = _record(body, existing)
    if validate:
        _validated(current, record)
    store.put_registry(record)
    return [RegistryConfiguration.of(record, current.caller.account)]


@router.delete("/registries/<registry>", summary="Delete a registry (images stay)", tags=["registries"])
def delete_registry(registry: str) -> None:
    current = scope()
    if not _store(current).delete_registry(registry):
        raise NotFoundError(f"registry {registry} not found")
