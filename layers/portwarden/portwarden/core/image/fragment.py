"""What reading one layer produces: compact entries, whiteouts, scanner hits and warnings.

A layer may hold hundreds of thousands of entries (and a hostile one a million, before the entry
limit stops it), so its entries are slotted objects, not pydantic models: about 100 bytes of object
plus the path, instead of the ~1.3 kB a validated model costs (docs/image-reading.md has the
measured figures). They become ``FileRecord``s only at the edge, when the squash builds the image's
final filesystem (or when a cached fragment is decoded: the squash would make each of them one).
File digests are kept as 32 raw bytes and shown as hex when asked for.
"""

from __future__ import annotations

import base64
import binascii
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import repeat
from operator import itemgetter
from typing import NamedTuple, cast

from portwarden.core.model.files import FileRecord, FileType, make_record


class ScanFinding(NamedTuple):
    """A content scanner's hit: which file, which line, which named pattern (never the text).

    A named tuple, like ``FileRecord``: made by the layer reader from values it produced, or decoded
    from a fragment and checked there (``decode_index``), so that reading cached layers loads no
    model library (``core.replay``)."""

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
        # Every field was checked by the tar parser and the layer reader.
        digest = self.digest_bytes
        return FileRecord(
            self.path,
            self.type,
            self.mode,
            self.uid,
            self.gid,
            self.size,
            None if digest is None else digest.hex(),
            self.link_target,
            self.layer_digest,
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


def as_records(records: Mapping[str, LayerRecord]) -> dict[str, FileRecord]:
    """``as_record`` of every value, keys kept: in one pass when all are ``LayerEntry``s (the squash
    of an image converts tens of thousands, and a few calls per entry were most of its time)."""
    kinds = set(map(type, records.values()))
    if kinds == {FileRecord}:  # a layer from the fragment cache
        return dict(cast("Mapping[str, FileRecord]", records))
    if kinds - {LayerEntry}:
        return {path: as_record(record) for path, record in records.items()}
    entries = cast("Iterable[LayerEntry]", records.values())

    built = [
        make_record(
            (
                entry.path,
                entry.type,
                entry.mode,
                entry.uid,
                entry.gid,
                entry.size,
                None if entry.digest_bytes is None else entry.digest_bytes.hex(),
                entry.link_target,
                entry.layer_digest,
            )
        )
        for entry in entries
    ]
    return dict(zip(records, built, strict=True))


# ---- the fragment cache's encoding --------------------------------------------------------------
# Entries travel as columns, one JSON array per attribute (paths, types, modes, uids, gids, sizes),
# the file digests as one base64 string of raw 32-byte digests with a mask saying which entries have
# one, and the few link targets as (position, target) pairs. A row per entry would cost a list object
# each way and a check per cell; columns are checked whole, at C speed where Python allows (the type
# of every cell of a column, its bounds), and a pydantic validation per entry would cost what the
# compact entries save. The cache is an edge, so every value is checked here as strictly as the tar
# parser checks it.

_DIGEST_SIZE = 32
_FILE_TYPES = {kind.value: kind for kind in FileType}


def encode_index(index: LayerIndex) -> dict[str, object]:
    records = list(index.records.values())
    digests = [r.digest_bytes if isinstance(r, LayerEntry) else _raw_digest(r.sha256) for r in records]
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
        "records": {
            "paths": [r.path for r in records],
            "types": [r.type.value for r in records],
            "modes": [r.mode for r in records],
            "uids": [r.uid for r in records],
            "gids": [r.gid for r in records],
            "sizes": [r.size for r in records],
            "digested": "".join("0" if d is None else "1" for d in digests),
            "digests": base64.b64encode(b"".join(d for d in digests if d is not None)).decode("ascii"),
            "links": [[i, r.link_target] for i, r in enumerate(records) if r.link_target is not None],
        },
    }


def _raw_digest(sha256: str | None) -> bytes | None:
    return None if sha256 is None else bytes.fromhex(sha256)


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} is not a non-negative integer")
    return value


