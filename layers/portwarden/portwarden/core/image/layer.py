"""Reading one layer: the orchestration of a streaming read.

A layer is read exactly once, front to back, and never unpacked to disk nor executed. The
``Inflater`` (inflate.py) decompresses and hashes on its own thread; this module's thread parses
the tar stream (tarstream.py), hashes every regular file, keeps the contents the ``CapturePolicy``
asks for (capture.py) and runs the content scanners. Every entry becomes a compact ``LayerEntry``
(fragment.py); whiteouts and opaque-directory markers are kept aside for the squash.

Hostile entries never get further than this module: names that climb out of the root, absolute
names and over-long paths are skipped with a warning; device nodes and fifos are recorded (they are
facts about the image) with a warning; duplicates keep the last entry, as tar extraction would;
corrupt or truncated compression, decompression bombs and entry floods stop the layer with an error.
"""

from __future__ import annotations

import hashlib
import stat
import tarfile
from collections.abc import Callable, Sequence
from typing import BinaryIO

from portwarden.core.errors import ImageSourceError, LimitExceededError, UnsafeContentError
from portwarden.core.image import paths
from portwarden.core.image.capture import (
    CapturePolicy,
    ConditionalGlob,
    ContentCondition,
    ContentScanner,
)
from portwarden.core.image.content import ContentStore
from portwarden.core.image.digest import VerifyingReader, read_into
from portwarden.core.image.fragment import LayerEntry, LayerIndex, LayerRecord, ScanFinding
from portwarden.core.image.inflate import Inflater
from portwarden.core.image.inflaters import INFLATE_ERRORS
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.image.tarstream import HeaderError, TarFormatError, TarMember, TarStream
from portwarden.core.model.files import FileType

READ_CHUNK = 1 << 20
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_WHITEOUT_COMPONENT = "/" + WHITEOUT_PREFIX
_NODE_TYPES = frozenset({FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE, FileType.FIFO})
_TRUNCATED: tuple[type[BaseException], ...] = (EOFError, *INFLATE_ERRORS)

# The layer-reading vocabulary, importable from here as from its own modules.
__all__ = [
    "READ_CHUNK",
    "CapturePolicy",
    "ConditionalGlob",
    "ContentCondition",
    "ContentScanner",
    "LayerEntry",
    "LayerIndex",
    "ScanFinding",
    "read_layer",
]


_TAR_TYPES: dict[bytes, FileType] = {
    tarfile.REGTYPE: FileType.FILE,
    tarfile.AREGTYPE: FileType.FILE,
    tarfile.CONTTYPE: FileType.FILE,
    tarfile.DIRTYPE: FileType.DIRECTORY,
    tarfile.SYMTYPE: FileType.SYMLINK,
    tarfile.LNKTYPE: FileType.HARDLINK,
    tarfile.CHRTYPE: FileType.CHAR_DEVICE,
    tarfile.BLKTYPE: FileType.BLOCK_DEVICE,
    tarfile.FIFOTYPE: FileType.FIFO,
}


class _Warnings:
    def __init__(self, layer: str, limit: int) -> None:
        self.items: list[str] = []
        self._layer = layer
        self._limit = limit
        self._dropped = 0

    def add(self, message: str) -> None:
        if len(self.items) < self._limit:
            self.items.append(f"layer {self._layer[:19]}: {message}")
        else:
            self._dropped += 1

    def result(self) -> tuple[str, ...]:
        if self._dropped:
            return (*self.items, f"layer {self._layer[:19]}: {self._dropped} more warnings not shown")
        return tuple(self.items)


