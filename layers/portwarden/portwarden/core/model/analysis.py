"""The result of analyzing one image: the native SBOM document (docs/sbom-format.md)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import Field

from portwarden.core.model.base import ValueObject, construct_all, construct_complete
from portwarden.core.model.distro import Distro
from portwarden.core.model.files import INVENTORY_FLAGS, FileRecord, inventory_flags
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
            "mode": sys.intern(record.mode_octal),  # a few distinct values over many files
            "uid": record.uid,
            "gid": record.gid,
            "size": record.size,
            "sha256": record.sha256,
            "link_target": record.link_target,
            "layer_digest": record.layer_digest,
        }

    @classmethod
    def from_record(cls, record: FileRecord) -> FileEntry:
        return _construct(cls, cls.record_fields(record))


_FIELD_SETS: dict[type[ValueObject], set[str]] = {}
_Entry = TypeVar("_Entry", bound=ValueObject)


def _construct(cls: type[_Entry], fields: dict[str, Any]) -> _Entry:
    """A file entry from a FileRecord's already-validated values, without validating them again.

    Images hold hundreds of thousands of files: validation would double the cost of building the
    inventory, and pydantic's per-instance set of set fields (~700 bytes) would dominate its memory.
    Every field is set, so all entries of a class share one set (model_copy copies it first).
    """
    shared = _FIELD_SETS.get(cls)
    if shared is None:
        shared = _FIELD_SETS[cls] = set(cls.model_fields)
    return construct_complete(cls, fields, shared)


class AnalyzedFile(FileEntry):
    """A file of the analysis inventory, with the flags the files gate and reports look at."""

    setuid: bool = False
    setgid: bool = False
    world_writable: bool = False

    @classmethod
    def from_record(cls, record: FileRecord) -> AnalyzedFile:
        # An image has hundreds of thousands of files but few distinct (type, mode) pairs: what they
        # imply (the type's name, the octal mode, the three flags) is worked out once per pair.
        type_name, mode_octal, setuid, setgid, world_writable = inventory_flags(record.type, record.mode)
        fields_set = _FIELD_SETS.get(cls)
        if fields_set is None:
            fields_set = _FIELD_SETS[cls] = set(cls.model_fields)
        return construct_complete(
            cls,
            {
                "path": record.path,
                "type": type_name,
                "mode": mode_octal,
                "uid": record.uid,
                "gid": record.gid,
                "size": record.size,
                "sha256": record.sha256,
                "link_target": record.link_target,
                "layer_digest": record.layer_digest,
                "setuid": setuid,
                "setgid": setgid,
                "world_writable": world_writable,
            },
            fields_set,
        )

    @classmethod
    def from_records(cls, records: Iterable[FileRecord]) -> list[AnalyzedFile]:
        """``from_record`` of each record, in one pass: the inventory of an image is tens of
        thousands of entries, and a call per entry (and a dictionary built key by key) was most of
        the time it took. Each entry's values are its record's, unpacked (a FileRecord's fields are
        this model's first nine, in the same order, and serialization follows that order), and
        what its (type, mode) pair implies."""
        fields_set = _FIELD_SETS.get(cls)
        if fields_set is None:
            fields_set = _FIELD_SETS[cls] = set(cls.model_fields)
        known = INVENTORY_FLAGS.get
        # One plain loop, a dictionary display per entry: a few tenths of a microsecond an entry.
        rows: list[dict[str, Any]] = []
        append = rows.append
        for path, kind, mode, uid, gid, size, sha256, link_target, layer_digest in records:
            implied = known((kind, mode))
            if implied is None:
                implied = inventory_flags(kind, mode)
            type_name, mode_octal, setuid, setgid, world_writable = implied
            append(
                {
                    "path": path,
                    "type": type_name,
                    "mode": mode_octal,
                    "uid": uid,
                    "gid": gid,
                    "size": size,
                    "sha256": sha256,
                    "link_target": link_target,
                    "layer_digest": layer_digest,
                    "setuid": setuid,
                    "setgid": setgid,
                    "world_writable": world_writable,
                }
            )
        return construct_all(cls, rows, fields_set)


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
