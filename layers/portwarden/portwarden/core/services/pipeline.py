"""The analysis split into phases, for the Step Functions pipeline (DESIGN §2, "On AWS").

Resolve → AnalyzeLayer (one per uncached layer, in a Map) → Assemble. Phases exchange pointers —
digests and blob keys — never documents: the resolved manifest and config are kept in the BlobStore
by Resolve, each layer's fragment by AnalyzeLayer (the same fragment cache the CLI uses), and
Assemble writes the analysis through the AnalysisStore. Every phase is idempotent: running it twice
with the same input gives the same stored result.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from portwarden.core.analyzers.base import Analyzer, AnalyzerOptions
from portwarden.core.analyzers.memo import CatalogerMemo
from portwarden.core.analyzers.registry import ANALYZERS
from portwarden.core.errors import ClaimLostError, NotFoundError
from portwarden.core.image.cache import AnalysisCache
from portwarden.core.image.content import ContentStore
from portwarden.core.image.digest import split_digest
from portwarden.core.image.fragment import LayerIndex
from portwarden.core.image.layer_cache import LayerCache
from portwarden.core.image.limits import check_layer_count
from portwarden.core.image.manifest import Descriptor, parse_platform
from portwarden.core.image.reader import SquashedImage, read_one_layer
from portwarden.core.image.reference import SourceSpec
from portwarden.core.image.sources import ResolvedImage, open_source
from portwarden.core.image.squash import squash
from portwarden.core.image.stacks import LayerStackCache, StackLookup
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.pipeline import AnalysisRequest, AssembledPointer, LayerTask, ResolvedPointer
from portwarden.core.model.records import (
    AnalysisClaim,
    AnalysisStatus,
    AnalyzedSummary,
    EventRecord,
    ImageRecord,
    TagRecord,
)
from portwarden.core.ports import AnalysisStore, BlobStore, CatalogStore, EventStore
from portwarden.core.services.acquire import DEFAULT_PLATFORM, ImageAccess
from portwarden.core.services.analyze import (
    analysis_from_stack,
    assemble,
    store_new_analysis,
)
from portwarden.core.services.claims import mark_failed_phase
from portwarden.core.services.plan import AnalysisPlan, analysis_source, plan_analysis

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]

# How long a claim holds when the caller names no limit: longer than any analysis may run, so a
# live analysis is never taken over; a dead one is taken over (or swept) after it.
DEFAULT_CLAIM_TTL = timedelta(hours=2)


def _now() -> datetime:
    return datetime.now(UTC)


def _resolved_key(image_digest: str) -> str:
    algorithm, hexdigest = split_digest(image_digest)
    return f"resolved/{algorithm}/{hexdigest}.json"


def resolve_phase(
    request: AnalysisRequest,
    access: ImageAccess,
    *,
    blobs: BlobStore,
    catalog: CatalogStore,
    owner: str | None = None,
    claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
    options: AnalyzerOptions | None = None,
    analyzers: tuple[Analyzer, ...] = ANALYZERS,
    clock: Clock = _now,
) -> ResolvedPointer:
    """Resolve the manifest and config, claim the image's analysis, list the layers to read.

    The same image twice starts one analysis: an image analyzed, or analyzing under another
    attempt's unexpired claim, is skipped (``skip``); ``force`` re-analyzes an analyzed image.
    ``owner`` names this attempt (the execution); the claim it takes lasts ``claim_ttl``.
    """
    spec = SourceSpec.parse(request.source)
    source = open_source(spec, access.limits, access.registry_client)
    try:
        # Requests carry DEFAULT_PLATFORM when none was asked for: that keeps its meaning of "no
        # platform in particular" (an index's default image, a single-platform image as it is).
        wanted = None if request.platform == DEFAULT_PLATFORM else parse_platform(request.platform)
        resolved = source.resolve(wanted)
    finally:
        source.close()
    check_layer_count(resolved, access.limits)
    image_digest = resolved.manifest_digest
    blobs.put(_resolved_key(image_digest), resolved.model_dump_json(by_alias=True).encode())
    claim = AnalysisClaim(owner=owner or f"attempt-{uuid.uuid4()}", deadline=clock() + claim_ttl)
    skip = not _claim_analysis(catalog, image_digest, resolved, request, claim, clock)
    plan = plan_analysis(options, analyzers, access.limits)
    cache = plan.layer_cache(blobs)
    # An analysis stored under this very key answers without reading a layer (``force`` asks for a
    # new one). The same digest analyzed for another account, or before a failed phase, is found here.
    results = plan.result_cache(blobs, access.limits)
    stored = not request.force and results.has(image_digest)
    # Another image on the same layers was analyzed: Assemble answers from the layer stack's entry.
    on_stack = not request.force and not stored and results.layer_stacks().has(resolved)
    layers = tuple(
        LayerTask(
            digest=layer.digest,
            size=layer.size,
            media_type=layer.media_type,
            diff_id=diff_id,
            cached=stored or on_stack or cache.has(layer.digest),
        )
        for layer, diff_id in zip(resolved.layers, resolved.config_document.rootfs.diff_ids, strict=True)
    )
    return ResolvedPointer(
        image_digest=image_digest,
        image_id=resolved.config_digest,
        source=request.source,
        platform=resolved.platform,
        repo_tag=request.repo_tag,
        resolved_key=_resolved_key(image_digest),
        layers=layers,
        skip=skip,
        stored_analysis=stored,
        layer_stack=on_stack,
        account=request.account,
        owner=claim.owner,
    )


def _claim_analysis(
    catalog: CatalogStore,
    image_digest: str,
    resolved: ResolvedImage,
    request: AnalysisRequest,
    claim: AnalysisClaim,
    clock: Clock,
) -> bool:
    """Record the image and claim its analysis; False when another attempt holds it or it is done.

    The claim is a conditional update on the status and the current claim's deadline, so of two
    triggers for one digest (an ECR push delivered twice, a push racing a watch poll) only one
    starts an analysis, and a claim left by a dead attempt is taken over once it expires.
    """
    # Insert-if-absent first: of two triggers racing on a new digest, both then see the same record.
    catalog.add_image(
        ImageRecord(
            image_digest=image_digest,
            image_id=resolved.config_digest,
            analysis_status=AnalysisStatus.NOT_ANALYZED,
            source=request.source,
            platform=resolved.platform,
            created_at=clock(),
        )
    )
    existing = catalog.get_image(image_digest)
    if existing is None:
        raise NotFoundError(f"image {image_digest} vanished from the catalog while being recorded")
    if request.repo_tag:
        # The tags table remembers the digest each tag last pointed to: the image's own list keeps
        # only its newest tags.
        catalog.put_tag(TagRecord(repo_tag=request.repo_tag, image_digest=image_digest, updated_at=clock()))
        if request.repo_tag not in existing.repo_tags:
            catalog.add_repo_tag(image_digest, request.repo_tag)
    if existing.analysis_status is AnalysisStatus.ANALYZING and existing.claim_owner == claim.owner:
        return True  # this attempt's own claim: Resolve retried after claiming
    if existing.analysis_status is AnalysisStatus.ANALYZED and not request.force:
        return False
    return catalog.claim_analysis(image_digest, claim, now=clock(), force=request.force)


def analyze_layer_phase(
    source_text: str,
    layer: LayerTask,
    access: ImageAccess,
    *,
    blobs: BlobStore,
    options: AnalyzerOptions | None = None,
    analyzers: tuple[Analyzer, ...] = ANALYZERS,
) -> LayerTask:
    """Read one layer into its cached fragment (a no-op when the fragment is already there)."""
    plan = plan_analysis(options, analyzers, access.limits)
    cache = plan.layer_cache(blobs)
    if cache.has(layer.digest):
        return layer.model_copy(update={"cached": True})
    contents = ContentStore(access.work_dir)
    try:
        _read_layer(source_text, layer, access, plan, cache, contents)
    finally:
        contents.close()
    return layer.model_copy(update={"cached": True})


def _read_layer(
    source_text: str,
    layer: LayerTask,
    access: ImageAccess,
    plan: AnalysisPlan,
    cache: LayerCache,
    contents: ContentStore,
    warning: str | None = None,
) -> LayerIndex:
    """Read one layer from its source into ``contents`` and (re)write its fragment.

    ``warning`` (why a cached fragment was unusable) goes on the returned index only, never into the
    fragment written, which is sound.
    """
    source = open_source(SourceSpec.parse(source_text), access.limits, access.registry_client)
    try:
        descriptor = Descriptor(mediaType=layer.media_type, digest=layer.digest, size=layer.size)
        index = read_one_layer(
            source, descriptor, layer.diff_id, plan.capture, contents, access.limits, scanners=plan.scanners
        )
    finally:
        source.close()
    cache.save(index, plan.capture, contents)
    if warning is not None:
        index = index.with_warning(warning)
    return index


def assemble_phase(
    pointer: ResolvedPointer,
    access: ImageAccess,
    *,
    blobs: BlobStore,
    catalog: CatalogStore,
    analyses: AnalysisStore,
    events: EventStore | None = None,
    options: AnalyzerOptions | None = None,
    analyzers: tuple[Analyzer, ...] = ANALYZERS,
    clock: Clock = _now,
    keep_cataloger_results: bool = False,
) -> AssembledPointer:
    """Squash the cached fragments, run the analyzers, store the analysis, mark the image analyzed.

    ``keep_cataloger_results``: catalogers whose questions get the answers they got before are not
    run again (``analyzers.memo``); for a host whose store answers in microseconds (a cataloger asks
    it once and writes once: on S3, round trips that cost more than most catalogers save).

    Only while the image is still this attempt's (``pointer.owner``'s claim): an image deleted
    meanwhile (a forced delete stops the execution, but a phase already running finishes) is neither
    written back nor given an analysis document; ``ClaimLostError`` then.
    """
    _check_claim(pointer, catalog)
    raw = blobs.get(pointer.resolved_key)
    if raw is None:
        raise NotFoundError(f"resolved image {pointer.resolved_key} is missing (Resolve did not run?)")
    resolved = ResolvedImage.model_validate_json(raw)
    plan = plan_analysis(options, analyzers, access.limits)
    results = plan.result_cache(blobs, access.limits)
    analysis = _stored_analysis(pointer, resolved, results) if pointer.stored_analysis else None
    stacks = results.layer_stacks()
    if analysis is None and pointer.layer_stack:
        analysis = _analysis_on_stack(pointer, resolved, results, stacks, clock)
    if analysis is None:
        memo = CatalogerMemo(blobs, results.key) if keep_cataloger_results else None
        analysis = _assemble_from_fragments(pointer, resolved, access, plan, blobs, clock, memo)
        # Stored with its layer stack's entry: the next image on these layers skips the catalogers.
        store_new_analysis(results, analysis, resolved, stacks)
    # Checked again just before writing: the analysis may have taken minutes.
    _check_claim(pointer, catalog)
    analyses.put_analysis(pointer.image_digest, analysis)
    _record_analyzed(pointer, analysis, catalog, clock)
    if events is not None:
        events.put_event(
            EventRecord(
                event_id=str(uuid.uuid4()),
                type="user.image.analysis.completed",
                resource_type="image",
                resource_id=pointer.image_digest,
                message=f"analysis of {pointer.repo_tag or pointer.source} completed",
                details={"package_count": len(analysis.packages)},
                timestamp=clock(),
            )
        )
    return AssembledPointer(
        image_digest=pointer.image_digest,
        repo_tag=pointer.repo_tag,
        account=pointer.account,
        package_count=len(analysis.packages),
        analyzer_errors=tuple(f"{run.name}: {run.error}" for run in analysis.analyzers if run.error),
    )


def _stored_analysis(
    pointer: ResolvedPointer, resolved: ResolvedImage, results: AnalysisCache
) -> ImageAnalysis | None:
    """The analysis Resolve found in the result cache, verified; None (logged) when unusable."""
    lookup = results.lookup(pointer.image_digest)
    if lookup.analysis is None:
        # Gone or damaged since Resolve looked: the layers it passed over are read below.
        logger.warning("%s", lookup.warning or f"image {pointer.image_digest}: the stored analysis is gone")
        return None
    return lookup.analysis.model_copy(update={"source": analysis_source(resolved)})


def _analysis_on_stack(
    pointer: ResolvedPointer,
    resolved: ResolvedImage,
    results: AnalysisCache,
    stacks: LayerStackCache,
    clock: Clock,
) -> ImageAnalysis | None:
    """The analysis made from the layer stack's entry Resolve found; None (logged) when unusable."""
    found = stacks.lookup(resolved)
    if found.entry is None:
        # Gone or damaged since Resolve looked: the layers it passed over are read below.
        gone = f"image {pointer.image_digest}: its layer stack's entry is gone"
        logger.warning("%s", found.warning or gone)
        return None
    analysis, _, problem = analysis_from_stack(found.entry, resolved, results, clock)
    if analysis is None:  # verified, yet not an analysis: the layers are read, the entry replaced
        logger.warning("%s", StackLookup(None, problem).warning)
    return analysis


