"""What reading one layer produces: compact entries, whiteouts, scanner hits and warnings.

A layer may hold hundreds of thousands of entries (and a hostile one a million, before the entry
limit stops it), so its entries are slotted objects, not pydantic models: about 100 bytes of object
plus the path, instead of the ~1.3 kB a validated model costs (docs/image-reading.md has the
measured figures). They become ``FileRecord``s only at the edge, when the squash builds the image's
final filesystem. File digests are kept as 32 raw bytes and shown as hex when asked for.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field, replace

from portwarden.core.model.base import ValueObject, construct_complete
from portwarden.core.model.files import FileRecord, FileType

# Every FileRecord built from an entry sets all its fields: one shared set instead of one each
# (pydantic keeps a per-instance set of the fields that were set, ~700 bytes for nine names). It
# already holds every name, so nothing that adds to it changes it; model_copy copies it first.
_ALL_RECORD_FIELDS = set(FileRecord.model_fields)


class ScanFinding(ValueObject):
    """A content scanner's hit: which file, which line, which named pattern (never the text)."""

    path: str
    line: int
    name: str


class LayerEntry:
    """One entry of a layer, as compact as Python allows (the attributes of a FileRecord)."""

    __slots__ = ("digest_bytes", "gid", "layer_digest", "link_target", "mode", "path", "size", "type", "uid")

    def __init__(
        self,
        path: str,
        type: FileType,
        mode: int,
        uid: int,
        gid: int,
        size: int,
        digest_bytes: bytes | None,
        link_target: str | None,
        layer_digest: str | None,
    ) -> None:
        self.path = path
        self.type = type
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.digest_bytes = digest_bytes
        self.link_target = link_target
        self.layer_digest = layer_digest

    @property
    def sha256(self) -> str | None:
        return None if self.digest_bytes is None else self.digest_bytes.hex()

    @property
    def mode_octal(self) -> str:
        return f"{stat.S_IMODE(self.mode):04o}"

    def to_record(self) -> FileRecord:
        # Not validated again: every field was checked by the tar parser and the layer reader.
        return construct_complete(
            FileRecord,
            {
                "path": self.path,
                "type": self.type,
                "mode": self.mode,
                "uid": self.uid,
                "gid": self.gid,
                "size": self.size,
                "sha256": self.sha256,
                "link_target": self.link_target,
                "layer_digest": self.layer_digest,
            },
            _ALL_RECORD_FIELDS,
        )

    def __repr__(self) -> str:
        return f"LayerEntry({self.path!r}, {self.type.value}, size={self.size}, sha256={self.sha256})"


LayerRecord = LayerEntry | FileRecord


@dataclass(frozen=True, slots=True)
class LayerIndex:
    """What one layer contributes: its entries, its whiteouts, and what went wrong on the way.

    ``records`` holds ``LayerEntry``s as the reader makes them (``FileRecord``s are accepted too,
    for layers built by hand).
    """

    digest: str
    diff_id: str
    media_type: str
    compressed_size: int
    uncompressed_size: int
    records: dict[str, LayerRecord]
    whiteouts: tuple[str, ...] = ()
    opaque_dirs: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # Scanner name → hits in this layer's files (the squash keeps those whose file survives).
    findings: dict[str, tuple[ScanFinding, ...]] = field(default_factory=dict)
    # How many entries the layer had, once ``records`` is released (see ``without_records``).
    released_entry_count: int | None = None

    @property
    def entry_count(self) -> int:
        return len(self.records) if self.released_entry_count is None else self.released_entry_count

    def with_warning(self, warning: str) -> LayerIndex:
        return replace(self, warnings=(*self.warnings, warning))

    def without_records(self) -> LayerIndex:
        """This index without its entries: once squashed, they are the image's records' only
        duplicate, and on a layer of many files they are worth releasing."""
        return replace(self, records={}, released_entry_count=self.entry_count)


def as_record(record: LayerRecord) -> FileRecord:
    return record.to_record() if isinstance(record, LayerEntry) else record


