"""Use case: analyze an image into an ImageAnalysis (the native SBOM document).

Layers are read once each (or taken from the fragment cache); the analyzers then run over the
squashed filesystem. One analyzer failing is recorded on the analysis and never sinks it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portwarden.core.analyzers.base import Analyzer, AnalyzerOptions
from portwarden.core.analyzers.memo import CatalogerMemo, run_cataloger
from portwarden.core.analyzers.ownership import drop_owned_language_packages
from portwarden.core.analyzers.registry import ANALYZERS, STREAM_ANALYZER_VERSIONS
from portwarden.core.errors import StoreError
from portwarden.core.image.cache import AnalysisCache, ResultLookup
from portwarden.core.image.limits import check_layer_count
from portwarden.core.image.manifest import ImageConfig
from portwarden.core.image.reference import SourceKind, SourceSpec
from portwarden.core.image.rendering import CACHE_WARNING_PREFIX, RenderingRecorder
from portwarden.core.image.replay import StoredAnswer
from portwarden.core.image.retrieve import retrieved_files
from portwarden.core.image.sources import ImageSource, ResolvedImage, layout_reads
from portwarden.core.image.squash import surviving_findings
from portwarden.core.image.stacks import (
    FRESH_MEMBERS,
    LayerStackCache,
    StackEntry,
    StackLookup,
    splice_members,
)
from portwarden.core.model.analysis import (
    AnalyzedFile,
    AnalyzerRun,
    ContentMatch,
    ImageAnalysis,
    ImageMetadata,
    RetrievedFile,
    SecretFinding,
)
from portwarden.core.model.distro import Distro
from portwarden.core.model.files import FileRecord
from portwarden.core.model.package import Package
from portwarden.core.replay.layout import dockerfile_from_history
from portwarden.core.replay.phase import PHASE_MEMBERS
from portwarden.core.sbom import DocumentFormat
from portwarden.core.sbom.cpe import cpe_candidates
from portwarden.core.services.acquire import ImageAccess, acquire_image, opened_image, read_resolved
from portwarden.core.services.plan import AnalysisPlan, analysis_source, document_rendering, plan_analysis
from portwarden.core.services.stored import stored_answer

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from _typeshed import SupportsWrite

    from portwarden.core.image.reader import SquashedImage
    from portwarden.core.ports import BlobStore

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def analyze_image(
    source_text: str,
    access: ImageAccess,
    *,
    options: AnalyzerOptions | None = None,
    blobs: BlobStore | None = None,
    platform: str | None = None,
    analyzers: tuple[Analyzer, ...] = ANALYZERS,
    clock: Clock = _now,
) -> ImageAnalysis:
    """Analyze an image; with ``blobs``, through the image-level result cache and the layer cache.

    A rescan of an image already analyzed with the same analyzers, options and limits is answered
    from the stored analysis (verified on read) without reading a layer; otherwise layers come from
    their cached fragments or are read, and the new analysis is stored.
    """
    spec = SourceSpec.parse(source_text)
    if spec.kind is SourceKind.SBOM:
        # The document states the packages: nothing to read, nothing to run the analyzers on.
        from portwarden.core.sbom.decode import read_sbom

        return read_sbom(Path(spec.location))
    plan = plan_analysis(options, analyzers, access.limits)
    if blobs is None:
        return with_inventory(*_read_and_assemble(source_text, access, plan, platform, clock))

    results = plan.result_cache(blobs, access.limits)
    stacks = results.layer_stacks()
    with opened_image(source_text, access, platform) as (source, resolved):
        lookup = results.lookup(resolved.manifest_digest)
        found = _stack_entry(lookup, stacks, resolved, access)
        if found.entry is not None:
            analysis, _, problem = analysis_from_stack(found.entry, resolved, results, clock)
            if analysis is not None:
                return analysis
            found = StackLookup(None, problem)
        lookup, image = _stored_or_read(source, resolved, access, plan, results, blobs, lookup)
    memo = CatalogerMemo(blobs, results.key)
    return _finish(lookup, image, plan, results, clock, None, stacks, found.warning, memo)[0]


def _read_and_assemble(
    source_text: str, access: ImageAccess, plan: AnalysisPlan, platform: str | None, clock: Clock
) -> tuple[ImageAnalysis, list[FileRecord]]:
    """Every layer read (no cache), and ``assemble_for_document``'s analysis and inventory."""
    read = acquire_image(source_text, access, plan.capture, platform, scanners=plan.scanners)
    try:
        return assemble_for_document(read, plan.options, plan.analyzers, clock)
    finally:
        read.close()


