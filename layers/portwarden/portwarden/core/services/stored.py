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
from portwarden.core.image.sources import open_source
from portwarden.core.services.plan import document_rendering, plan_analysis

if TYPE_CHECKING:
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
    spec = SourceSpec.parse(source_text)
    if spec.kind is SourceKind.SBOM:
        return None
    plan = plan_analysis(options, analyzers, access.limits)
    results = plan.result_cache(blobs, access.limits)
    source = open_source(spec, access.limits, access.registry_client)
    try:
        resolved = source.resolve(parse_platform(platform) if platform else None)
    finally:
        source.close()
    return results.rendering(resolved.manifest_digest, document_rendering(document_format, resolved)).document
