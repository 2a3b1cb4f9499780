"""Event filters shared by every EventLog adapter, and the one way services record an event."""

from __future__ import annotations

import fnmatch
import uuid
from datetime import UTC, datetime
from typing import Any

from portwarden.core.model.accounts import EventQuery
from portwarden.core.model.records import EventRecord
from portwarden.core.ports import EventStore


def event_type_matches(event_type: str, pattern: str) -> bool:
    """Anchore's ``event_type`` filter: a prefix (``user.image``), or a pattern with ``*`` wildcards."""
    if "*" in pattern:
        # fnmatchcase, not fnmatch: types are case-sensitive, and ``[`` has no place in them.
        return fnmatch.fnmatchcase(event_type, pattern.replace("[", "[[]"))
    return event_type == pattern or event_type.startswith(pattern.rstrip(".") + ".")


def event_matches(record: EventRecord, query: EventQuery) -> bool:
    """The filters other than the time bounds (adapters apply those in their query)."""
    if query.level is not None and record.level.upper() != query.level.upper():
        return False
    if query.event_type is not None and not event_type_matches(record.type, query.event_type):
        return False
    if query.resource_type is not None and record.resource_type != query.resource_type:
        return False
    return query.resource_id is None or record.resource_id == query.resource_id


def record_event(
    events: EventStore,
    event_type: str,
    *,
    message: str,
    resource_type: str | None = None,
    resource_id: str | None = None,
    level: str = "INFO",
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> EventRecord:
    event = EventRecord(
        event_id=uuid.uuid4().hex,
        type=event_type,
        level=level,
        resource_type=resource_type,
        resource_id=resource_id,
        message=message,
        details=details or {},
        timestamp=now or datetime.now(UTC),
    )
    events.put_event(event)
    return event