@dataclass(frozen=True)
class SbomDocument:
    """An image's SBOM document, ready to write: a stored one (``stored``), or ``analysis`` to encode,
    or (``analysis`` None) the pieces of a native document spliced from the layer-stack cache, whose
    analysis, like a stored document's, had no failed analyzer and no cache warning.

    ``write`` encodes the analysis and, when ``record`` is set, stores the document for the next
    identical request.
    """

    document_format: str
    stored: bytes | None = None
    # The analysis as assembled: without its entries when ``inventory`` holds its records (the
    # native document encodes them straight from those: ``assemble_for_document``). Its warnings
    # and analyzer runs are what the command says about it; ``analysis`` is the whole of it.
    summary: ImageAnalysis | None = None
    record: RenderingRecorder | None = None
    # Where the document is (or will be, once ``write`` stores it) and what named it, for a source
    # that can be checked again cheaply (a layout directory: ``replay``).
    answer: StoredAnswer | None = None
    # The document's pieces when they were encoded already (with the stored analysis: see _finish).
    encoded: Iterator[bytes] | None = None
    # The pieces are of a document stored already (spliced from a layer stack's entry, and stored as
    # what it adds to it): ``write`` writes them and says the document is stored.
    rendered: bool = False
    inventory: Sequence[FileRecord] | None = None

    @cached_property
    def analysis(self) -> ImageAnalysis | None:
        """The analysis with its entries (built from ``inventory`` on first use)."""
        if self.summary is None or self.inventory is None:
            return self.summary
        return with_inventory(self.summary, self.inventory)

    def write(self, out: SupportsWrite[bytes]) -> bool:
        """Write the document; whether it is stored for the next identical request (found there or
        stored now)."""
        from portwarden.core.sbom import write_document

        if self.stored is not None:
            out.write(self.stored)
            return True
        if self.rendered and self.encoded is not None:
            for piece in self.encoded:
                out.write(piece)
            return True
        if self.summary is None and self.encoded is None:  # pragma: no cover - sbom_document gives one
            raise AssertionError("neither a stored document nor an analysis")
        target: SupportsWrite[bytes] = out if self.record is None else _Tee(out, self.record)
        if self.encoded is not None:
            for piece in self.encoded:
                target.write(piece)
        elif self.analysis is not None:
            write_document(self.analysis, self.document_format, target)
        if self.record is None:
            return False
        try:
            return self.record.commit()
        except StoreError as exc:  # the next identical request encodes the document again
            logger.warning("could not store the %s document: %s", self.document_format, exc)
            return False


