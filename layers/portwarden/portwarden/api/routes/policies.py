"""Policy bundles: list, add, get, update/activate, delete (exactly one active bundle per account)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from portwarden.api.context import Scope, scope
from portwarden.api.shapes import PolicyRecord
from portwarden.core.errors import ConflictError, InvalidRequestError, NotFoundError, PortwardenError
from portwarden.core.ports import PolicyStore
from portwarden.core.services.events import record_event

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


def _policies(current: Scope) -> PolicyStore:
    return current.need(current.deps.policies, "policy bundles")


def _record_change(current: Scope, event_type: str, bundle_id: str, message: str) -> None:
    if current.deps.events is not None:
        record_event(
            current.deps.events,
            event_type,
            message=message,
            resource_type="policy_bundle",
            resource_id=bundle_id,
        )


def _reevaluate(current: Scope, reason: str, bundle_id: str) -> None:
    """The active bundle changed: ask the host to re-evaluate the account's images (asynchronously).
    A request that cannot be made is an ERROR event; the scheduled re-evaluation catches up."""
    reevaluation = current.deps.reevaluation
    if reevaluation is None:
        return
    try:
        reevaluation.request(current.caller.account, reason=reason, bundle_id=bundle_id)
    except PortwardenError as exc:
        if current.deps.events is not None:
            record_event(
                current.deps.events,
                "system.policy.reevaluation.request_failed",
                message=f"the re-evaluation after the change of policy bundle {bundle_id} was not started "
                f"(the scheduled re-evaluation will run it): {exc}",
                resource_type="policy_bundle",
                resource_id=bundle_id,
                level="ERROR",
            )


@router.get("/policies", summary="Policy bundles of the account", tags=["policies"])
def list_policies(
    detail: Annotated[bool, Query(description="Include the bundles")] = False,
) -> list[PolicyRecord]:
    current = scope()
    return [
        PolicyRecord.of(bundle, current.caller.account, detail=detail)
        for bundle in _policies(current).list_bundles()
    ]


@router.post("/policies", summary="Add a policy bundle (validated; every problem listed)", tags=["policies"])
def add_policy(
    bundle: Annotated[dict[str, Any], Body(description="A policy bundle, schema version 1_0")],
    detail: bool = True,
) -> PolicyRecord:
    current = scope()
    policies = _policies(current)
    # The policy engine loads with the first bundle, not with the API.
    from portwarden.core.services.evaluate import load_bundle_bytes, store_bundle

    parsed = load_bundle_bytes(bundle)  # PolicyBundleError → 400 with every problem
    first = not policies.list_bundles()
    stored = store_bundle(policies, parsed, datetime.now(UTC), activate=first)
    _record_change(current, "user.policy.added", stored.bundle_id, f"policy bundle {stored.bundle_id} added")
    if first:
        _reevaluate(current, "bundle_activated", stored.bundle_id)
    return PolicyRecord.of(stored, current.caller.account, detail=detail)


@router.get("/policies/<policy_id>", summary="One policy bundle (a list of one)", tags=["policies"])
def get_policy(policy_id: str, detail: bool = True) -> list[PolicyRecord]:
    current = scope()
    stored = _policies(current).get_bundle(policy_id)
    if stored is None:
        raise NotFoundError(f"policy bundle {policy_id} not found")
    return [PolicyRecord.of(stored, current.caller.account, detail=detail)]


@router.put("/policies/<policy_id>", summary="Replace a bundle; active=true activates it", tags=["policies"])
def update_policy(
    policy_id: str,
    record: Annotated[dict[str, Any], Body(description="A PolicyBundleRecord (policybundle, active)")],
    active: Annotated[bool | None, Query(description="Activate (true) the bundle")] = None,
) -> list[PolicyRecord]:
    current = scope()
    policies = _policies(current)
    existing = policies.get_bundle(policy_id)
    if existing is None:
        raise NotFoundError(f"policy bundle {policy_id} not found")
    document = record.get("policybundle") or existing.document
    from portwarden.core.services.evaluate import load_bundle_bytes, store_bundle

    parsed = load_bundle_bytes(document)
    if parsed.id != policy_id:
        raise InvalidRequestError(f"the bundle's id {parsed.id!r} does not match {policy_id!r}")
    activate = bool(record.get("active")) or bool(active)
    content_changed = parsed.document() != existing.document
    stored = store_bundle(policies, parsed, datetime.now(UTC), activate=activate)
    if activate and not existing.active:
        _record_change(
            current, "user.policy.active.updated", policy_id, f"policy bundle {policy_id} activated"
        )
        _reevaluate(current, "bundle_activated", policy_id)
    elif content_changed and existing.active:
        _record_change(
            current,
            "user.policy.active.content_change",
            policy_id,
            f"active policy bundle {policy_id} changed",
        )
        _reevaluate(current, "bundle_updated", policy_id)
    return [PolicyRecord.of(stored, current.caller.account, detail=True)]


@router.delete("/policies/<policy_id>", summary="Delete a bundle (not the active one)", tags=["policies"])
def delete_policy(policy_id: str) -> None:
    current = scope()
    policies = _policies(current)
    existing = policies.get_bundle(policy_id)
    if existing is None:
        raise NotFoundError(f"policy bundle {policy_id} not found")
    if existing.active:
        raise ConflictError("the active policy bundle cannot be deleted; activate another one first")
    policies.delete_bundle(policy_id)
