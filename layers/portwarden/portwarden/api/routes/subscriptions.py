"""Subscriptions and ``POST /repositories``: stored and listed, filtered server-side by key and type
(clients take the first record of a filtered list)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict

from portwarden.api.context import Scope, scope
from portwarden.api.shapes import Subscription
from portwarden.core.errors import InvalidRequestError, NotFoundError
from portwarden.core.model.accounts import SubscriptionRecord, SubscriptionType
from portwarden.core.model.base import ValueObject
from portwarden.core.ports import SubscriptionStore
from portwarden.core.services.images import full_tag

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


class SubscriptionRequest(ValueObject):
    model_config = ConfigDict(frozen=True, extra="ignore")

    subscription_key: str
    subscription_type: SubscriptionType
    subscription_value: str | None = None
    active: bool = True


class SubscriptionUpdate(ValueObject):
    model_config = ConfigDict(frozen=True, extra="ignore")

    active: bool | None = None
    subscription_value: str | None = None


def _store(current: Scope) -> SubscriptionStore:
    return current.need(current.deps.subscriptions, "subscriptions")


def _key(kind: SubscriptionType, key: str) -> str:
    """Tag subscriptions are keyed by the full tag; repository ones by ``registry/repository``."""
    if kind is SubscriptionType.REPO_UPDATE:
        return full_tag(key).rpartition(":")[0] if "@" not in key else key
    return full_tag(key)


@router.get("/subscriptions", summary="Subscriptions, filtered by key and type", tags=["subscriptions"])
def list_subscriptions(
    subscription_key: Annotated[str | None, Query(description="Only this key")] = None,
    subscription_type: Annotated[str | None, Query(description="Only this type")] = None,
) -> list[Subscription]:
    current = scope()
    if subscription_type is not None and subscription_type not in {t.value for t in SubscriptionType}:
        raise InvalidRequestError(f"unknown subscription_type {subscription_type!r}")
    records = _store(current).list_subscriptions(subscription_key, subscription_type)
    return [Subscription.of(record, current.caller.account) for record in records]


@router.post("/subscriptions", summary="Add a subscription", tags=["subscriptions"])
def add_subscription(body: SubscriptionRequest) -> list[Subscription]:
    current = scope()
    now = datetime.now(UTC)
    record = _store(current).add_subscription(
        SubscriptionRecord(
            subscription_id=uuid.uuid4().hex,
            subscription_key=_key(body.subscription_type, body.subscription_key),
            subscription_type=body.subscription_type,
            subscription_value=body.subscription_value,
            active=body.active,
            created_at=now,
            last_updated=now,
        )
    )
    return [Subscription.of(record, current.caller.account)]


def _get(current: Scope, subscription_id: str) -> SubscriptionRecord:
    record = _store(current).get_subscription(subscription_id)
    if record is None:
        raise NotFoundError(f"subscription {subscription_id} not found")
    return record


@router.get(
    "/subscriptions/<subscription_id>", summary="One subscription (a list of one)", tags=["subscriptions"]
)
def get_subscription(subscription_id: str) -> list[Subscription]:
    current = scope()
    return [Subscription.of(_get(current, subscription_id), current.caller.account)]


@router.put("/subscriptions/<subscription_id>", summary="Activate or deactivate", tags=["subscriptions"])
def update_subscription(subscription_id: str, body: SubscriptionUpdate) -> list[Subscription]:
    current = scope()
    record = _get(current, subscription_id)
    updates: dict[str, object] = {"last_updated": datetime.now(UTC)}
    if body.active is not None:
        updates["active"] = body.active
    if body.subscription_value is not None:
        updates["subscription_value"] = body.subscription_value
    updated = record.model_copy(update=updates)
    _store(current).put_subscription(updated)
    return [Subscription.of(updated, current.caller.account)]


@router.delete("/subscriptions/<subscription_id>", summary="Delete a subscription", tags=["subscriptions"])
def delete_subscription(subscription_id: str) -> None:
    current = scope()
    _get(current, subscription_id)
    _store(current).delete_subscription(subscription_id)


@router.post(
    "/repositories", summary="Watch a repository (a repo_update subscription)", tags=["subscriptions"]
)
def add_repository(
    repository: Annotated[str, Query(description="registry/repository")],
    autosubscribe: bool = False,
    lookuptag: str | None = None,
    dryrun: bool = False,
) -> list[Subscription]:
    current = scope()
    key = full_tag(repository).rpartition(":")[0]
    value = json.dumps({"autosubscribe": autosubscribe, "lookuptag": lookuptag or "latest", "tagcount": 0})
    now = datetime.now(UTC)
    record = SubscriptionRecord(
        subscription_id=uuid.uuid4().hex,
        subscription_key=key,
        subscription_type=SubscriptionType.REPO_UPDATE,
        subscription_value=value,
        active=True,
        created_at=now,
        last_updated=now,
    )
    if not dryrun:
        record = _store(current).add_subscription(record)
    return [Subscription.of(record, current.caller.account)]