def _assemble_from_fragments(
    pointer: ResolvedPointer,
    resolved: ResolvedImage,
    access: ImageAccess,
    plan: AnalysisPlan,
    blobs: BlobStore,
    clock: Clock,
    memo: CatalogerMemo | None = None,
) -> ImageAnalysis:
    """Squash the layers' cached fragments (reading any layer that has none usable) and catalog."""
    cache = plan.layer_cache(blobs)
    contents = ContentStore(access.work_dir)
    try:
        layers = []
        for task in pointer.layers:
            lookup = cache.lookup(task.digest, contents, task.diff_id)
            if lookup.index is not None:
                layers.append(lookup.index)
                continue
            # No usable fragment: damaged, its captured contents partly expired (they are shared
            # between fragments and expire on their own), or written by another release. Read the
            # layer again here, and the fresh fragment replaces the broken one, rather than fail
            # this and every future analysis of an image with that layer. A damaged fragment's
            # reason goes on the analysis as a warning; the log says it now.
            if lookup.warning is not None:
                logger.warning("%s", lookup.warning)
            else:
                logger.warning("layer %s has no fragment; reading it again", task.digest)
            layers.append(_read_layer(pointer.source, task, access, plan, cache, contents, lookup.warning))
        records, warnings = squash(layers)
        image = SquashedImage(
            resolved=resolved,
            layers=layers,
            records=records,
            contents=contents,
            warnings=[w for layer in layers for w in layer.warnings] + warnings,
        )
        return assemble(image, plan.options, plan.analyzers, clock, memo)
    finally:
        contents.close()