def sbom_document(
    source_text: str,
    access: ImageAccess,
    document_format: str,
    *,
    options: AnalyzerOptions | None = None,
    blobs: BlobStore | None = None,
    platform: str | None = None,
    analyzers: tuple[Analyzer, ...] = ANALYZERS,
    clock: Clock = _now,
    phase_stamp: str | None = None,
) -> SbomDocument:
    """The image's SBOM document in ``document_format`` (a ``DocumentFormat`` name).

    With ``blobs``, a request identical to an earlier one is answered with the document stored then:
    the same image (manifest digest), analyzers, options and limits (the result cache's key), the same
    format and the same source. It is printed as stored, verified, without building the analysis's
    models or encoding them again. Otherwise the analysis comes from the result cache or is made, and
    the document written from an analysis the result cache holds is stored with it. With
    ``phase_stamp`` (what names the code and settings, from the front end), a new analysis's
    catalogers' phase is kept too (``core.replay.phase``).
    """
    chosen = DocumentFormat(document_format).value
    from_sbom = SourceSpec.parse(source_text).kind is SourceKind.SBOM
    if blobs is None and not from_sbom and chosen == DocumentFormat.NATIVE_JSON:
        # Nothing stored: the document encodes the inventory from its records (no entry model).
        from portwarden.core.sbom.native import iter_native_json

        plan = plan_analysis(options, analyzers, access.limits)
        assembled, records = _read_and_assemble(source_text, access, plan, platform, clock)
        pieces = iter_native_json(assembled, inventory=records)
        return SbomDocument(chosen, summary=assembled, encoded=pieces, inventory=records)
    if blobs is None or from_sbom:
        analysis = analyze_image(
            source_text,
            access,
            options=options,
            blobs=blobs,
            platform=platform,
            analyzers=analyzers,
            clock=clock,
        )
        return SbomDocument(chosen, summary=analysis)
    plan = plan_analysis(options, analyzers, access.limits)
    results = plan.result_cache(blobs, access.limits)
    with opened_image(source_text, access, platform) as (source, resolved):
        rendering = document_rendering(chosen, resolved)
        answer = stored_answer(layout_reads(source), results, resolved.manifest_digest, rendering)
        stored = results.rendering(resolved.manifest_digest, rendering)
        if stored.document is not None:
            return SbomDocument(chosen, stored=stored.document, answer=answer)
        if stored.problem is not None:  # made again, and the damaged document replaced
            logger.warning("%s%s; the document was made again", CACHE_WARNING_PREFIX, stored.problem)
        stacks = results.layer_stacks()
        lookup = results.lookup(resolved.manifest_digest)
        found = _stack_entry(lookup, stacks, resolved, access)
        from_stack: SbomDocument | None = None
        if found.entry is not None and chosen == DocumentFormat.NATIVE_JSON:
            # Spliced from the entry's bytes (no model made), and stored as what it adds to them.
            pieces, kept = _from_stack(found.entry, resolved, results, clock, rendering)
            if kept:
                return SbomDocument(chosen, encoded=pieces, answer=answer, rendered=True)
            from_stack = SbomDocument(chosen, encoded=pieces)
        elif found.entry is not None:
            stacked, kept, problem = analysis_from_stack(found.entry, resolved, results, clock)
            if stacked is not None:
                from_stack = SbomDocument(chosen, summary=stacked)
            else:
                found = StackLookup(None, problem)
        if from_stack is not None:
            if not kept:
                return from_stack
            record = results.record_rendering(resolved.manifest_digest, rendering)
            return replace(from_stack, record=record, answer=answer)
        lookup, image = _stored_or_read(source, resolved, access, plan, results, blobs, lookup)
    memo = CatalogerMemo(blobs, results.key, phase_stamp)
    analysis, kept, encoded, inventory = _finish(
        lookup, image, plan, results, clock, chosen, stacks, found.warning, memo
    )
    if not kept:
        return SbomDocument(chosen, summary=analysis, encoded=encoded, inventory=inventory)
    record = results.record_rendering(resolved.manifest_digest, rendering)
    return SbomDocument(
        chosen, summary=analysis, record=record, answer=answer, encoded=encoded, inventory=inventory
    )