# ---- the fragment cache's encoding --------------------------------------------------------------
# Entries travel as JSON arrays (path, type, mode, uid, gid, size, sha256, link target): a
# ``model_dump`` of a large layer would build a dict per entry, and a pydantic validation of it on
# the way back would cost what the compact entries save. The cache is an edge, so every value is
# checked here as strictly as the tar parser checks it.


def encode_index(index: LayerIndex) -> dict[str, object]:
    return {
        "digest": index.digest,
        "diff_id": index.diff_id,
        "media_type": index.media_type,
        "compressed_size": index.compressed_size,
        "uncompressed_size": index.uncompressed_size,
        "whiteouts": list(index.whiteouts),
        "opaque_dirs": list(index.opaque_dirs),
        "warnings": list(index.warnings),
        "findings": {
            name: [[hit.path, hit.line, hit.name] for hit in hits] for name, hits in index.findings.items()
        },
        "records": [
            [r.path, r.type.value, r.mode, r.uid, r.gid, r.size, r.sha256, r.link_target]
            for r in index.records.values()
        ],
    }


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} is not a non-negative integer")
    return value


def _strings(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return tuple(_string(item, what) for item in value)


def _entry(row: object, layer_digest: str) -> LayerEntry:
    if not isinstance(row, list) or len(row) != 8:
        raise ValueError("a cached entry is not an 8-item array")
    path, kind, mode, uid, gid, size, sha, link = row
    path = _string(path, "an entry path")
    if not path.startswith("/"):
        raise ValueError("a cached entry path is not absolute")
    mode = _count(mode, "an entry mode")
    if mode > 0o7777:
        raise ValueError("a cached entry mode has file-type bits")
    digest = None
    if sha is not None:
        text = _string(sha, "an entry sha256")
        if len(text) != 64 or text != text.lower():
            raise ValueError("a cached entry sha256 is not 64 lowercase hex digits")
        digest = bytes.fromhex(text)
    return LayerEntry(
        path,
        FileType(_string(kind, "an entry type")),
        mode,
        _count(uid, "an entry uid"),
        _count(gid, "an entry gid"),
        _count(size, "an entry size"),
        digest,
        None if link is None else _string(link, "an entry link target"),
        layer_digest,
    )


def decode_index(document: object) -> LayerIndex:
    """A LayerIndex from ``encode_index``'s output; ValueError when anything is off."""
    if not isinstance(document, dict):
        raise ValueError("a cached layer index is not an object")
    digest = _string(document.get("digest"), "the layer digest")
    findings: dict[str, tuple[ScanFinding, ...]] = {}
    raw_findings = document.get("findings")
    if not isinstance(raw_findings, dict):
        raise ValueError("cached findings are not an object")
    for name, hits in raw_findings.items():
        if not isinstance(hits, list):
            raise ValueError("cached findings are not lists")
        findings[name] = tuple(
            ScanFinding.model_validate({"path": hit[0], "line": hit[1], "name": hit[2]})
            if isinstance(hit, list) and len(hit) == 3
            else ScanFinding.model_validate(hit)
            for hit in hits
        )
    rows = document.get("records")
    if not isinstance(rows, list):
        raise ValueError("cached records are not a list")
    records: dict[str, LayerRecord] = {}
    for row in rows:
        entry = _entry(row, digest)
        records[entry.path] = entry
    return LayerIndex(
        digest=digest,
        diff_id=_string(document.get("diff_id"), "the diff_id"),
        media_type=_string(document.get("media_type"), "the media type"),
        compressed_size=_count(document.get("compressed_size"), "the compressed size"),
        uncompressed_size=_count(document.get("uncompressed_size"), "the uncompressed size"),
        records=records,
        whiteouts=_strings(document.get("whiteouts"), "whiteouts"),
        opaque_dirs=_strings(document.get("opaque_dirs"), "opaque directories"),
        warnings=_strings(document.get("warnings"), "warnings"),
        findings=findings,
    )
