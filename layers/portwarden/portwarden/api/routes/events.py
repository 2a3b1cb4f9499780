"""Events: the catalogue of types, filtered pages, one event, deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from portwarden.api.context import Scope, scope
from portwarden.api.shapes import event_body
from portwarden.core.errors import InvalidRequestError, NotFoundError
from portwarden.core.model.accounts import EventQuery
from portwarden.core.ports import EventLog

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated

# (category, subcategory, event, resource type, message): the events Portwarden records.
EVENT_CATALOGUE: tuple[tuple[str, str, str, str, str], ...] = (
    ("user", "image", "analysis.completed", "image_digest", "Image analysis completed"),
    ("user", "image", "analysis.failed", "image_digest", "Image analysis failed"),
    ("user", "policy", "added", "policy_bundle", "A policy bundle was added"),
    ("user", "policy", "active.updated", "policy_bundle", "Another policy bundle was activated"),
    ("user", "policy", "active.content_change", "policy_bundle", "The active bundle's content changed"),
    ("system", "feeds", "sync.completed", "feeds", "Feed sync completed"),
    ("system", "feeds", "sync.failed", "feeds", "Feed sync failed"),
)


def _log(current: Scope) -> EventLog:
    return current.need(current.deps.events, "events")


def _time(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequestError(f"{name} must be an ISO-8601 timestamp, not {value!r}") from exc


def _query(
    since: str | None,
    before: str | None,
    level: str | None,
    event_type: str | None,
    resource_type: str | None,
    resource_id: str | None,
    page: int = 1,
    limit: int = 100,
) -> EventQuery:
    if level is not None and level.upper() not in ("INFO", "ERROR"):
        raise InvalidRequestError("level is INFO or ERROR")
    return EventQuery(
        since=_time(since, "since"),
        before=_time(before, "before"),
        level=level,
        event_type=event_type or None,
        resource_type=resource_type or None,
        resource_id=resource_id or None,
        page=page,
        limit=limit,
    )


@router.get("/event_types", summary="The event types, by category", tags=["events"])
def list_event_types() -> list[dict[str, Any]]:
    categories: dict[str, dict[str, list[dict[str, str]]]] = {}
    for category, subcategory, name, resource_type, message in EVENT_CATALOGUE:
        categories.setdefault(category, {}).setdefault(subcategory, []).append(
            {
                "name": name,
                "type": f"{category}.{subcategory}.{name}",
                "message": message,
                "resource_type": resource_type,
            }
        )
    return [
        {
            "category": category,
            "description": f"{category} events",
            "subcategories": [
                {"name": sub, "description": f"{sub} events", "events": events}
                for sub, events in subs.items()
            ],
        }
        for category, subs in categories.items()
    ]


@router.get("/events", summary="Events, newest first, filtered and paged", tags=["events"])
def list_events(
    since: str | None = None,
    before: str | None = None,
    level: str | None = None,
    event_type: Annotated[str | None, Query(description="A type prefix, * as a wildcard")] = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    source_servicename: str | None = None,
    source_hostid: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    current = scope()
    query = _query(since, before, level, event_type, resource_type, resource_id, page, limit)
    result = _log(current).query_events(query)
    if source_servicename not in (None, "", "portwarden") or source_hostid not in (None, "", "portwarden"):
        events: tuple[Any, ...] = ()
        next_page = False
    else:
        events, next_page = result.events, result.next_page
    return {
        "results": [event_body(record, current.caller.account) for record in events],
        "next_page": next_page,
        "page": result.page,
        "item_count": len(events),
    }


@router.delete("/events", summary="Delete the events matching the filters", tags=["events"])
def delete_events(
    since: str | None = None,
    before: str | None = None,
    level: str | None = None,
) -> list[str]:
    current = scope()
    return _log(current).delete_events(_query(since, before, level, None, None, None))


@router.get("/events/<event_id>", summary="One event", tags=["events"])
def get_event(event_id: str) -> dict[str, Any]:
    current = scope()
    record = _log(current).get_event(event_id)
    if record is None:
        raise NotFoundError(f"event {event_id} not found")
    return event_body(record, current.caller.account)


@router.delete("/events/<event_id>", summary="Delete one event", tags=["events"])
def delete_event(event_id: str) -> None:
    current = scope()
    if not _log(current).delete_event(event_id):
        raise NotFoundError(f"event {event_id} not found")