def read_layer(
    raw: BinaryIO,
    *,
    digest: str,
    size: int | None,
    media_type: str,
    capture: CapturePolicy,
    contents: ContentStore,
    limits: SafetyLimits,
    expected_diff_id: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    scanners: Sequence[ContentScanner] = (),
) -> LayerIndex:
    """Read one layer blob into a LayerIndex, verifying its digest (and diff_id when given)."""
    verifying = VerifyingReader(_ProgressReader(raw, on_progress), digest, size, what=f"layer {digest}")
    inflater = Inflater(verifying, digest, limits)
    stream = TarStream(inflater)
    warnings = _Warnings(digest, limits.max_warnings)
    records: dict[str, LayerRecord] = {}
    whiteouts: list[str] = []
    opaque: list[str] = []
    budget = _CaptureBudget(limits.max_captured_total_bytes)
    scanning = _Scanning(scanners)
    try:
        _read_entries(
            stream, digest, capture, contents, limits, warnings, budget, scanning, records, whiteouts, opaque
        )
        # Past the end-of-archive marker there may be padding; the digests cover it, so read it all.
        stream.drain()
        verifying.drain()
        # Drained to the end: every byte the inflater produced has been hashed.
        diff_id = inflater.diff_id()
    except HeaderError as exc:  # raised only for the first header: later ones end the archive
        raise UnsafeContentError(f"layer {digest} is not a tar archive ({exc})") from exc
    except TarFormatError as exc:
        raise UnsafeContentError(f"layer {digest}: corrupt or truncated tar stream ({exc})") from exc
    except _TRUNCATED as exc:
        raise UnsafeContentError(f"layer {digest}: truncated stream ({exc})") from exc
    finally:
        inflater.close()
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise ImageSourceError(
            f"layer {digest} unpacks to {diff_id}, but the image config lists diff_id {expected_diff_id}"
        )
    return LayerIndex(
        digest=digest,
        diff_id=diff_id,
        media_type=media_type,
        compressed_size=verifying.bytes_read,
        uncompressed_size=stream.offset,
        records=records,
        whiteouts=tuple(whiteouts),
        opaque_dirs=tuple(opaque),
        warnings=warnings.result(),
        findings=scanning.result(),
    )


class _Scanning:
    """Runs the content scanners on small files and collects their hits."""

    def __init__(self, scanners: Sequence[ContentScanner]) -> None:
        self.scanners = tuple(scanners)
        self.max_bytes = max((s.max_file_bytes for s in self.scanners), default=0)
        self.hits: dict[str, list[ScanFinding]] = {s.name: [] for s in self.scanners}

    def wants(self, size: int) -> bool:
        return 0 < size <= self.max_bytes

    def scan(self, path: str, data: bytes) -> None:
        if data.find(b"\0", 0, 8192) != -1:
            return  # binary content: the patterns are textual
        for scanner in self.scanners:
            if len(data) <= scanner.max_file_bytes:
                for line, name in scanner.scan(path, data):
                    self.hits[scanner.name].append(ScanFinding(path=path, line=line, name=name))

    def result(self) -> dict[str, tuple[ScanFinding, ...]]:
        return {name: tuple(hits) for name, hits in self.hits.items()}


