"""What the stores keep: images and tags, evaluations, events, bundles, the database pointer.

Anchore's vocabulary where users see it: ``analysis_status`` (not_analyzed, analyzing, analyzed,
analysis_failed), image digest = manifest digest, image id = config digest.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from portwarden.core.model.base import ValueObject

# An image keeps the newest tags it was seen under, up to this many; the tags table keeps, per tag,
# the digest it last pointed to, so a tag dropped from the list is still found there.
REPO_TAGS_KEPT = 100


class AnalysisStatus(StrEnum):
    NOT_ANALYZED = "not_analyzed"
    ANALYZING = "analyzing"
    ANALYZED = "analyzed"
    ANALYSIS_FAILED = "analysis_failed"


class ImageRecord(ValueObject):
    """One image by manifest digest, with its analysis summary (the full analysis is a document)."""

    image_digest: str
    image_id: str | None = None
    analysis_status: AnalysisStatus = AnalysisStatus.NOT_ANALYZED
    repo_tags: tuple[str, ...] = ()
    source: str | None = None
    platform: str | None = None
    distro: str | None = None
    package_count: int = 0
    created_at: datetime
    analyzed_at: datetime | None = None
    last_error: str | None = None
    # Given when the image was added (Anchore's ``annotations`` and base64-decoded ``dockerfile``).
    annotations: dict[str, str] = Field(default_factory=dict)
    dockerfile: str | None = None
    # Known once the manifest is resolved: the index digest of a multi-platform tag, the CPU
    # architecture, the compressed size of the layers and their count.
    parent_digest: str | None = None
    arch: str | None = None
    image_size: int | None = None
    layer_count: int | None = None
    # Who holds the analysis while it is ``analyzing`` (an execution, a worker) and until when; a
    # claim past its deadline may be taken over or failed by the sweeper.
    claim_owner: str | None = None
    claim_deadline: datetime | None = None


class AnalysisClaim(ValueObject):
    """The right to analyze one image: held by ``owner`` until ``deadline``.

    ``owner`` names the attempt (a Step Functions execution ARN, a local worker id), so a failure
    reported for an attempt that has since lost its claim cannot fail the attempt that took it over.
    """

    owner: str = Field(min_length=1)
    deadline: datetime


class AnalyzedSummary(ValueObject):
    """What Assemble writes onto the image: only these attributes, never the whole record."""

    analyzed_at: datetime
    package_count: int
    distro: str | None = None


class TagRecord(ValueObject):
    """A tag and the digest it pointed to when last seen (watch mode notices when that changes)."""

    repo_tag: str
    image_digest: str
    updated_at: datetime


class EvaluationRecord(ValueObject):
    """A stored policy evaluation: the summary to query by, and the full result document."""

    evaluation_id: str
    image_digest: str
    repo_tag: str | None = None
    bundle_id: str
    final_action: str
    status: str
    evaluated_at: datetime
    document: dict[str, Any] = Field(default_factory=dict)


class StoredBundle(ValueObject):
    bundle_id: str
    name: str | None = None
    active: bool = False
    document: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class EventRecord(ValueObject):
    """An audit event, Anchore-style: ``user.image.analysis.completed`` and the like."""

    event_id: str
    type: str
    level: str = "INFO"
    resource_type: str | None = None
    resource_id: str | None = None
    message: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime


class DbPointer(ValueObject):
    """The vulnerability database currently in use: where it is and how to check it."""

    location: str
    sha256: str
    built_at: datetime
    schema_version: int
    record_count: int = 0
