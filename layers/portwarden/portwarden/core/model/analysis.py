"""The result of analyzing one image: the native SBOM document (docs/sbom-format.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from portwarden.core.model.base import ValueObject
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package


class AnalysisSource(ValueObject):
    type: str
    reference: str | None = None
    location: str
    manifest_digest: str
    config_digest: str
    index_digest: str | None = None
    platform: str


class AnalyzedFile(ValueObject):
    path: str
    type: str
    mode: str
    uid: int
    gid: int
    size: int
    sha256: str | None = None
    link_target: str | None = None
    layer_digest: str | None = None
    setuid: bool = False
    setgid: bool = False
    world_writable: bool = False


class SecretFinding(ValueObject):
    """Where a secret pattern matched: never the matched value."""

    path: str
    line: int
    name: str
    layer_digest: str | None = None


class ContentMatch(ValueObject):
    path: str
    line: int
    name: str
    layer_digest: str | None = None


class RetrievedFile(ValueObject):
    path: str
    sha256: str | None = None
    size: int
    truncated: bool = False
    content_b64: str


class AnalyzerRun(ValueObject):
    name: str
    version: int
    error: str | None = None


class ImageMetadata(ValueObject):
    config: dict[str, Any] = Field(default_factory=dict)
    history: tuple[dict[str, Any], ...] = ()
    dockerfile: str = ""
    manifest: dict[str, Any] = Field(default_factory=dict)
    layers: tuple[dict[str, Any], ...] = ()


class ImageAnalysis(ValueObject):
    """Everything Portwarden learned about one image (schema versioned for stored documents)."""

    schema_version: int = 1
    source: AnalysisSource
    distro: Distro | None = None
    packages: tuple[Package, ...] = ()
    files: tuple[AnalyzedFile, ...] = ()
    secrets: tuple[SecretFinding, ...] = ()
    content_matches: tuple[ContentMatch, ...] = ()
    retrieved_files: tuple[RetrievedFile, ...] = ()
    image: ImageMetadata = Field(default_factory=ImageMetadata)
    analyzers: tuple[AnalyzerRun, ...] = ()
    warnings: tuple[str, ...] = ()
    analyzed_at: str | None = None