def _from_stack(
    entry: StackEntry, resolved: ResolvedImage, results: AnalysisCache, clock: Clock, rendering: str
) -> tuple[Iterator[bytes], bool]:
    """The native document of an image whose layer stack was analyzed before (``core.image.stacks``),
    and whether it is now stored in ``results``, with its analysis.

    The members the layers determine are the entry's bytes; the source, the image metadata and the
    time are this image's, encoded now. The analysis is stored as those members and the stack
    (``AnalysisCache.save_on_stack``), and the document (``rendering``) likewise, for the next
    request about this image.
    """
    own = _own_members(entry, resolved, clock)
    names = list(ImageAnalysis.model_fields)
    document, _ = splice_members(names, own, entry.members)
    digest = resolved.manifest_digest
    kept = _store_on_stack(results, digest, entry.stack_id, own)
    if kept:
        try:
            results.save_rendering_on_stack(digest, rendering, entry.stack_id, names, own)
        except StoreError as exc:  # the next identical request splices the document again
            logger.warning("could not store the json document: %s", exc)
            kept = False
    return iter(document), kept


def analysis_from_stack(
    entry: StackEntry, resolved: ResolvedImage, results: AnalysisCache, clock: Clock = _now
) -> tuple[ImageAnalysis | None, bool, str | None]:
    """The analysis of an image whose layer stack was analyzed before, and whether it is now stored
    in ``results`` on that stack: the entry's members with this image's source, metadata and time,
    read back as the result cache reads an analysis stored on its stack (for a scan, a document
    other than the native one, the analysis phases' Assemble). An entry whose verified bytes do not
    make an analysis is a miss: no analysis, and why (the caller assembles the image from its layers,
    and the entry is replaced)."""
    own = _own_members(entry, resolved, clock)
    _, stored = splice_members(list(ImageAnalysis.model_fields), own, entry.members)
    try:
        analysis = ImageAnalysis.model_validate_json(b"".join(stored))
    except ValueError as exc:  # pydantic's ValidationError is one; its first line says what failed
        reason = str(exc).splitlines()[0]
        return None, False, f"layer stack {entry.stack_id}: the entry is not an analysis ({reason})"
    return analysis, _store_on_stack(results, resolved.manifest_digest, entry.stack_id, own), None


def _stack_entry(
    lookup: ResultLookup, stacks: LayerStackCache, resolved: ResolvedImage, access: ImageAccess
) -> StackLookup:
    """The layer stack's entry for an image the result cache has no analysis of (none when it has
    one, or a damaged one: that one is replaced by an analysis from the layers)."""
    if lookup.analysis is not None or lookup.problem is not None:
        return StackLookup(None)
    check_layer_count(resolved, access.limits)  # as a read of the layers would
    return stacks.lookup(resolved)


def _own_members(entry: StackEntry, resolved: ResolvedImage, clock: Clock) -> dict[str, bytes]:
    """The members of an analysis on ``entry``'s stack that are the image's own, encoded as printed."""
    from portwarden.core.sbom.native import native_members

    fresh = ImageAnalysis.model_construct(
        source=analysis_source(resolved),
        image=image_metadata_of(resolved, entry.layers),
        analyzed_at=clock().isoformat(timespec="seconds"),
    )
    return native_members(fresh, FRESH_MEMBERS)


def _store_on_stack(
    results: AnalysisCache, manifest_digest: str, stack_id: str, own: dict[str, bytes]
) -> bool:
    try:
        return results.save_on_stack(manifest_digest, stack_id, own)
    except StoreError as exc:  # a cache that cannot be written costs the next rescan, not this one
        logger.warning("could not store the analysis of %s: %s", manifest_digest, exc)
        return False


class _Tee:
    """Writes to ``out`` and keeps a copy."""

    def __init__(self, out: SupportsWrite[bytes], copy: SupportsWrite[bytes]) -> None:
        self._out = out
        self._copy = copy

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self._copy.write(data)
        return len(data)


