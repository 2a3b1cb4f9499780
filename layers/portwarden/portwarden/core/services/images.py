"""Adding an image, as Anchore's ``POST /images`` does it: resolve the tag to a digest at once,
record the image (``not_analyzed``), create its tag subscriptions, and start the analysis.

Re-adding is idempotent: an image already analyzing or analyzed is left alone (tags and annotations
are merged), unless ``force`` is set; a failed image is analyzed again.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from portwarden.core.errors import InvalidReferenceError, NotFoundError
from portwarden.core.image.manifest import parse_platform
from portwarden.core.image.reference import ImageReference, SourceKind, SourceSpec
from portwarden.core.model.accounts import TAG_SUBSCRIPTION_TYPES, SubscriptionRecord, SubscriptionType
from portwarden.core.model.pipeline import DEFAULT_PLATFORM, AnalysisRequest
from portwarden.core.model.records import AnalysisStatus, ImageRecord
from portwarden.core.ports import AnalysisStarter, CatalogStore, SubscriptionStore

if TYPE_CHECKING:
    from portwarden.core.services.acquire import ImageAccess

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ImageSubmission:
    """What to add: a tag (``registry/repo:tag``), or a digest pull string with the tag to record."""

    tag: str
    digest: str | None = None
    platform: str = DEFAULT_PLATFORM
    force: bool = False
    autosubscribe: bool = True
    annotations: Mapping[str, str] | None = None
    dockerfile: str | None = None


def full_tag(text: str) -> str:
    """Anchore's ``fulltag``: ``docker.io/library/alpine:latest`` for ``alpine``."""
    spec = SourceSpec.parse(text)
    if spec.kind is not SourceKind.REGISTRY or spec.reference is None:
        raise InvalidReferenceError(f"{text!r} is not a registry image reference")
    return spec.reference.repo_tag


def _reference(text: str) -> ImageReference:
    spec = SourceSpec.parse(text)
    if spec.kind is not SourceKind.REGISTRY or spec.reference is None:
        raise InvalidReferenceError(f"only registry images can be added, not {spec.kind.value} sources")
    return spec.reference


def submit_image(
    submission: ImageSubmission,
    *,
    account: str,
    access: ImageAccess,
    catalog: CatalogStore,
    subscriptions: SubscriptionStore | None,
    starter: AnalysisStarter,
    clock: Clock = _now,
) -> ImageRecord:
    """Record the image and start its analysis when needed; the image record as stored."""
    tag_reference = _reference(submission.tag)
    if tag_reference.digest is not None and submission.digest is None:
        submission = dataclasses.replace(submission, digest=tag_reference.digest)
    # A digest reference without a tag records no tag (nor subscriptions).
    repo_tag = tag_reference.repo_tag if tag_reference.tag else None
    pull = tag_reference.with_digest(submission.digest) if submission.digest else tag_reference
    spec = SourceSpec(kind=SourceKind.REGISTRY, location=str(pull), reference=pull)
    # Here rather than at the top: the image readers are not needed to import the API's routes.
    from portwarden.core.image.sources import open_source

    source = open_source(spec, access.limits, access.registry_client)
    try:
        resolved = source.resolve(parse_platform(submission.platform))
    finally:
        source.close()
    digest = resolved.manifest_digest
    now = clock()
    catalog.add_image(
        ImageRecord(
            image_digest=digest,
            image_id=resolved.config_digest,
            analysis_status=AnalysisStatus.NOT_ANALYZED,
            repo_tags=(repo_tag,) if repo_tag else (),
            source=f"registry:{tag_reference.registry}/{tag_reference.repository}@{digest}",
            platform=resolved.platform,
            created_at=now,
            annotations=dict(submission.annotations or {}),
            dockerfile=submission.dockerfile,
            parent_digest=resolved.index_digest,
            arch=resolved.platform.split("/")[1] if "/" in resolved.platform else resolved.platform,
            image_size=sum(layer.size for layer in resolved.layers),
            layer_count=len(resolved.layers),
        )
    )
    record = catalog.get_image(digest)
    if record is None:
        raise NotFoundError(f"image {digest} vanished from the catalog while being added")
    if repo_tag and repo_tag not in record.repo_tags:
        catalog.add_repo_tag(digest, repo_tag)
    updates: dict[str, object] = {}
    if submission.annotations:
        updates["annotations"] = {**record.annotations, **submission.annotations}
    if submission.dockerfile is not None and submission.dockerfile != record.dockerfile:
        updates["dockerfile"] = submission.dockerfile
    if updates:
        current = catalog.get_image(digest) or record
        catalog.put_image(current.model_copy(update=updates))
    status = record.analysis_status
    if submission.force and status is not AnalysisStatus.NOT_ANALYZED:
        # Anchore resets a forced image to not_analyzed; an analysis in flight finishes first.
        if catalog.set_status(digest, AnalysisStatus.NOT_ANALYZED, expected=status):
            status = AnalysisStatus.NOT_ANALYZED
    elif status is AnalysisStatus.ANALYSIS_FAILED and catalog.set_status(
        digest, AnalysisStatus.NOT_ANALYZED, expected=status
    ):
        status = AnalysisStatus.NOT_ANALYZED
    if status is AnalysisStatus.NOT_ANALYZED:
        starter.start(
            AnalysisRequest(
                source=f"registry:{tag_reference.registry}/{tag_reference.repository}@{digest}",
                platform=submission.platform,
                repo_tag=repo_tag,
            ),
            # The name makes a repeated start a no-op; a forced re-analysis must start anew.
            name=None if submission.force else f"{account}-{digest.split(':', 1)[1][:40]}",
        )
    if repo_tag and subscriptions is not None:
        ensure_tag_subscriptions(subscriptions, repo_tag, autosubscribe=submission.autosubscribe, clock=clock)
    stored = catalog.get_image(digest)
    if stored is None:
        raise NotFoundError(f"image {digest} vanished from the catalog while being added")
    return stored


def ensure_tag_subscriptions(
    subscriptions: SubscriptionStore, repo_tag: str, *, autosubscribe: bool, clock: Clock = _now
) -> list[SubscriptionRecord]:
    """Anchore's rule on add: the four tag subscriptions exist (inactive unless said otherwise);
    ``analysis_update`` is activated, ``tag_update`` when ``autosubscribe``."""
    now = clock()
    created: list[SubscriptionRecord] = []
    for kind in TAG_SUBSCRIPTION_TYPES:
        wanted_active = kind is SubscriptionType.ANALYSIS_UPDATE or (
            autosubscribe and kind is SubscriptionType.TAG_UPDATE
        )
        record = subscriptions.add_subscription(
            SubscriptionRecord(
                subscription_id=uuid.uuid4().hex,
                subscription_key=repo_tag,
                subscription_type=kind,
                active=wanted_active,
                created_at=now,
                last_updated=now,
            )
        )
        if wanted_active and not record.active:
            record = record.model_copy(update={"active": True, "last_updated": now})
            subscriptions.put_subscription(record)
        created.append(record)
    return created
