"""Use case: answer an SBOM request from the document stored by an identical earlier one.

Loads the source readers, the analyzer registry (the cache key names every analyzer and version) and
the result cache, and none of the layer reader, the squash, the catalogers' work or the encoders: a
rescan of an image already analyzed costs the start-up and one verified read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portwarden.core.analyzers.base import Analyzer, AnalyzerOptions
from portwarden.core.analyzers.registry import ANALYZERS
from portwarden.core.image.manifest import parse_platform
from portwarden.core.image.reference import SourceKind, SourceSpec
from portwarden.core.image.replay import LayoutRead, StoredAnswer
from portwarden.core.image.sources import layout_reads, open_source
from portwarden.core.services.plan import document_rendering, plan_analysis

if TYPE_CHECKING:
    from portwarden.core.image.cache import AnalysisCache
    from portwarden.core.ports import BlobStore
    from portwarden.core.services.acquire import ImageAccess


def stored_sbom_document(
    source_text: str,
    access: ImageAccess,
    document_format: str,
    blobs: BlobStore,
    *,
    options: AnalyzerOptions | None = None,
    platform: str | None = None,
    analyzers: tuple[Analyzer, ...] = ANALYZERS,
) -> bytes | None:
    """The document ``analyze.sbom_document`` stored for this very request, verified; None otherwise.

    The source is resolved as for an analysis (manifest and config verified against their digests):
    the entry is looked up under the manifest digest read now, never under a name. None for anything
    but a stored, intact document (a damaged one is left for ``sbom_document`` to report and replace).
    """
    found = stored_sbom_answer(
        source_text, access, document_format, blobs, options=options, platform=platform, analyzers=analyzers
    )
    return None if found is None else found[0]


def stored_sbom_answer(
    source_text: str,
    access: ImageAccess,
    document_format: str,
    blobs: BlobStore,
    *,
    options: AnalyzerOptions | None = None,
    platform: str | None = None,
    analyzers: tuple[Analyzer, ...] = ANALYZERS,
) -> tuple[bytes, StoredAnswer | None] | None:
    """``stored_sbom_document``, with where the document is and what resolving the source read
    (``replay.StoredAnswer``; no reads for a source that is not a layout directory)."""
    spec = SourceSpec.parse(source_text)
    if spec.kind is SourceKind.SBOM:
        return None
    plan = plan_analysis(options, analyzers, access.limits)
    results = plan.result_cache(blobs, access.limits)
    source = open_source(spec, access.limits, access.registry_client)
    try:
        resolved = source.resolve(parse_platform(platform) if platform else None)
        reads = layout_reads(source)
    finally:
        source.close()
    rendering = document_rendering(document_format, resolved)
    document = results.rendering(resolved.manifest_digest, rendering).document
    if document is None:
        return None
    return document, stored_answer(reads, results, resolved.manifest_digest, rendering)


def stored_answer(
    reads: tuple[LayoutRead, ...] | None, results: AnalysisCache, manifest_digest: str, rendering: str
) -> StoredAnswer | None:
    """Where the stored ``rendering`` is and what named it, with what resolving a layout directory
    read (``reads``; none for another source, which a rescan cannot check without asking it again:
    ``StoredAnswer.document`` then answers nothing, and a registry's memo checks it over HTTP)."""
    return StoredAnswer(reads or (), results.key, manifest_digest, rendering, results.max_document_bytes)