def _stored_or_read(
    source: ImageSource,
    resolved: ResolvedImage,
    access: ImageAccess,
    plan: AnalysisPlan,
    results: AnalysisCache,
    blobs: BlobStore,
    lookup: ResultLookup | None = None,
) -> tuple[ResultLookup, SquashedImage | None]:
    """The stored analysis of the resolved image (``lookup``, when looked up already), or (on a miss)
    the image read through the layer cache."""
    if lookup is None:
        lookup = results.lookup(resolved.manifest_digest)
    if lookup.analysis is not None:
        # The same image, perhaps under another name or source kind: the facts stay, the source is
        # the one asked for now.
        answer = lookup.analysis.model_copy(update={"source": analysis_source(resolved)})
        return ResultLookup(answer), None
    image = read_resolved(
        source, resolved, access, plan.capture, scanners=plan.scanners, cache=plan.layer_cache(blobs)
    )
    return lookup, image


def _finish(
    lookup: ResultLookup,
    image: SquashedImage | None,
    plan: AnalysisPlan,
    results: AnalysisCache,
    clock: Clock,
    document_format: str | None = None,
    stacks: LayerStackCache | None = None,
    stack_warning: str | None = None,
    memo: CatalogerMemo | None = None,
) -> tuple[ImageAnalysis, bool, Iterator[bytes] | None, list[FileRecord] | None]:
    """The analysis, whether it is the one stored in ``results`` (found there or stored now), the
    native document's pieces when ``document_format`` asks for it and they were encoded with the
    stored analysis (the inventory encoded once for both, from its records), and those records when
    the analysis is left without its entries (``assemble_for_document``: then, only then). A new
    analysis stored with its native document is kept in ``stacks`` too, for the next image on the
    same layers; ``stack_warning`` says why the entry there could not be used (the analysis printed
    says it, the ones stored do not, as for a damaged stored analysis); ``memo`` keeps the
    catalogers' results."""
    if image is None:
        if lookup.analysis is None:  # pragma: no cover - _stored_or_read gives one or the other
            raise AssertionError("neither a stored analysis nor an image")
        return lookup.analysis, True, None, None
    try:
        analysis, inventory = assemble_for_document(image, plan.options, plan.analyzers, clock, memo)
    finally:
        image.close()
    if lookup.warning is not None:  # stored without it: the printed analysis says more than the stored one
        analysis = with_inventory(analysis, inventory)
        store_result(results, analysis)
        analysis = analysis.model_copy(update={"warnings": (*analysis.warnings, lookup.warning)})
        return analysis, False, None, None
    if not storable(analysis):
        return with_inventory(analysis, inventory), False, None, None
    # The native document and the stored analysis encode the inventory from its records; the analysis
    # returned with them is what the command says about it (warnings, analyzer runs), without entries.
    # Another format, or the analysis itself, is encoded from the models: their entries are made.
    native = document_format == DocumentFormat.NATIVE_JSON
    if not native:
        analysis = with_inventory(analysis, inventory)
    members: dict[str, list[bytes]] = {}
    kept, document = store_new_analysis(
        results, analysis, image.resolved, stacks, inventory if native else None, members
    )
    if memo is not None and members:
        # What the catalogers made, as printed, for the next view they answer the same (the
        # catalogers' warnings follow the image's own in the analysis).
        made = {name: b"".join(members[name]) for name in PHASE_MEMBERS}
        memo.keep_phase(made, analysis.warnings[len(image.warnings) :])
    if stack_warning is not None:  # printed with the warning (encoded again), not kept as a rendering
        if native:
            analysis = with_inventory(analysis, inventory)
        return (
            analysis.model_copy(update={"warnings": (*analysis.warnings, stack_warning)}),
            False,
            None,
            None,
        )
    if native:
        return analysis, kept, document, inventory
    return analysis, kept, None, None


