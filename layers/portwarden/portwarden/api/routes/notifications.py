"""Notification delivery: Anchore's webhook test, and the delivery log of the caller's account."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from portwarden.api.context import scope
from portwarden.core.errors import InvalidRequestError
from portwarden.core.watch.notifications import NotificationType

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


@router.post(
    "/system/webhooks/<notification_type>/test",
    summary="Send a synthetic notification of a type through every configured channel",
    tags=["system"],
)
def test_webhook(notification_type: str) -> list[dict[str, Any]]:
    current = scope()
    if notification_type not in {kind.value for kind in NotificationType}:
        raise InvalidRequestError(
            f"unknown notification type {notification_type!r} "
            f"(one of {', '.join(kind.value for kind in NotificationType)})"
        )
    center = current.need(current.host.notifications, "notification delivery")
    attempts = center.send_test(current.caller.account, notification_type)
    return [attempt.model_dump(mode="json") for attempt in attempts]


@router.get(
    "/system/notifications/deliveries",
    summary="Every delivery attempt of the account's notifications, newest first",
    tags=["system"],
)
def list_deliveries(
    notification_id: Annotated[str | None, Query(description="Only this notification")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many attempts")] = 100,
) -> list[dict[str, Any]]:
    current = scope()
    center = current.need(current.host.notifications, "notification delivery")
    attempts = center.deliveries(current.caller.account, notification_id=notification_id, limit=limit)
    return [attempt.model_dump(mode="json") for attempt in attempts]