def _finding(hit: object) -> ScanFinding:
    """A cached hit: ``[path, line, name]`` as ``encode_index`` writes it (or the object form)."""
    if isinstance(hit, dict) and set(hit) == {"path", "line", "name"}:
        hit = [hit["path"], hit["line"], hit["name"]]
    if not isinstance(hit, list) or len(hit) != 3:
        raise ValueError("a cached finding is not [path, line, name]")
    return ScanFinding(
        _string(hit[0], "a finding's path"),
        _count(hit[1], "a finding's line"),
        _string(hit[2], "a finding's name"),
    )


def _strings(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return tuple(_string(item, what) for item in value)


def _column(columns: dict[str, object], name: str, length: int | None) -> list[object]:
    column = columns.get(name)
    if not isinstance(column, list) or (length is not None and len(column) != length):
        raise ValueError(f"cached entry {name} are not a list of one item per entry")
    return column


def _counts(columns: dict[str, object], name: str, length: int, maximum: int | None = None) -> list[int]:
    """A column of non-negative integers (``bool`` excluded: JSON's true is not a number)."""
    column = _column(columns, name, length)
    if column and set(map(type, column)) != {int}:
        raise ValueError(f"cached entry {name} are not all integers")
    numbers = cast(list[int], column)
    if numbers and (min(numbers) < 0 or (maximum is not None and max(numbers) > maximum)):
        raise ValueError(f"cached entry {name} are not all in range")
    return numbers


def _all_absolute(paths: list[str]) -> bool:
    """Whether every path starts with "/" (their first characters taken at C speed: a generator of
    ``startswith`` calls was a tenth of decoding a fragment)."""
    try:
        return set(map(_first_character, paths)) == {"/"}
    except IndexError:  # an empty path
        return False


_first_character = itemgetter(0)


def _entries(columns: object, layer_digest: str) -> list[FileRecord]:
    """The entries of a cached fragment, checked column by column, as ``FileRecord``s: the squash
    makes one of each surviving entry anyway, and making it here spares a ``LayerEntry`` per entry
    (and holding both while the image is squashed)."""
    if not isinstance(columns, dict):
        raise ValueError("cached records are not an object of columns")
    paths = _column(columns, "paths", None)
    length = len(paths)
    if paths and (set(map(type, paths)) != {str} or not _all_absolute(cast(list[str], paths))):
        raise ValueError("a cached entry path is not an absolute path")
    try:
        types = [_FILE_TYPES[kind] for kind in _column(columns, "types", length)]  # type: ignore[index]
    except (KeyError, TypeError):
        raise ValueError("a cached entry type is not a file type") from None
    # No file-type bits in a mode: the type column says what an entry is.
    modes = _counts(columns, "modes", length, maximum=0o7777)
    uids = _counts(columns, "uids", length)
    gids = _counts(columns, "gids", length)
    sizes = _counts(columns, "sizes", length)
    mask = _string(columns.get("digested"), "the digest mask")
    if len(mask) != length or mask.strip("01"):
        raise ValueError("the cached digest mask is not one 0 or 1 per entry")
    try:
        raw = base64.b64decode(_string(columns.get("digests"), "the digests"), validate=True)
    except binascii.Error:
        raise ValueError("the cached digests are not base64") from None
    if len(raw) != _DIGEST_SIZE * mask.count("1"):
        raise ValueError("the cached digests are not one 32-byte sha256 per entry that has one")
    hexes = raw.hex()  # one conversion, cut into the digests of the entries that have one
    step = 2 * _DIGEST_SIZE
    next_digest = iter([hexes[i : i + step] for i in range(0, len(hexes), step)]).__next__
    digests = [None if flag == "0" else next_digest() for flag in mask]
    links: list[str | None] = [None] * length
    for pair in _column(columns, "links", None):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError("a cached link target is not a (position, target) pair")
        position = _count(pair[0], "a link target's position")
        if position >= length:
            raise ValueError("a cached link target belongs to no entry")
        links[position] = _string(pair[1], "an entry link target")
    # Nine columns of one length (checked above), zipped into records at C speed.
    columns_in_order = (paths, types, modes, uids, gids, sizes, digests, links, repeat(layer_digest, length))
    return list(map(make_record, zip(*columns_in_order, strict=True)))


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
        findings[_string(name, "a scanner name")] = tuple(map(_finding, hits))
    rows = document.get("records")
    records: dict[str, LayerRecord] = {record.path: record for record in _entries(rows, digest)}
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