def store_new_analysis(
    results: AnalysisCache,
    analysis: ImageAnalysis,
    resolved: ResolvedImage,
    stacks: LayerStackCache | None,
    inventory: Sequence[FileRecord] | None = None,
    members: dict[str, list[bytes]] | None = None,
) -> tuple[bool, Iterator[bytes]]:
    """Store a new analysis of ``resolved`` (see ``store_result``): on its layer stack when ``stacks``
    keeps the stack's entry (the next image on the same layers is answered from it), else whole.
    Whether it was stored, and the native document's pieces, encoded with it (the inventory once;
    from ``inventory``'s records when given, see ``assemble_for_document``). ``members`` receives the
    document's members (``native_json_and_stored_analysis``), left empty when it is not stored."""
    from portwarden.core.sbom.native import native_json_and_stored_analysis

    if members is None:
        members = {}
    document, stored = native_json_and_stored_analysis(
        analysis, results.max_document_bytes, members, inventory
    )
    if stored is None or not storable(analysis):
        members.clear()
        return False, document
    if stacks is not None and _stack_saved(stacks, resolved, analysis, members):
        # The stack's entry holds the members the layers determine: the analysis is stored as the rest.
        own = {name: b"".join(members[name]) for name in FRESH_MEMBERS}
        return _store_on_stack(results, resolved.manifest_digest, stacks.stack_id(resolved), own), document
    return store_result(results, analysis, stored), document


def _stack_saved(
    stacks: LayerStackCache, resolved: ResolvedImage, analysis: ImageAnalysis, members: dict[str, list[bytes]]
) -> bool:
    """Whether the layer stack's entry of this new analysis was stored (``members``: its pieces)."""
    try:
        return stacks.save(resolved, analysis.image.layers, members)
    except StoreError as exc:  # the analysis is stored whole; the next image on these layers assembled
        logger.warning("could not store the layer stack of %s: %s", analysis.source.manifest_digest, exc)
        return False


def storable(analysis: ImageAnalysis) -> bool:
    """Whether a new analysis may go to the result cache (see ``store_result``)."""
    worked_around = any(w.startswith(CACHE_WARNING_PREFIX) for w in analysis.warnings)
    return not worked_around and not any(run.error for run in analysis.analyzers)


def store_result(
    results: AnalysisCache, analysis: ImageAnalysis, encoded: Iterable[bytes] | None = None
) -> bool:
    """Store a new analysis in the result cache (``encoded``: its JSON, when made already); whether
    it was stored.

    Not stored: an analysis that worked around a damaged layer cache (sound, but its warning would be
    repeated by every rescan; the next one, with the layer cache repaired, is stored), one where an
    analyzer failed (the next scan tries that analyzer again), one too large to read back cheaply.
    """
    if not storable(analysis):
        return False
    try:
        return results.save(analysis, encoded)
    except StoreError as exc:  # a cache that cannot be written costs the next rescan, not this one
        logger.warning("could not store the analysis of %s: %s", analysis.source.manifest_digest, exc)
        return False


def assemble(
    image: SquashedImage,
    options: AnalyzerOptions,
    analyzers: tuple[Analyzer, ...],
    clock: Clock = _now,
    memo: CatalogerMemo | None = None,
) -> ImageAnalysis:
    """Run the image-level analyzers over the squashed view and build the analysis document; with
    ``memo``, a cataloger whose questions get the answers they got before is not run again."""
    return with_inventory(*assemble_for_document(image, options, analyzers, clock, memo))


