"""Ending analyses that failed or were abandoned: the MarkFailed phase, the execution-status rule,
the claim sweeper.

Light on purpose (no analyzer, matcher or feed parser): these run in small functions that must
start fast. ``pipeline`` and ``phases`` re-export what they used to define here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

from portwarden.core.errors import InvalidReferenceError
from portwarden.core.image.reference import SourceKind, SourceSpec
from portwarden.core.model.base import ValueObject
from portwarden.core.model.records import AnalysisStatus, EventRecord, ImageRecord
from portwarden.core.ports import CatalogStore, EventStore

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def mark_failed_phase(
    image_digest: str | None,
    error: str,
    *,
    catalog: CatalogStore,
    events: EventStore | None = None,
    source: str | None = None,
    owner: str | None = None,
    clock: Clock = _now,
) -> bool:
    """Record a failed analysis (status analysis_failed, the reason, an event); False when the image
    is analyzing under another attempt's claim, which this failure must not end.

    The claim ``owner`` holds is released. An image not yet claimed (the attempt failed before its
    claim) or already failed is marked failed with the reason; an analyzed image stays analyzed
    (a later phase failed, not the analysis) and only the event is recorded.
    """
    record = catalog.get_image(image_digest) if image_digest is not None else None
    if record is not None and image_digest is not None:
        if catalog.release_claim(image_digest, owner, error):
            pass
        elif record.analysis_status is AnalysisStatus.ANALYZED:
            pass  # a phase after Assemble failed: the analysis stands, the event tells what failed
        elif not any(
            catalog.set_status(image_digest, AnalysisStatus.ANALYSIS_FAILED, error=error, expected=status)
            for status in (AnalysisStatus.NOT_ANALYZED, AnalysisStatus.ANALYSIS_FAILED)
        ):
            return False
    if events is not None:
        events.put_event(
            EventRecord(
                event_id=str(uuid.uuid4()),
                type="user.image.analysis.failed",
                level="ERROR",
                resource_type="image",
                resource_id=image_digest or source,
                message=error,
                timestamp=clock(),
            )
        )
    return True


class FailureOutcome(ValueObject):
    image_digest: str | None
    source: str
    reason: str
    # False when the image was left alone (another attempt holds it, or this one held nothing).
    recorded: bool = True


def _digest_in_source(source: str) -> str | None:
    try:
        spec = SourceSpec.parse(source)
    except InvalidReferenceError:
        return None
    if spec.kind is not SourceKind.REGISTRY or spec.reference is None:
        return None
    return spec.reference.digest


def record_failure(
    source: str,
    image_digest: str | None,
    reason: str,
    *,
    catalog: CatalogStore,
    events: EventStore,
    repo_tag: str | None = None,
    owner: str | None = None,
    clock: Clock = _now,
) -> FailureOutcome:
    """Mark the image analysis_failed with ``reason`` and record an event.

    When Resolve itself failed, the digest is known only if the source names one (an ECR push
    does); the image is then put in the catalog so that its failure can be looked up by digest.
    An ``image_digest`` given is an image the attempt knew recorded: if it is gone, it was deleted
    (a forced delete during the analysis) and stays deleted.
    ``owner`` is the failed attempt: its claim is released, another attempt's claim is left alone.
    """
    digest = image_digest or _digest_in_source(source)
    if image_digest is None and digest is not None and catalog.get_image(digest) is None:
        # Insert-if-absent: a trigger that recorded the image meanwhile keeps what it wrote.
        catalog.add_image(
            ImageRecord(
                image_digest=digest,
                analysis_status=AnalysisStatus.NOT_ANALYZED,
                repo_tags=(repo_tag,) if repo_tag else (),
                source=source,
                created_at=clock(),
            )
        )
    recorded = mark_failed_phase(
        digest, reason, catalog=catalog, events=events, source=source, owner=owner, clock=clock
    )
    return FailureOutcome(image_digest=digest, source=source, reason=reason, recorded=recorded)


def abandoned_analysis(
    owner: str,
    source: str | None,
    reason: str,
    *,
    catalog: CatalogStore,
    events: EventStore,
    clock: Clock = _now,
) -> FailureOutcome:
    """An attempt ended without recording its outcome (aborted, timed out, a runtime error no Catch
    can see): fail the image whose claim ``owner`` still holds.

    The digest comes from the source when it names one; otherwise the analyzing images are searched
    for ``owner``'s claim. An attempt that holds no claim (it skipped, or it failed through MarkFailed
    already) changes nothing.
    """
    digest = _digest_in_source(source) if source else None
    if digest is None:
        holding = [
            image
            for image in catalog.list_images_by_status(AnalysisStatus.ANALYZING)
            if image.claim_owner == owner
        ]
        digest = holding[0].image_digest if holding else None
    released = digest is not None and catalog.release_claim(digest, owner, reason)
    if released:
        _failure_event(digest, reason, events, clock)
    return FailureOutcome(image_digest=digest, source=source or "", reason=reason, recorded=released)


class SweepOutcome(ValueObject):
    examined: int
    failed: tuple[str, ...]


def sweep_expired_claims(
    *, catalog: CatalogStore, events: EventStore, limit: int = 1000, clock: Clock = _now
) -> SweepOutcome:
    """Fail every image analyzing under a claim past its deadline (or without one).

    The release is conditional on the claim read here, so an image taken over between the listing
    and the release is left to its new owner.
    """
    now = clock()
    analyzing = catalog.list_images_by_status(AnalysisStatus.ANALYZING, limit=limit)
    failed: list[str] = []
    for image in analyzing:
        if image.claim_deadline is not None and image.claim_deadline >= now:
            continue
        owner = image.claim_owner or "an unknown attempt"
        expired = f"{image.claim_deadline:%Y-%m-%dT%H:%M:%SZ}" if image.claim_deadline else "unset"
        reason = f"AnalysisAbandoned: the claim of {owner} expired (deadline {expired})"
        if catalog.release_claim(image.image_digest, image.claim_owner, reason):
            _failure_event(image.image_digest, reason, events, clock)
            failed.append(image.image_digest)
    return SweepOutcome(examined=len(analyzing), failed=tuple(failed))


class AccountStores(Protocol):
    """What the sweep needs of one account's stores."""

    @property
    def catalog(self) -> CatalogStore: ...

    @property
    def events(self) -> EventStore: ...


def sweep_accounts(
    accounts: Iterable[str], stores_of: Callable[[str], AccountStores], *, clock: Clock = _now
) -> SweepOutcome:
    """``sweep_expired_claims`` in every account (each keeps its images and events apart)."""
    examined = 0
    failed: list[str] = []
    for account in accounts:
        stores = stores_of(account)
        outcome = sweep_expired_claims(catalog=stores.catalog, events=stores.events, clock=clock)
        examined += outcome.examined
        failed.extend(outcome.failed)
    return SweepOutcome(examined=examined, failed=tuple(failed))


def _failure_event(image_digest: str | None, reason: str, events: EventStore, clock: Clock) -> None:
    events.put_event(
        EventRecord(
            event_id=str(uuid.uuid4()),
            type="user.image.analysis.failed",
            level="ERROR",
            resource_type="image",
            resource_id=image_digest,
            message=reason,
            timestamp=clock(),
        )
    )
