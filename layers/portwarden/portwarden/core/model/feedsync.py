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


# The one feed Anchore's /system/feeds shows; its groups are the database's namespaces.
VULNERABILITIES_FEED = "vulnerabilities"


class FeedGroupSummary(ValueObject):
    """One group (namespace) of a database build, as ``/system/feeds`` lists it."""

    name: str
    record_count: int = 0
    last_sync: datetime | None = None


class FeedSettings(ValueObject):
    """Feeds and groups an administrator disabled: a disabled feed is not synced, a disabled group's
    records match nothing (they stay in the database, so enabling it again needs no sync)."""

    disabled_feeds: tuple[str, ...] = ()
    disabled_groups: tuple[str, ...] = ()

    def with_enabled(self, feed: str, group: str | None, enabled: bool) -> FeedSettings:
        field = "disabled_groups" if group is not None else "disabled_feeds"
        names = set(getattr(self, field))
        name = group if group is not None else feed
        if enabled:
            names.discard(name)
        else:
            names.add(name)
        return self.model_copy(update={field: tuple(sorted(names))})


class WorkingDatabase(ValueObject):
    """The newest full build: the last merge of the sources' databases, which Publish published.

    ``merged`` names the source databases it was merged from (source key → their checksum) and
    ``sources`` every source it holds, so that a run whose sources all left their databases as they
    were publishes nothing new. ``checkpoints`` is read only from the state a sequential sync left
    (every source in one working database): a source's first step starts from there.
    """

    location: str | None = None
    sha256: str | None = None
    built_at: datetime | None = None
    record_count: int = 0
    checkpoints: dict[str, NvdCheckpoint] = Field(default_factory=dict)
    # The build's groups (read by the API's feed list without downloading the database).
    groups: tuple[FeedGroupSummary, ...] = ()
    merged: dict[str, str] = Field(default_factory=dict)
    sources: tuple[str, ...] = ()


class SourceDatabase(ValueObject):
    """One source's own database as its last step left it: that source's rows and state alone.

    The steps of a source build on it (and on nothing another source writes, so sources sync in
    parallel); Publish merges every source's database into the published one. ``checkpoint`` is
    where an unfinished NVD walk resumes.
    """

    key: str = Field(min_length=1)
    location: str = Field(min_length=1)
    sha256: str = Field(min_length=64, max_length=64)
    built_at: datetime
    record_count: int = Field(default=0, ge=0)
    checkpoint: NvdCheckpoint | None = None


class SourceRef(ValueObject):
    """A feed source as the workflow passes it between steps (``FeedSource`` fields, as text)."""

    kind: str = Field(min_length=1)
    url: str = Field(min_length=1)