def assemble_for_document(
    image: SquashedImage,
    options: AnalyzerOptions,
    analyzers: tuple[Analyzer, ...],
    clock: Clock = _now,
    memo: CatalogerMemo | None = None,
) -> tuple[ImageAnalysis, list[FileRecord]]:
    """``assemble``'s analysis with its inventory left as the squashed view's records (in path order)
    and ``files`` empty: a document encodes the records directly (``native.encode_inventory``), with
    no ``AnalyzedFile`` built for each (``with_inventory`` puts them in when a model is needed)."""
    resolver = image.resolver()
    if memo is not None:
        memo.start_phase(resolver)
    warnings = list(image.warnings)
    runs: list[AnalyzerRun] = []
    distro: Distro | None = None
    packages: list[Package] = []
    for analyzer in analyzers:
        error = None
        try:
            if memo is None:
                output = run_cataloger(analyzer, resolver, options, distro)
            else:
                output = memo.run(analyzer, resolver, options, distro)
            if output is not None:
                if output.distro is not None and distro is None:
                    distro = output.distro
                packages.extend(output.packages)
                warnings.extend(f"{analyzer.name}: {w}" for w in output.warnings)
        except Exception as exc:  # one analyzer failing never sinks the analysis
            logger.warning("analyzer %s failed: %s", analyzer.name, exc, exc_info=True)
            error = f"{type(exc).__name__}: {exc}"
            warnings.append(f"analyzer {analyzer.name} failed: {error}")
        runs.append(AnalyzerRun(name=analyzer.name, version=analyzer.version, error=error))
    runs.extend(
        AnalyzerRun(name=name, version=version) for name, version in sorted(STREAM_ANALYZER_VERSIONS.items())
    )
    # In path order, the resolver's (the analyzers have usually sorted the paths already).
    records = image.records
    inventory = [records[p] for p in resolver.sorted_paths() if p != "/"]
    analysis = ImageAnalysis(
        source=analysis_source(image.resolved),
        distro=distro,
        packages=tuple(sorted(with_cpes(drop_owned_language_packages(packages)), key=_package_key)),
        files=(),
        secrets=tuple(
            SecretFinding(path=f.path, line=f.line, name=f.name, layer_digest=layer)
            for f, layer in surviving_findings(image.layers, image.records, "secrets")
        ),
        content_matches=tuple(
            ContentMatch(path=f.path, line=f.line, name=f.name, layer_digest=layer)
            for f, layer in surviving_findings(image.layers, image.records, "content_search")
        ),
        retrieved_files=tuple(
            RetrievedFile(**item)
            for item in retrieved_files(resolver, options.retrieve_files, options.retrieve_max_bytes)
        ),
        image=image_metadata(image),
        analyzers=tuple(runs),
        warnings=tuple(warnings),
        analyzed_at=clock().isoformat(timespec="seconds"),
    )
    return analysis, inventory


def with_inventory(analysis: ImageAnalysis, inventory: Iterable[FileRecord]) -> ImageAnalysis:
    """The analysis ``assemble_for_document`` left without its entries, with them."""
    return analysis.model_copy(update={"files": tuple(AnalyzedFile.from_records(inventory))})


def _package_key(package: Package) -> tuple[str, str, str, str]:
    location = package.locations[0].path if package.locations else ""
    return (package.type.value, package.name, package.version, location)


def with_cpes(packages: Iterable[Package]) -> list[Package]:
    """CPE candidates for the packages no analyzer gave one (the key NVD-only advisories need)."""
    result = []
    for package in packages:
        if not package.cpes:
            candidates = cpe_candidates(package)
            if candidates:
                package = package.model_copy(update={"cpes": candidates})
        result.append(package)
    return result


def image_metadata(image: SquashedImage) -> ImageMetadata:
    layers = tuple(
        {
            "digest": layer.digest,
            "diff_id": layer.diff_id,
            "size": layer.compressed_size,
            "uncompressed_size": layer.uncompressed_size,
            "entries": layer.entry_count,
        }
        for layer in image.layers
    )
    return image_metadata_of(image.resolved, layers)


def image_metadata_of(resolved: ResolvedImage, layers: tuple[dict[str, Any], ...]) -> ImageMetadata:
    """The image's metadata from its config and manifest, with the layers' summaries (``layers``)."""
    config = ImageConfig.from_document(resolved.config_document)
    return ImageMetadata(
        config=config.model_dump(mode="json", exclude={"history"}),
        history=config.history,
        dockerfile=dockerfile_from_history(config.history),
        manifest=resolved.manifest.model_dump(mode="json", by_alias=True, exclude_none=True),
        layers=layers,
    )
