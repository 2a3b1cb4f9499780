"""Streaming layer reader.

A layer is read exactly once, front to back, and never unpacked to disk nor executed. One thread
pulls the compressed stream, verifies its digest and inflates it (zlib and zstd release the GIL);
the calling thread parses the tar stream, hashes the uncompressed stream (the diff_id) and every
regular file, and keeps the contents that analyzers asked for. Every entry becomes a FileRecord;
whiteouts and opaque-directory markers are kept aside for the squash.

Hostile entries never get further than this module: names that climb out of the root, absolute
names and over-long paths are skipped with a warning; device nodes and fifos are recorded (they are
facts about the image) with a warning; duplicates keep the last entry, as tar extraction would;
corrupt or truncated compression, decompression bombs and entry floods stop the layer with an error.
"""

from __future__ import annotations

import hashlib
import queue
import re
import stat
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, cast

import zstandard

from portwarden.core.errors import ImageSourceError, LimitExceededError, UnsafeContentError
from portwarden.core.image import paths
from portwarden.core.image.content import ContentStore
from portwarden.core.image.digest import VerifyingReader
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.model.base import ValueObject
from portwarden.core.model.files import FileRecord, FileType

READ_CHUNK = 1 << 20
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class CapturePolicy:
    """Which file contents to keep while streaming: globs over absolute paths, and a size cap."""

    def __init__(self, patterns: tuple[str, ...] = (), max_file_bytes: int = 256 * 1024 * 1024) -> None:
        self.patterns = tuple(sorted(set(patterns)))
        self.max_file_bytes = max_file_bytes
        regexes = [paths.glob_to_regex(p).pattern for p in self.patterns]
        self._regex = re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None

    def wants(self, path: str) -> bool:
        return self._regex is not None and self._regex.match(path) is not None

    @property
    def fingerprint(self) -> str:
        """Stable identity of the policy, part of layer-cache keys."""
        text = "\n".join(self.patterns) + f"\n{self.max_file_bytes}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class ScanFinding(ValueObject):
    """A content scanner's hit: which file, which line, which named pattern (never the text)."""

    path: str
    line: int
    name: str


class ContentScanner(Protocol):
    """Looks at the content of small regular files as they stream by (secrets, content search)."""

    name: str
    max_file_bytes: int

    def scan(self, path: str, data: bytes) -> list[tuple[int, str]]:
        """(line number, pattern name) for every hit."""
        ...

    @property
    def fingerprint(self) -> str: ...


class LayerIndex(ValueObject):
    """What one layer contributes: its records, its whiteouts, and what went wrong on the way."""

    digest: str
    diff_id: str
    media_type: str
    compressed_size: int
    uncompressed_size: int
    records: dict[str, FileRecord]
    whiteouts: tuple[str, ...] = ()
    opaque_dirs: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # Scanner name → hits in this layer's files (the squash keeps those whose file survives).
    findings: dict[str, tuple[ScanFinding, ...]] = {}


