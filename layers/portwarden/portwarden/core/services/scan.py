"""Use case: scan an image — analysis, vulnerability matching, optional policy evaluation — and keep
what was found in the stores, as Anchore does for every image it is given."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.match import Match
from portwarden.core.model.policy import PolicyBundle, PolicyEvaluation
from portwarden.core.model.records import AnalysisStatus, EventRecord, ImageRecord, TagRecord
from portwarden.core.ports import AnalysisStore, CatalogStore, EvaluationStore, EventStore
from portwarden.core.services.evaluate import evaluate, evaluation_input, evaluation_record
from portwarden.core.services.match import match_image
from portwarden.core.triage.apply import apply_triage
from portwarden.core.triage.model import TriageInputs, TriageOutcome
from portwarden.core.vulns.db import VulnerabilityDb

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScanResult:
    analysis: ImageAnalysis
    # What is reported: every match a VEX statement or an ignore rule did not suppress.
    matches: list[Match]
    evaluation: PolicyEvaluation | None = None
    # What triage did (suppressed matches with their reasons, annotations), when it ran.
    triage: TriageOutcome | None = None

    @property
    def all_matches(self) -> list[Match]:
        """Reported and suppressed matches: the facts a store keeps."""
        if self.triage is None:
            return self.matches
        return [*self.matches, *(item.match for item in self.triage.suppressed)]


@dataclass(frozen=True)
class ScanStores:
    catalog: CatalogStore
    analyses: AnalysisStore
    evaluations: EvaluationStore
    events: EventStore


def match_and_evaluate(
    analysis: ImageAnalysis,
    db: VulnerabilityDb,
    *,
    bundle: PolicyBundle | None = None,
    repo_tag: str | None = None,
    clock: Clock = _now,
    triage: TriageInputs | None = None,
) -> ScanResult:
    """Match the analysis against the database, triage the matches (VEX, ignore rules) and, given a
    bundle, evaluate what triage left reported."""
    matches = match_image(analysis, db)
    outcome = None
    if triage is not None and not triage.empty:
        outcome = apply_triage(
            analysis, matches, triage, today=clock().date(), repo_tag=repo_tag or analysis.source.reference
        )
        matches = list(outcome.matches)
    evaluation = None
    if bundle is not None:
        data = evaluation_input(
            analysis,
            matches,
            now=clock(),
            repo_tag=repo_tag or analysis.source.reference,
            db_built_at=db.metadata().built_at,
            vulnerability_data_available=True,
        )
        evaluation = evaluate(bundle, data)
    return ScanResult(analysis=analysis, matches=matches, evaluation=evaluation, triage=outcome)


def record_scan(
    result: ScanResult,
    stores: ScanStores,
    *,
    db_built_at: datetime | None,
    repo_tag: str | None = None,
    clock: Clock = _now,
) -> ImageRecord:
    """Store the image (analyzed), its analysis, matches and evaluation, its tag, and an event."""
    analysis = result.analysis
    digest = analysis.source.manifest_digest
    now = clock()
    tag = repo_tag or analysis.source.reference
    existing = stores.catalog.get_image(digest)
    tags = set(existing.repo_tags) if existing else set()
    if tag:
        tags.add(tag)
    distro = analysis.distro
    record = ImageRecord(
        image_digest=digest,
        image_id=analysis.source.config_digest,
        analysis_status=AnalysisStatus.ANALYZED,
        repo_tags=tuple(sorted(tags)),
        source=f"{analysis.source.type}:{analysis.source.location}",
        platform=analysis.source.platform,
        distro=f"{distro.id}:{distro.version_id}" if distro else None,
        package_count=len(analysis.packages),
        created_at=existing.created_at if existing else now,
        analyzed_at=now,
    )
    stores.analyses.put_analysis(digest, analysis)
    stores.analyses.put_matches(digest, result.all_matches, db_built_at)
    stores.catalog.put_image(record)
    if tag:
        stores.catalog.put_tag(TagRecord(repo_tag=tag, image_digest=digest, updated_at=now))
    if result.evaluation is not None:
        stores.evaluations.put_evaluation(evaluation_record(result.evaluation))
    stores.events.put_event(
        EventRecord(
            event_id=str(uuid.uuid4()),
            type="user.image.analysis.completed",
            resource_type="image",
            resource_id=digest,
            message=f"scan of {tag or record.source} completed",
            details={"package_count": len(analysis.packages), "vulnerability_count": len(result.matches)},
            timestamp=now,
        )
    )
    return record
