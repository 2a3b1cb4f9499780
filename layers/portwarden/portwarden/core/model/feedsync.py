"""The state the feed-sync workflow keeps between its steps (light: stores import it)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from portwarden.core.model.base import ValueObject


class NvdCheckpoint(ValueObject):
    """Where an NVD walk stopped: the windows still to walk (the first one from ``start_index``)."""

    until: datetime
    windows: tuple[tuple[datetime, datetime] | None, ...]
    start_index: int = Field(default=0, ge=0)
    pages: int = Field(default=0, ge=0)


class WorkingDatabase(ValueObject):
    """The newest build (not necessarily published) and where unfinished NVD walks resume."""

    location: str | None = None
    sha256: str | None = None
    built_at: datetime | None = None
    record_count: int = 0
    checkpoints: dict[str, NvdCheckpoint] = Field(default_factory=dict)


class SourceRef(ValueObject):
    """A feed source as the workflow passes it between steps (``FeedSource`` fields, as text)."""

    kind: str = Field(min_length=1)
    url: str = Field(min_length=1)