class _Inflater:
    """Decompresses a raw stream in a background thread into a bounded queue of chunks.

    Also the place where decompression bombs are caught: the ratio of inflated to compressed bytes,
    and the absolute inflated size, are checked as the data is produced.
    """

    _END = b""

    def __init__(self, raw: VerifyingReader, what: str, limits: SafetyLimits) -> None:
        self._raw = raw
        self._what = what
        self._limits = limits
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=8)
        self._buffer = memoryview(b"")
        self._done = False
        self._stop = threading.Event()
        self.inflated = 0
        head = raw.read(4)
        self._head = head
        if head.startswith(GZIP_MAGIC):
            self.compression = "gzip"
        elif head.startswith(ZSTD_MAGIC):
            self.compression = "zstd"
        else:
            self.compression = "none"
        self._thread = threading.Thread(target=self._run, name=f"inflate-{what[:19]}", daemon=True)
        self._thread.start()

    # -- producer ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            producer = {"gzip": self._gunzip, "zstd": self._unzstd, "none": self._copy}[self.compression]
            for chunk in producer():
                self.inflated += len(chunk)
                self._check_bomb()
                if not self._put(chunk):
                    return
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _check_bomb(self) -> None:
        limits = self._limits
        if self.inflated > limits.max_layer_uncompressed_bytes:
            raise LimitExceededError(
                f"layer {self._what} inflates past {limits.max_layer_uncompressed_bytes} bytes "
                "(max_layer_uncompressed_bytes)"
            )
        compressed = max(self._raw.bytes_read, 1)
        if (
            self.compression != "none"
            and self.inflated > limits.compression_ratio_grace_bytes
            and self.inflated / compressed > limits.max_compression_ratio
        ):
            raise LimitExceededError(
                f"layer {self._what} looks like a decompression bomb: {self.inflated} bytes from "
                f"{compressed} compressed (ratio above max_compression_ratio={limits.max_compression_ratio})"
            )

    def _raw_chunks(self) -> Iterator[bytes]:
        if self._head:
            yield self._head
        while True:
            chunk = self._raw.read(READ_CHUNK)
            if not chunk:
                return
            yield chunk

    def _copy(self) -> Iterator[bytes]:
        yield from self._raw_chunks()

    def _gunzip(self) -> Iterator[bytes]:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        member_started = False
        for chunk in self._raw_chunks():
            data = chunk
            while data:
                if inflater.eof:
                    # Concatenated gzip members are one stream (RFC 1952); trailing zero padding is not.
                    if not data.strip(b"\x00"):
                        break
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                member_started = True
                try:
                    out = inflater.decompress(data, READ_CHUNK)
                    while True:
                        if out:
                            yield out
                        if inflater.unconsumed_tail:
                            out = inflater.decompress(inflater.unconsumed_tail, READ_CHUNK)
                        elif len(out) == READ_CHUNK and not inflater.eof:
                            # The output buffer filled exactly: zlib may still hold inflated bytes.
                            out = inflater.decompress(b"", READ_CHUNK)
                        else:
                            break
                except zlib.error as exc:
                    raise UnsafeContentError(f"layer {self._what}: corrupt gzip stream ({exc})") from exc
                data = inflater.unused_data if inflater.eof else b""
        if member_started and not inflater.eof:
            raise UnsafeContentError(f"layer {self._what}: truncated gzip stream")

    def _unzstd(self) -> Iterator[bytes]:
        decompressor = zstandard.ZstdDecompressor()
        try:
            reader = decompressor.stream_reader(
                cast(IO[bytes], _ChunkFile(self._raw_chunks())), read_across_frames=True
            )
            while True:
                out = reader.read(READ_CHUNK)
                if not out:
                    return
                yield out
        except zstandard.ZstdError as exc:
            raise UnsafeContentError(f"layer {self._what}: corrupt zstd stream ({exc})") from exc

    # -- consumer (file-like for tarfile) -----------------------------------------------------------
    def read(self, size: int = -1) -> bytes:
        if not self._buffer:
            if self._done:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if item == self._END:
                self._done = True
                return b""
            self._buffer = memoryview(item)
        if size < 0 or size >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer = memoryview(b"")
            return out
        out = bytes(self._buffer[:size])
        self._buffer = self._buffer[size:]
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _ChunkFile:
    """A minimal read() over an iterator of chunks (for zstandard's stream_reader)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        if not self._pending:
            self._pending = next(self._chunks, b"")
        if size < 0 or size >= len(self._pending):
            out, self._pending = self._pending, b""
            return out
        out, self._pending = self._pending[:size], self._pending[size:]
        return out


class _HashingReader:
    """Feeds tarfile and hashes everything it hands over: the sha256 of the tar stream is the diff_id."""

    def __init__(self, inner: _Inflater) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        if data:
            self.hash.update(data)
            self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(READ_CHUNK):
            pass


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
    inflater = _Inflater(verifying, digest, limits)
    hashing = _HashingReader(inflater)
    warnings = _Warnings(digest, limits.max_warnings)
    records: dict[str, FileRecord] = {}
    whiteouts: list[str] = []
    opaque: list[str] = []
    budget = _CaptureBudget(limits.max_captured_total_bytes)
    scanning = _Scanning(scanners)
    try:
        try:
            archive = tarfile.open(fileobj=hashing, mode="r|", bufsize=READ_CHUNK)  # type: ignore[call-overload]  # noqa: SIM115
        except tarfile.ReadError as exc:
            if hashing.count == 0:
                # An empty blob is a valid, empty layer for some builders.
                archive = None
            else:
                raise UnsafeContentError(f"layer {digest} is not a tar archive ({exc})") from exc
        if archive is not None:
            with archive:
                _read_entries(
                    archive,
                    digest,
                    capture,
                    contents,
                    limits,
                    warnings,
                    budget,
                    scanning,
                    records,
                    whiteouts,
                    opaque,
                )
        # Past the end-of-archive marker there may be padding; the digests cover it, so read it all.
        hashing.drain()
        verifying.drain()
    except tarfile.TarError as exc:
        raise UnsafeContentError(f"layer {digest}: corrupt or truncated tar stream ({exc})") from exc
    except (EOFError, zlib.error) as exc:
        raise UnsafeContentError(f"layer {digest}: truncated stream ({exc})") from exc
    finally:
        inflater.close()
    diff_id = f"sha256:{hashing.hash.hexdigest()}"
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise ImageSourceError(
            f"layer {digest} unpacks to {diff_id}, but the image config lists diff_id {expected_diff_id}"
        )
    return LayerIndex(
        digest=digest,
        diff_id=diff_id,
        media_type=media_type,
        compressed_size=verifying.bytes_read,
        uncompressed_size=hashing.count,
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
        if b"\0" in data[:8192]:
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

    def close(self) -> None:
        self._raw.close()


class _CaptureBudget:
    def __init__(self, total: int) -> None:
        self.remaining = total


def _read_entries(
    archive: tarfile.TarFile,
    digest: str,
    capture: CapturePolicy,
    contents: ContentStore,
    limits: SafetyLimits,
    warnings: _Warnings,
    budget: _CaptureBudget,
    scanning: _Scanning,
    records: dict[str, FileRecord],
    whiteouts: list[str],
    opaque: list[str],
) -> None:
    count = 0
    for member in archive:
        count += 1
        if count > limits.max_entries_per_layer:
            raise LimitExceededError(
                f"layer {digest} has more than {limits.max_entries_per_layer} entries (max_entries_per_layer)"
            )
        name = member.name
        if len(name) > limits.max_path_length:
            warnings.add(f"skipped an entry whose path is {len(name)} characters long (max_path_length)")
            continue
        if name.startswith("/"):
            warnings.add(f"skipped entry with an absolute name {name[:200]!r}")
            continue
        if paths.escapes_root(name):
            warnings.add(f"skipped entry {name[:200]!r}: it climbs out of the image root")
            continue
        path = paths.normalize(name)
        base = path.rsplit("/", 1)[1]
        if base.startswith(WHITEOUT_PREFIX):
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
        if file_type in (FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE, FileType.FIFO):
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
            records[path] = _regular_file(
                archive, member, path, digest, capture, contents, warnings, budget, limits, scanning
            )
        else:
            records[path] = _record(member, path, file_type, digest)


def _record(
    member: tarfile.TarInfo,
    path: str,
    file_type: FileType,
    digest: str,
    *,
    size: int = 0,
    sha256: str | None = None,
    link_target: str | None = None,
) -> FileRecord:
    # model_construct: every field was validated by the tar parser and this module; this is the hot path.
    return FileRecord.model_construct(
        path=path,
        type=file_type,
        mode=stat.S_IMODE(member.mode),
        uid=member.uid,
        gid=member.gid,
        size=size,
        sha256=sha256,
        link_target=link_target,
        layer_digest=digest,
    )


def _hardlink(
    member: tarfile.TarInfo,
    path: str,
    digest: str,
    records: dict[str, FileRecord],
    warnings: _Warnings,
) -> FileRecord:
    if member.linkname.startswith("/") or paths.escapes_root(member.linkname):
        warnings.add(f"hard link {path} -> {member.linkname[:200]} escapes the image root (content dropped)")
        return _record(member, path, FileType.HARDLINK, digest, link_target=None)
    target_path = paths.normalize(member.linkname)
    target = records.get(target_path)
    if target is not None and target.type in (FileType.FILE, FileType.HARDLINK):
        return _record(
            member,
            path,
            FileType.HARDLINK,
            digest,
            size=target.size,
            sha256=target.sha256,
            link_target=target_path,
        )
    # The target may come from a lower layer; the squash resolves it.
    return _record(member, path, FileType.HARDLINK, digest, link_target=target_path)


def _regular_file(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    path: str,
    digest: str,
    capture: CapturePolicy,
    contents: ContentStore,
    warnings: _Warnings,
    budget: _CaptureBudget,
    limits: SafetyLimits,
    scanning: _Scanning,
) -> FileRecord:
    handle = archive.extractfile(member)
    hasher = hashlib.sha256()
    keep = capture.wants(path)
    if keep and member.size > min(capture.max_file_bytes, limits.max_captured_file_bytes):
        warnings.add(
            f"{path} is {member.size} bytes, over the capture limit: analyzers will not see its content"
        )
        keep = False
    if keep and member.size > budget.remaining:
        warnings.add(f"{path}: the total capture budget (max_captured_total_bytes) is spent")
        keep = False
    if handle is None:  # pragma: no cover - tarfile returns a handle for every regular file
        return _record(member, path, FileType.FILE, digest, size=member.size)
    if scanning.wants(member.size):
        data = handle.read()
        scanning.scan(path, data)
        sha = hashlib.sha256(data).hexdigest()
        if keep:
            budget.remaining -= member.size
            contents.put_bytes(sha, data)
        return _record(member, path, FileType.FILE, digest, size=member.size, sha256=sha)
    if not keep:
        while True:
            chunk = handle.read(READ_CHUNK)
            if not chunk:
                break
            hasher.update(chunk)
        return _record(member, path, FileType.FILE, digest, size=member.size, sha256=hasher.hexdigest())
    budget.remaining -= member.size
    if member.size <= READ_CHUNK:
        data = handle.read()
        sha = hashlib.sha256(data).hexdigest()
        contents.put_bytes(sha, data)
        return _record(member, path, FileType.FILE, digest, size=member.size, sha256=sha)
    spool = contents.new_spool_file()
    with spool.open("wb") as out:
        while True:
            chunk = handle.read(READ_CHUNK)
            if not chunk:
                break
            hasher.update(chunk)
            out.write(chunk)
    sha = hasher.hexdigest()
    contents.put_file(sha, Path(spool))
    return _record(member, path, FileType.FILE, digest, size=member.size, sha256=sha)


def summarize(index: LayerIndex) -> dict[str, Any]:
    return {
        "digest": index.digest,
        "diff_id": index.diff_id,
        "entries": len(index.records),
        "whiteouts": len(index.whiteouts),
        "opaque_dirs": len(index.opaque_dirs),
        "warnings": len(index.warnings),
    }