def _check_claim(pointer: ResolvedPointer, catalog: CatalogStore) -> None:
    """ClaimLostError unless the image is analyzing under this attempt's claim, or already analyzed
    (this phase retried after it recorded the analysis: the document is the same image's)."""
    if pointer.owner is None:
        return
    record = catalog.get_image(pointer.image_digest)
    if record is None:
        raise ClaimLostError(f"image {pointer.image_digest} was deleted during its analysis")
    if record.analysis_status is AnalysisStatus.ANALYZED:
        return
    if record.analysis_status is not AnalysisStatus.ANALYZING or record.claim_owner != pointer.owner:
        raise ClaimLostError(f"the analysis of {pointer.image_digest} is no longer this attempt's")


def _record_analyzed(
    pointer: ResolvedPointer, analysis: ImageAnalysis, catalog: CatalogStore, clock: Clock
) -> None:
    """Only the analysis attributes are written: a tag recorded meanwhile by another trigger stays."""
    distro = analysis.distro
    try:
        recorded = catalog.mark_analyzed(
            pointer.image_digest,
            AnalyzedSummary(
                analyzed_at=clock(),
                package_count=len(analysis.packages),
                distro=f"{distro.id}:{distro.version_id}" if distro else None,
            ),
            owner=pointer.owner,
        )
    except NotFoundError:
        if pointer.owner is None:
            raise
        recorded = False
    if not recorded:
        _check_claim(pointer, catalog)  # analyzed already (a retry) passes; deleted or taken over not


__all__ = [
    "AnalysisRequest",
    "AssembledPointer",
    "LayerTask",
    "ResolvedPointer",
    "analyze_layer_phase",
    "assemble_phase",
    "mark_failed_phase",
    "resolve_phase",
]
