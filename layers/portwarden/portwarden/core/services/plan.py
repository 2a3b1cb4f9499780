"""What analyzing an image needs to know before reading it: the analyzers, what the layer reader
captures and scans for, and the cache keys they make; and the source an analysis names.

Kept apart from ``analyze`` (which loads the layer reader, the squash and the encoders) so that a
rescan answered from a stored document loads only this.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import portwarden
from portwarden.core.analyzers.base import Analyzer, AnalyzerOptions
from portwarden.core.analyzers.registry import ANALYZERS, analyzer_set_version
from portwarden.core.analyzers.secrets import content_search_scanner, secret_scanner
from portwarden.core.image import paths
from portwarden.core.image.cache import AnalysisCache
from portwarden.core.image.capture import CapturePolicy, ContentScanner
from portwarden.core.image.layer_cache import LayerCache
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.image.rendering import rendering_id
from portwarden.core.image.sources import ResolvedImage
from portwarden.core.model.analysis import AnalysisSource, ImageAnalysis

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.ports import BlobStore


@dataclass(frozen=True)
class AnalysisPlan:
    """What reading layers needs to know about the analyzers: captures, scanners, the cache key."""

    analyzers: tuple[Analyzer, ...]
    options: AnalyzerOptions
    capture: CapturePolicy
    scanners: tuple[ContentScanner, ...]
    fingerprint: str

    def layer_cache(self, blobs: BlobStore) -> LayerCache:
        return LayerCache(blobs, self.fingerprint)

    def result_cache(self, blobs: BlobStore, limits: SafetyLimits) -> AnalysisCache:
        """The image-level cache for analyses made with these analyzers, options and limits."""
        shape = {
            "fingerprint": self.fingerprint,
            "options": self.options.model_dump(mode="json"),
            "limits": limits.model_dump(mode="json"),
            "schema_version": ImageAnalysis.model_fields["schema_version"].default,
            "release": portwarden.__version__,
        }
        key = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]
        return AnalysisCache(blobs, key)


def plan_analysis(
    options: AnalyzerOptions | None = None,
    analyzers: tuple[Analyzer, ...] = ANALYZERS,
    limits: SafetyLimits | None = None,
) -> AnalysisPlan:
    options = options or AnalyzerOptions()
    limits = limits or SafetyLimits()
    scanners: list[ContentScanner] = [secret_scanner(options.secret_patterns)]
    content_scanner = content_search_scanner(options.content_patterns)
    if content_scanner is not None:
        scanners.append(content_scanner)
    patterns = {p for a in analyzers for p in a.capture_patterns} | {
        paths.normalize(p) for p in options.retrieve_files
    }
    capture = CapturePolicy(tuple(patterns), max_file_bytes=limits.max_captured_file_bytes)
    fingerprint = "-".join(
        [analyzer_set_version(analyzers), capture.fingerprint, *(s.fingerprint for s in scanners)]
    )
    return AnalysisPlan(analyzers, options, capture, tuple(scanners), fingerprint)


def analysis_source(resolved: ResolvedImage) -> AnalysisSource:
    return AnalysisSource(
        type=resolved.source_kind.value,
        reference=str(resolved.reference) if resolved.reference else None,
        location=resolved.location,
        manifest_digest=resolved.manifest_digest,
        config_digest=resolved.config_digest,
        index_digest=resolved.index_digest,
        platform=resolved.platform,
    )


def document_rendering(document_format: str, resolved: ResolvedImage) -> str:
    """The result cache's name for the ``document_format`` document of an analysis read from this source."""
    return rendering_id(document_format, analysis_source(resolved).model_dump_json().encode())
