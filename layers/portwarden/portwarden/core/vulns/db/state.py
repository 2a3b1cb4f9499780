"""What the database records about itself: the feed sources, their groups and the build metadata."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from portwarden.core.model.base import ValueObject


class FeedKind(StrEnum):
    """The feed formats a sync understands, as ``--source KIND=URL`` spells them."""

    OSV = "osv"
    DEBIAN = "debian"
    ALPINE = "alpine"
    NVD = "nvd"
    KEV = "kev"
    EPSS = "epss"
    AMAZON = "amazon"
    REDHAT = "redhat"
    WOLFI = "wolfi"
    CHAINGUARD = "chainguard"


class SourceStatus(StrEnum):
    UPDATED = "updated"  # new data written by this build
    UNCHANGED = "unchanged"  # the server answered 304: the previous rows were carried over
    FAILED = "failed"  # the download or parse failed: the previous rows (if any) were carried over
    KEPT = "kept"  # not part of this sync: carried over as it was


class SourceState(ValueObject):
    """What the database knows about one feed source: validators, cursor, counts and the last outcome."""

    key: str
    kind: FeedKind
    url: str
    status: SourceStatus
    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = Field(default=None, description="Incremental position (OSV/NVD modification time)")
    record_count: int = 0
    parse_errors: int = 0
    parse_warnings: int = 0
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None


class GroupInfo(ValueObject):
    """One group of records: a namespace of a vulnerability source, or an enrichment table."""

    name: str
    source_key: str
    kind: FeedKind
    url: str
    record_count: int
    last_sync: datetime | None = None
    last_error: str | None = None


class DbMetadata(ValueObject):
    schema_version: int
    built_at: datetime
    sources: tuple[SourceState, ...] = ()
    groups: tuple[GroupInfo, ...] = ()
    record_counts: dict[str, int] = Field(default_factory=dict)
    # Per namespace (and enrichment table), a fingerprint of its rows: comparing two builds' fingerprints
    # says which namespaces changed (``fingerprints.feed_change``). None for a file built before they
    # were recorded.
    namespace_fingerprints: dict[str, str] | None = None

    @property
    def vulnerability_count(self) -> int:
        return self.record_counts.get("vulnerabilities", 0)