class _ProgressReader:
    def __init__(self, raw: BinaryIO, on_progress: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_progress = on_progress

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data and self._on_progress is not None:
            self._on_progress(len(data))
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        readinto = getattr(self._raw, "readinto", None)
        if readinto is None:
            return read_into(self.read, buffer)
        count: int = readinto(buffer)
        if count and self._on_progress is not None:
            self._on_progress(count)
        return count

    def close(self) -> None:
        self._raw.close()


class _CaptureBudget:
    def __init__(self, total: int) -> None:
        self.remaining = total


def _read_entries(
    stream: TarStream,
    digest: str,
    capture: CapturePolicy,
    contents: ContentStore,
    limits: SafetyLimits,
    warnings: _Warnings,
    budget: _CaptureBudget,
    scanning: _Scanning,
    records: dict[str, LayerRecord],
    whiteouts: list[str],
    opaque: list[str],
) -> None:
    count = 0
    max_entries, max_path_length = limits.max_entries_per_layer, limits.max_path_length
    for member in stream:
        count += 1
        if count > max_entries:
            raise LimitExceededError(
                f"layer {digest} has more than {max_entries} entries (max_entries_per_layer)"
            )
        name = member.name
        if len(name) > max_path_length:
            warnings.add(f"skipped an entry whose path is {len(name)} characters long (max_path_length)")
            continue
        if name.startswith("/"):
            warnings.add(f"skipped entry with an absolute name {name[:200]!r}")
            continue
        if ".." in name and paths.escapes_root(name):  # only a ".." component climbs
            warnings.add(f"skipped entry {name[:200]!r}: it climbs out of the image root")
            continue
        path = "/" + name if _is_canonical_relative(name) else paths.normalize(name)
        # A whiteout's last component starts with ".wh.": the substring test spares the split.
        if _WHITEOUT_COMPONENT in path and (base := path.rsplit("/", 1)[1]).startswith(WHITEOUT_PREFIX):
            directory = paths.parent(path)
            if base == OPAQUE_MARKER:
                opaque.append(directory)
            else:
                hidden = base[len(WHITEOUT_PREFIX) :]
                if hidden in ("", ".", ".."):
                    warnings.add(f"skipped malformed whiteout {name[:200]!r}")
                else:
                    whiteouts.append(paths.normalize(f"{directory}/{hidden}"))
            continue
        if path == "/":
            records["/"] = _record(member, "/", FileType.DIRECTORY, digest)
            continue
        file_type = _TAR_TYPES.get(member.type)
        if file_type is None:
            warnings.add(f"skipped {path}: unsupported tar entry type {member.type!r}")
            continue
        if path in records:
            warnings.add(f"duplicate entry {path}: the last one wins")
        if file_type in _NODE_TYPES:
            warnings.add(f"{path} is a {file_type.value} node (recorded, never created)")
        if file_type == FileType.SYMLINK:
            target = member.linkname
            if len(target) > limits.max_link_target_length:
                warnings.add(f"skipped symlink {path}: target is too long")
                continue
            if not target.startswith("/") and paths.escapes_root(
                f"{paths.parent(path)}/{target}".lstrip("/")
            ):
                warnings.add(f"symlink {path} -> {target[:200]} points above the image root (confined to it)")
            records[path] = _record(member, path, file_type, digest, link_target=target)
        elif file_type == FileType.HARDLINK:
            records[path] = _hardlink(member, path, digest, records, warnings)
        elif file_type == FileType.FILE:
            if member.sparse:
                warnings.add(f"{path} is a sparse file: recorded without its content")
                records[path] = _record(member, path, FileType.FILE, digest, size=member.size)
            else:
                records[path] = _regular_file(
                    stream, member, path, digest, capture, contents, warnings, budget, limits, scanning
                )
        else:
            records[path] = _record(member, path, file_type, digest)


def _is_canonical_relative(name: str) -> bool:
    """Whether ``"/" + name`` is already ``paths.normalize(name)``: no empty, "." or ".." component
    (the usual entry name, checked with three substring searches instead of a split)."""
    return not (name.startswith(".") or "/." in name or "//" in name or name.endswith("/"))


def _record(
    member: TarMember,
    path: str,
    file_type: FileType,
    digest: str,
    *,
    size: int = 0,
    sha: bytes | None = None,
    link_target: str | None = None,
) -> LayerEntry:
    mode = stat.S_IMODE(member.mode)
    uid, gid = member.uid, member.gid
    # Equal numbers share one object (a mode like 0o644 would otherwise cost 28 bytes per entry);
    # only bounded ranges are shared, so a hostile layer cannot grow the tables.
    mode = _SHARED_NUMBERS.setdefault(mode, mode)
    if uid < _SHARED_ID_LIMIT:
        uid = _SHARED_NUMBERS.setdefault(uid, uid)
    if gid < _SHARED_ID_LIMIT:
        gid = _SHARED_NUMBERS.setdefault(gid, gid)
    return LayerEntry(path, file_type, mode, uid, gid, size, sha, link_target, digest)


_SHARED_NUMBERS: dict[int, int] = {}
_SHARED_ID_LIMIT = 1 << 16
# Empty files are common (and an entry flood is made of them): they share one digest object.
EMPTY_DIGEST = hashlib.sha256(b"").digest()


def _hardlink(
    member: TarMember,
    path: str,
    digest: str,
    records: dict[str, LayerRecord],
    warnings: _Warnings,
) -> LayerEntry:
    if member.linkname.startswith("/") or paths.escapes_root(member.linkname):
        warnings.add(f"hard link {path} -> {member.linkname[:200]} escapes the image root (content dropped)")
        return _record(member, path, FileType.HARDLINK, digest, link_target=None)
    target_path = paths.normalize(member.linkname)
    target = records.get(target_path)
    if isinstance(target, LayerEntry) and target.type in (FileType.FILE, FileType.HARDLINK):
        return _record(
            member,
            path,
            FileType.HARDLINK,
            digest,
            size=target.size,
            sha=target.digest_bytes,
            link_target=target_path,
        )
    # The target may come from a lower layer; the squash resolves it.
    return _record(member, path, FileType.HARDLINK, digest, link_target=target_path)


def _regular_file(
    stream: TarStream,
    member: TarMember,
    path: str,
    digest: str,
    capture: CapturePolicy,
    contents: ContentStore,
    warnings: _Warnings,
    budget: _CaptureBudget,
    limits: SafetyLimits,
    scanning: _Scanning,
) -> LayerEntry:
    handle = stream  # reads the current member's data, and nothing past it
    size = member.size
    keep = capture.wants(path)
    if size == 0:  # the common case of an entry flood: no read, no hash, one shared digest
        if keep and capture.condition_for(path) is None:  # no condition accepts empty content
            contents.put_bytes(EMPTY_DIGEST.hex(), b"")
        return _record(member, path, FileType.FILE, digest, size=0, sha=EMPTY_DIGEST)
    condition = capture.condition_for(path) if keep else None
    if keep and size > min(capture.max_file_bytes, limits.max_captured_file_bytes):
        if condition is None:  # a conditional match that is too large says nothing worth a warning
            warnings.add(
                f"{path} is {size} bytes, over the capture limit: analyzers will not see its content"
            )
        keep = False
    if keep and size > budget.remaining:
        warnings.add(f"{path}: the total capture budget (max_captured_total_bytes) is spent")
        keep = False
    scanned = scanning.wants(size)
    if scanned or (keep and size <= READ_CHUNK):
        data = handle.read()
        if scanned:
            scanning.scan(path, data)
        sha = hashlib.sha256(data).digest()
        if keep and (condition is None or condition.accepts(data)):
            budget.remaining -= size
            contents.put_bytes(sha.hex(), data)
        return _record(member, path, FileType.FILE, digest, size=size, sha=sha)
    if not keep:
        return _record(member, path, FileType.FILE, digest, size=size, sha=_hash_stream(handle))
    sha, kept = _spool(handle, condition, contents)
    if kept:
        budget.remaining -= size
    return _record(member, path, FileType.FILE, digest, size=size, sha=sha)


def _hash_stream(handle: TarStream, first: bytes = b"") -> bytes:
    """The sha256 (raw bytes) of ``first`` followed by the rest of ``handle``."""
    hasher = hashlib.sha256(first)
    while chunk := handle.read(READ_CHUNK):
        hasher.update(chunk)
    return hasher.digest()


def _spool(
    handle: TarStream, condition: ContentCondition | None, contents: ContentStore
) -> tuple[bytes, bool]:
    """Hash a large file and keep it in a spool file; with a condition, only if the content meets it.

    Returns the sha256 (raw bytes) and whether the content was kept.
    """
    hasher = hashlib.sha256()
    first = handle.read(READ_CHUNK)
    if condition is not None and not condition.accepts_head(first):
        return _hash_stream(handle, first), False
    found = condition is None or condition.holds_marker(first)
    previous = first
    spool = contents.new_spool_file()
    try:
        with spool.open("wb") as out:
            chunk = first
            while chunk:
                hasher.update(chunk)
                out.write(chunk)
                chunk = handle.read(READ_CHUNK)
                if chunk and not found and condition is not None:
                    found = condition.holds_marker(chunk) or condition.straddles(previous, chunk)
                previous = chunk
    except BaseException:
        spool.unlink(missing_ok=True)
        raise
    sha = hasher.digest()
    if not found:
        spool.unlink(missing_ok=True)
        return sha, False
    contents.put_file(sha.hex(), spool)
    return sha, True
