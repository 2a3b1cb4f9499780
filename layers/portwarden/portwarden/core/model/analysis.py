"""The result of analyzing one image: the native SBOM document (docs/sbom-format.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from portwarden.core.model.base import ValueObject
from portwarden.core.model.distro import Distro
from portwarden.core.model.files import FileRecord, FileType
from portwarden.core.model.package import Package


class AnalysisSource(ValueObject):
    type: str
    reference: str | None = None
    location: str
    manifest_digest: str
    config_digest: str
    index_digest: str | None = None
    platform: str


class FileEntry(ValueObject):
    """A file as users see it: ``mode`` as an octal string with setuid/setgid bits (``4755``)."""

    path: str
    type: str
    mode: str
    uid: int
    gid: int
    size: int
    sha256: str | None = None
    link_target: str | None = None
    layer_digest: str | None = None

    @classmethod
    def record_fields(cls, record: FileRecord) -> dict[str, Any]:
        return {
            "path": record.path,
            "type": record.type.value,
            "mode": record.mode_octal,
            "uid": record.uid,
            "gid": record.gid,
            "size": record.size,
            "sha256": record.sha256,
            "link_target": record.link_target,
            "layer_digest": record.layer_digest,
        }

    @classmethod
    def from_record(cls, record: FileRecord) -> FileEntry:
        return cls(**cls.record_fields(record))


class AnalyzedFile(FileEntry):
    """A file of the analysis inventory, with the flags the files gate and reports look at."""

    setuid: bool = False
    setgid: bool = False
    world_writable: bool = False

    @classmethod
    def from_record(cls, record: FileRecord) -> AnalyzedFile:
        is_dir = record.type == FileType.DIRECTORY
        return cls(
            **cls.record_fields(record),
            setuid=record.is_setuid and not is_dir,
            setgid=record.is_setgid and not is_dir,
            world_writable=record.is_world_writable,
        )


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
