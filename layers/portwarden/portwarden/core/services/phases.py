"""The pipeline steps after Assemble, and feed publication, composed from the core's use cases.

Resolve, AnalyzeLayer, Assemble and the failure record live in ``core/services/pipeline.py``; the
steps here join the matcher, the policy engine and the feed sync to the stores the same way. They
depend on ports only (no AWS library), so the local runner can reuse them; ``runtime.wiring`` hands
them the AWS adapters.

Every step is idempotent: running it twice for one image stores the same result again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from portwarden.core.errors import NotFoundError, StoreError
from portwarden.core.model.base import ValueObject
from portwarden.core.model.records import DbPointer
from portwarden.core.ports import (
    AnalysisStore,
    EvaluationStore,
    FeedFetcher,
    FeedMetadataStore,
    PolicyStore,
)
from portwarden.core.services.claims import (  # noqa: F401 - the failure phases, re-exported
    FailureOutcome,
    SweepOutcome,
    abandoned_analysis,
    record_failure,
    sweep_expired_claims,
)
from portwarden.core.vulns.db import SCHEMA_VERSION, SourceStatus

# Each phase imports its own engine in its body (matcher, policy engine, feed sync): a function
# running one phase does not load the others' at cold start.
if TYPE_CHECKING:
    from portwarden.core.model.match import Match
    from portwarden.core.services.sync_feeds import FeedSource, SyncOptions
    from portwarden.core.triage.model import TriageInputs
    from portwarden.core.vulns.matcher import Matcher

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

SNAPSHOT_PREFIX = "vulndb/"
_CHUNK = 1024 * 1024


def _now() -> datetime:
    return datetime.now(UTC)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---- Match ------------------------------------------------------------------------------------------


class OpenDatabase(NamedTuple):
    """The vulnerability database currently published, opened for matching."""

    matcher: Matcher
    pointer: DbPointer


class MatchOutcome(ValueObject):
    image_digest: str
    repo_tag: str | None = None
    match_count: int
    vulnerability_data_available: bool
    db_built_at: datetime | None = None


def match_phase(
    image_digest: str,
    repo_tag: str | None,
    *,
    analyses: AnalysisStore,
    database: Callable[[], OpenDatabase | None],
    disabled_groups: Collection[str] = (),
) -> MatchOutcome:
    """Match the stored analysis against the current database and store the matches.

    Matches in a feed group (namespace) the administrator disabled are left out.

    Before the first feed sync there is no database: no matches are stored, so the evaluation sees
    "vulnerability data unavailable" (Anchore's trigger for it) instead of a falsely clean image.
    """
    analysis = analyses.get_analysis(image_digest)
    if analysis is None:
        raise NotFoundError(f"image {image_digest} has no stored analysis")
    opened = database()
    if opened is None:
        logger.warning("no vulnerability database is published yet; %s is not matched", image_digest)
        return MatchOutcome(
            image_digest=image_digest, repo_tag=repo_tag, match_count=0, vulnerability_data_available=False
        )
    from portwarden.core.services.match import match_image

    matches = match_image(analysis, opened.matcher)
    if disabled_groups:
        matches = [match for match in matches if match.namespace not in disabled_groups]
    analyses.put_matches(image_digest, matches, opened.pointer.built_at)
    return MatchOutcome(
        image_digest=image_digest,
        repo_tag=repo_tag,
        match_count=len(matches),
        vulnerability_data_available=True,
        db_built_at=opened.pointer.built_at,
    )


# ---- Evaluate ---------------------------------------------------------------------------------------


class EvaluationOutcome(ValueObject):
    image_digest: str
    repo_tag: str | None = None
    evaluation_id: str
    bundle_id: str
    final_action: str
    status: str


def evaluate_phase(
    image_digest: str,
    repo_tag: str | None,
    *,
    analyses: AnalysisStore,
    policies: PolicyStore,
    evaluations: EvaluationStore,
    feeds: FeedMetadataStore,
    vex: TriageInputs | None = None,
    clock: Clock = _now,
) -> EvaluationOutcome:
    """Evaluate the active bundle (the shipped default when none is active) and store the result.

    ``vex``: the account's VEX statements, applied to the matches before the gates see them, as the
    API's check and the re-evaluations apply them (so the first evaluation and a later one agree)."""
    analysis = analyses.get_analysis(image_digest)
    if analysis is None:
        raise NotFoundError(f"image {image_digest} has no stored analysis")
    from portwarden.core.services.evaluate import active_bundle, evaluate, evaluation_input, evaluation_record

    matches = analyses.get_matches(image_digest)
    reported: Sequence[Match] = matches or ()
    if vex is not None and not vex.empty and matches:
        from portwarden.core.triage.apply import apply_triage

        reported = apply_triage(analysis, matches, vex, today=clock().date(), repo_tag=repo_tag).matches
    pointer = feeds.get_db_pointer()
    data = evaluation_input(
        analysis,
        reported,
        now=clock(),
        repo_tag=repo_tag,
        db_built_at=pointer.built_at if pointer else None,
        vulnerability_data_available=matches is not None,
    )
    result = evaluate(active_bundle(policies), data)
    record = evaluation_record(result)
    evaluations.put_evaluation(record)
    return EvaluationOutcome(
        image_digest=image_digest,
        repo_tag=repo_tag,
        evaluation_id=record.evaluation_id,
        bundle_id=record.bundle_id,
        final_action=record.final_action,
        status=record.status,
    )


# ---- MarkFailed ------------------------------------------------------------------------------------


# ---- FeedSync ---------------------------------------------------------------------------------------


class SnapshotFiles(Protocol):
    """Where database snapshots are published: whole files by key (AWS: S3 objects)."""

    def upload(self, key: str, path: Path) -> None: ...

    def download(self, key: str, path: Path) -> bool:
        """Write the object to ``path``; False when there is no such object."""
        ...

    def retire(self, key: str) -> None:
        """Mark a snapshot no pointer names any more: from then on it may expire. A snapshot never
        retired never expires (a stalled sync must not delete the live database)."""
        ...


class SourceSummary(ValueObject):
    url: str
    kind: str
    status: SourceStatus
    record_count: int
    error: str | None = None


class FeedSyncOutcome(ValueObject):
    pointer: DbPointer
    sources: tuple[SourceSummary, ...]
    failed_sources: int


def snapshot_key(built_at: datetime, sha256: str) -> str:
    """A new key per build: readers of the previous pointer keep a consistent object."""
    return f"{SNAPSHOT_PREFIX}{built_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{sha256[:16]}.db"


def sync_and_publish(
    sources: Sequence[FeedSource],
    fetcher: FeedFetcher,
    *,
    snapshots: SnapshotFiles,
    feeds: FeedMetadataStore,
    work_dir: Path,
    options: SyncOptions | None = None,
    clock: Clock = _now,
) -> FeedSyncOutcome:
    """Build a new database from the previous snapshot and ``sources``, publish it, move the pointer.

    The previous snapshot is the starting point (conditional downloads, incremental cursors, and
    carry-over of sources that fail). The upload comes before the pointer, so a reader following
    the pointer always finds its object, and checks it against the pointer's checksum.
    """
    from portwarden.core.services.sync_feeds import sync_feeds

    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "vulnerabilities.db"
    database.unlink(missing_ok=True)
    previous = feeds.get_db_pointer()
    downloaded = previous is not None and snapshots.download(previous.location, database)
    if downloaded and previous is not None and file_sha256(database) != previous.sha256:
        logger.warning("snapshot %s does not match its checksum; building from scratch", previous.location)
        database.unlink()
    try:
        result = sync_feeds(sources, fetcher, database, options=options, clock=clock)
        checksum = file_sha256(database)
        pointer = DbPointer(
            location=snapshot_key(result.metadata.built_at, checksum),
            sha256=checksum,
            built_at=result.metadata.built_at,
            schema_version=SCHEMA_VERSION,
            record_count=result.metadata.vulnerability_count,
        )
        snapshots.upload(pointer.location, database)
    finally:
        database.unlink(missing_ok=True)
    feeds.put_db_pointer(pointer)
    if previous is not None and previous.location != pointer.location:
        try:
            snapshots.retire(previous.location)
        except StoreError as exc:  # it then stays until removed by hand: storage, not correctness
            logger.warning("cannot retire the previous snapshot %s: %s", previous.location, exc)
    summaries = tuple(
        SourceSummary(
            url=outcome.source.url,
            kind=outcome.source.kind.value,
            status=outcome.status,
            record_count=outcome.record_count,
            error=outcome.error,
        )
        for outcome in result.outcomes
    )
    return FeedSyncOutcome(pointer=pointer, sources=summaries, failed_sources=len(result.failed))
