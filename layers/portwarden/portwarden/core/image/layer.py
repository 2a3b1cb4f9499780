"""Streaming layer reader.

A layer is read exactly once, front to back, and never unpacked to disk nor executed. One thread
pulls the compressed stream, verifies its digest, inflates it and hashes the inflated stream (the
diff_id); zlib, zstd and hashlib release the GIL, so this runs beside the calling thread, which
parses the tar stream, hashes every regular file and keeps the contents that analyzers asked for.
Every entry becomes a FileRecord; whiteouts and opaque-directory markers are kept aside for the
squash.

The tar parser is this module's own (``_TarStream``): it reads what tarfile reads (v7, ustar, GNU
long names, pax headers) and ends the archive where tarfile does, but takes file data straight from
the inflater's chunks, without tarfile's per-member objects and buffer copies, which dominate the
cost of layers made of many small files. Captures can be conditional (``ConditionalGlob``): a file
is kept only if its content meets a ``ContentCondition``, checked on the bytes as they stream by.

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
import struct
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
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
# The inflater works in larger units: each unit is a few hand-overs of the interpreter lock between
# it and the parsing thread, and every hand-over waits for the other thread's next pause.
INFLATE_CHUNK = 4 << 20


WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ContentCondition:
    """Keep a captured file only when its content looks right: it starts with one of ``prefixes``
    and holds one of ``markers`` somewhere. The reader sees every byte anyway, so checking costs a
    substring search, and files that cannot interest the analyzer are never stored."""

    def __init__(self, name: str, prefixes: tuple[bytes, ...], markers: tuple[bytes, ...]) -> None:
        if not prefixes or not markers or not all(markers):
            raise ValueError("a content condition needs prefixes and non-empty markers")
        self.name = name
        self.prefixes = prefixes
        self.markers = markers
        # A marker may straddle two chunks: this much of the previous chunk is searched again.
        self.overlap = max(len(m) for m in markers) - 1

    def accepts_head(self, head: bytes) -> bool:
        return head.startswith(self.prefixes)

    def holds_marker(self, data: bytes) -> bool:
        return any(marker in data for marker in self.markers)

    def straddles(self, before: bytes, after: bytes) -> bool:
        """Whether a marker starts at the end of ``before`` and ends at the start of ``after``."""
        if not self.overlap:
            return False
        return self.holds_marker(before[-self.overlap :] + after[: self.overlap])

    def accepts(self, data: bytes) -> bool:
        return self.accepts_head(data) and self.holds_marker(data)

    @property
    def fingerprint(self) -> str:
        parts = [self.name, *(p.hex() for p in self.prefixes), "|", *(m.hex() for m in self.markers)]
        return ",".join(parts)


class ConditionalGlob(str):
    """A capture glob whose matches are kept only when ``condition`` accepts their content.

    It is a ``str`` so that it travels through ``capture_patterns`` tuples and glob helpers like any
    other pattern; only the CapturePolicy looks at the condition.
    """

    condition: ContentCondition

    def __new__(cls, pattern: str, condition: ContentCondition) -> ConditionalGlob:
        glob = super().__new__(cls, pattern)
        glob.condition = condition
        return glob


def _compile(patterns: Sequence[str]) -> re.Pattern[str] | None:
    regexes = [paths.glob_to_regex(p).pattern for p in patterns]
    return re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None


class CapturePolicy:
    """Which file contents to keep while streaming: globs over absolute paths, and a size cap.

    Plain globs keep every match. A ConditionalGlob keeps a match only when its condition accepts
    the content; a path that any plain glob matches is kept unconditionally.
    """

    def __init__(self, patterns: tuple[str, ...] = (), max_file_bytes: int = 256 * 1024 * 1024) -> None:
        self.patterns = tuple(sorted(set(patterns)))
        self.max_file_bytes = max_file_bytes
        self._regex = _compile(self.patterns)
        plain = [p for p in self.patterns if not isinstance(p, ConditionalGlob)]
        self._plain = _compile(plain)
        conditional: dict[str, list[str]] = {}
        self._conditions: dict[str, ContentCondition] = {}
        for pattern in self.patterns:
            if isinstance(pattern, ConditionalGlob):
                conditional.setdefault(pattern.condition.name, []).append(pattern)
                self._conditions[pattern.condition.name] = pattern.condition
        self._conditional = [
            (self._conditions[name], regex)
            for name, globs in sorted(conditional.items())
            if (regex := _compile(globs)) is not None
        ]

    def wants(self, path: str) -> bool:
        """Whether ``path`` may be kept (conditional matches still depend on their content)."""
        return self._regex is not None and self._regex.match(path) is not None

    def condition_for(self, path: str) -> ContentCondition | None:
        """The condition a wanted ``path`` must meet, None when it is kept whatever its content."""
        if not self._conditional or (self._plain is not None and self._plain.match(path) is not None):
            return None
        for condition, regex in self._conditional:
            if regex.match(path) is not None:
                return condition
        return None

    @property
    def fingerprint(self) -> str:
        """Stable identity of the policy, part of layer-cache keys."""
        text = "\n".join(self.patterns) + f"\n{self.max_file_bytes}"
        for name in sorted(self._conditions):
            conditional = sorted(
                p for p in self.patterns if isinstance(p, ConditionalGlob) and p.condition.name == name
            )
            text += f"\n{self._conditions[name].fingerprint}:" + ",".join(conditional)
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
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=3)
        self._done = False
        self._stop = threading.Event()
        self.inflated = 0
        # The diff_id is the sha256 of the inflated stream; hashing it here, off the parsing
        # thread, keeps the thread that holds the GIL for tar parsing free of that work.
        self.hash = hashlib.sha256()
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
                self.hash.update(chunk)
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
            chunk = self._raw.read(INFLATE_CHUNK)
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
                    out = inflater.decompress(data, INFLATE_CHUNK)
                    while True:
                        if out:
                            yield out
                        if inflater.unconsumed_tail:
                            out = inflater.decompress(inflater.unconsumed_tail, INFLATE_CHUNK)
                        elif len(out) == INFLATE_CHUNK and not inflater.eof:
                            # The output buffer filled exactly: zlib may still hold inflated bytes.
                            out = inflater.decompress(b"", INFLATE_CHUNK)
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
                out = reader.read(INFLATE_CHUNK)
                if not out:
                    return
                yield out
        except zstandard.ZstdError as exc:
            raise UnsafeContentError(f"layer {self._what}: corrupt zstd stream ({exc})") from exc

    # -- consumer ------------------------------------------------------------------------------------
    def next_chunk(self) -> bytes:
        """The next inflated chunk as produced (no copy); b"" at the end of the stream."""
        if self._done:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if item == self._END:
            self._done = True
        return item

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


class TarFormatError(Exception):
    """The tar stream is malformed (raised inside this module only; read_layer names the layer)."""


class _HeaderError(TarFormatError):
    """A header block that is not one. Before the first entry the blob is not a tar archive; after
    it, the archive ends there (tarfile's rule: some writers leave garbage after the last entry)."""


class _TarMember:
    """One tar entry, extension headers (pax, GNU long names) already applied."""

    __slots__ = ("gid", "linkname", "mode", "name", "size", "sparse", "type", "uid")

    def __init__(
        self, name: str, type: bytes, mode: int, uid: int, gid: int, size: int, linkname: str
    ) -> None:
        self.name = name
        self.type = type
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.linkname = linkname
        self.sparse = False


_BLOCK = tarfile.BLOCKSIZE
_ZERO_BLOCK = bytes(_BLOCK)
# Entry types whose size field counts data blocks that follow the header (as tarfile reads them).
_DATA_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE})
_KNOWN_TYPES = frozenset(tarfile.SUPPORTED_TYPES) | {tarfile.SOLARIS_XHDTYPE}
_PAX_TYPES = frozenset({tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE})
_GNU_LONG_TYPES = frozenset({tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK})
# Extension headers are held in memory: a pax header or long name beyond this is hostile.
MAX_EXTENSION_HEADER_BYTES = 1024 * 1024
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")


def _text(field: bytes) -> str:
    end = field.find(b"\0")
    return (field if end == -1 else field[:end]).decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 for values that do not fit."""
    if field[0] in (0o200, 0o377):
        value = int.from_bytes(field[1:], "big")
        return value - (256 ** (len(field) - 1)) if field[0] == 0o377 else value
    end = field.find(b"\0")
    text = (field if end == -1 else field[:end]).strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise _HeaderError("invalid number in a tar header") from None


def _checksum_matches(block: bytes) -> bool:
    expected = _number(block[148:156])
    unsigned = sum(block) - sum(block[148:156]) + 8 * 0x20
    if expected == unsigned:
        return True
    # Some old writers summed signed chars.
    signed: int = sum(struct.unpack_from("148b8x356b", block)) + 8 * 0x20
    return expected == signed


class _TarStream:
    """A streaming tar reader over the inflated layer.

    It reads the same formats as tarfile (v7, ustar, GNU long names, pax local and global headers)
    and stops where tarfile stops (end-of-archive marker, or a malformed header after the first
    entry), but hands file data straight from the inflater's chunks: no double buffering, no
    per-member file objects. GNU sparse files are recorded without content.
    """

    def __init__(self, inflater: _Inflater) -> None:
        self._inflater = inflater
        self._chunk = b""
        self._pos = 0
        self.offset = 0  # bytes of the tar stream consumed so far
        self._next_header = 0
        self._remaining = 0  # data bytes of the current member not read yet
        self._global_pax: dict[str, str] = {}

    # -- raw access ------------------------------------------------------------------------------
    def _fill(self) -> bool:
        self._chunk = self._inflater.next_chunk()
        self._pos = 0
        return bool(self._chunk)

    def _take(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the stream)."""
        chunk, pos = self._chunk, self._pos
        end = pos + size
        if end <= len(chunk):
            self._pos = end
            self.offset += size
            return chunk[pos:end]  # the whole chunk itself when it is all that is asked for
        pieces = [chunk[pos:]]
        got = len(chunk) - pos
        while got < size and self._fill():
            piece = self._chunk[: size - got]
            self._pos = len(piece)
            pieces.append(piece)
            got += len(piece)
        self.offset += got
        return b"".join(pieces)

    def _skip(self, size: int) -> None:
        while size > 0:
            available = len(self._chunk) - self._pos
            if available == 0:
                if not self._fill():
                    raise TarFormatError("unexpected end of data")
                continue
            step = min(size, available)
            self._pos += step
            self.offset += step
            size -= step

    def drain(self) -> None:
        """Consume the rest of the stream (padding after the end-of-archive marker)."""
        self.offset += len(self._chunk) - self._pos
        while self._fill():
            self.offset += len(self._chunk)
        self._chunk, self._pos = b"", 0

    # -- members ---------------------------------------------------------------------------------
    def read(self, size: int = -1) -> bytes:
        """File data of the current member: up to ``size`` bytes, all that is left when negative."""
        if size < 0 or size > self._remaining:
            size = self._remaining
        if size == 0:
            return b""
        data = self._take(size)
        if len(data) < size:
            raise TarFormatError("unexpected end of data")
        self._remaining -= size
        return data

    def __iter__(self) -> Iterator[_TarMember]:
        first = True
        while True:
            self._skip(self._next_header - self.offset)
            try:
                member = self._member()
            except _HeaderError:
                if first:
                    raise
                return
            if member is None:
                return
            first = False
            yield member

    def _header(self) -> bytes | None:
        """The next header block; None at the end of the archive (or of the stream)."""
        block = self._take(_BLOCK)
        if len(block) < _BLOCK:
            if block:
                raise _HeaderError("truncated header")
            return None
        if block == _ZERO_BLOCK:
            return None
        if not _checksum_matches(block):
            raise _HeaderError("bad checksum")
        return block

    def _extension_data(self, size: int) -> bytes:
        if size > MAX_EXTENSION_HEADER_BYTES:
            raise TarFormatError(f"an extension header of {size} bytes (limit {MAX_EXTENSION_HEADER_BYTES})")
        data = self._take(size)
        if len(data) < size:
            raise TarFormatError("unexpected end of data")
        self._skip(-size % _BLOCK)
        return data

    def _member(self) -> _TarMember | None:
        """The next entry with its extension headers applied; None at the end of the archive."""
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        extended = False
        while True:
            try:
                block = self._header()
                if block is None:
                    if extended:
                        raise TarFormatError("the archive ends after an extension header")
                    return None
                kind = block[156:157]
                size = _number(block[124:136])
            except _HeaderError as exc:
                if extended:  # no longer "the end of the archive": the entry is cut in half
                    raise TarFormatError(f"bad header after an extension header ({exc})") from exc
                raise
            if kind in _PAX_TYPES:
                records = _parse_pax(self._extension_data(size))
                if kind == tarfile.XGLTYPE:
                    self._global_pax.update(records)
                else:
                    pax.update(records)
            elif kind in _GNU_LONG_TYPES:
                value = _text(self._extension_data(size))
                if kind == tarfile.GNUTYPE_LONGNAME:
                    long_name = value
                else:
                    long_link = value
            else:
                return self._finish(block, kind, size, {**self._global_pax, **pax}, long_name, long_link)
            extended = True

    def _finish(
        self,
        block: bytes,
        kind: bytes,
        size: int,
        pax: dict[str, str],
        long_name: str | None,
        long_link: str | None,
    ) -> _TarMember:
        name = _text(block[0:100])
        if kind == tarfile.AREGTYPE and name.endswith("/"):
            kind = tarfile.DIRTYPE
        prefix = _text(block[345:500])
        if kind == tarfile.DIRTYPE:
            name = name.rstrip("/")
        if prefix and kind != tarfile.GNUTYPE_SPARSE:
            name = f"{prefix}/{name}"
        member = _TarMember(
            name=long_name if long_name is not None else name,
            type=kind,
            mode=_number(block[100:108]),
            uid=_number(block[108:116]),
            gid=_number(block[116:124]),
            size=size,
            linkname=long_link if long_link is not None else _text(block[157:257]),
        )
        try:
            if "path" in pax:
                member.name = pax["path"]
            if "linkpath" in pax:
                member.linkname = pax["linkpath"]
            for field in ("size", "uid", "gid"):
                if field in pax:
                    setattr(member, field, int(pax[field]))
        except ValueError:
            raise TarFormatError("invalid number in a pax header") from None
        stored = member.size
        if stored < 0 or member.uid < 0 or member.gid < 0:
            # Only a hostile writer puts negative numbers here; taken as they are they would move
            # the next header backwards.
            raise TarFormatError(f"negative size or owner in the tar header of {member.name[:200]!r}")
        if kind == tarfile.GNUTYPE_SPARSE:
            # Old GNU sparse: the header size counts the stored fragments; more maps may follow.
            isextended = block[482]
            while isextended:
                extra = self._take(_BLOCK)
                if len(extra) < _BLOCK:
                    raise TarFormatError("unexpected end of data")
                isextended = extra[504]
            member.size = max(0, _number(block[483:495]))
            member.type = tarfile.REGTYPE
            member.sparse = True
        elif any(key.startswith("GNU.sparse.") for key in pax):
            member.sparse = True
            member.name = pax.get("GNU.sparse.name", member.name)
            real = pax.get("GNU.sparse.realsize") or pax.get("GNU.sparse.size")
            member.size = int(real) if real and real.isdigit() else member.size
        has_data = kind in _DATA_TYPES or kind not in _KNOWN_TYPES
        data_start = self.offset
        self._remaining = 0 if member.sparse or not has_data else stored
        self._next_header = data_start + (-(-stored // _BLOCK) * _BLOCK if has_data else 0)
        return member


def _parse_pax(data: bytes) -> dict[str, str]:
    """``"%d %s=%s\\n"`` records; a malformed one ends the layer (tarfile rejects it too)."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        if data[position] == 0:
            break  # NUL padding
        match = _PAX_RECORD.match(data, position)
        if match is None:
            raise TarFormatError("malformed pax header")
        length = int(match.group(1))
        end = position + length
        if length < 1 or end > len(data) or data[end - 1 : end] != b"\n":
            raise TarFormatError("malformed pax header record")
        key = match.group(2).decode("utf-8", "surrogateescape")
        records[key] = data[match.end() : end - 1].decode("utf-8", "surrogateescape")
        position = end
    return records


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
    stream = _TarStream(inflater)
    warnings = _Warnings(digest, limits.max_warnings)
    records: dict[str, FileRecord] = {}
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
    except _HeaderError as exc:  # raised only for the first header: later ones end the archive
        raise UnsafeContentError(f"layer {digest} is not a tar archive ({exc})") from exc
    except TarFormatError as exc:
        raise UnsafeContentError(f"layer {digest}: corrupt or truncated tar stream ({exc})") from exc
    except (EOFError, zlib.error) as exc:
        raise UnsafeContentError(f"layer {digest}: truncated stream ({exc})") from exc
    finally:
        inflater.close()
    # Drained to the end: the inflater has hashed every byte it produced.
    diff_id = f"sha256:{inflater.hash.hexdigest()}"
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
    stream: _TarStream,
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
    for member in stream:
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
            if member.sparse:
                warnings.add(f"{path} is a sparse file: recorded without its content")
                records[path] = _record(member, path, FileType.FILE, digest, size=member.size)
            else:
                records[path] = _regular_file(
                    stream, member, path, digest, capture, contents, warnings, budget, limits, scanning
                )
        else:
            records[path] = _record(member, path, file_type, digest)


def _record(
    member: _TarMember,
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
    member: _TarMember,
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
    stream: _TarStream,
    member: _TarMember,
    path: str,
    digest: str,
    capture: CapturePolicy,
    contents: ContentStore,
    warnings: _Warnings,
    budget: _CaptureBudget,
    limits: SafetyLimits,
    scanning: _Scanning,
) -> FileRecord:
    handle = stream  # reads the current member's data, and nothing past it
    size = member.size
    keep = capture.wants(path)
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
    if scanning.wants(size) or (keep and size <= READ_CHUNK):
        data = handle.read()
        if scanning.wants(size):
            scanning.scan(path, data)
        sha = hashlib.sha256(data).hexdigest()
        if keep and (condition is None or condition.accepts(data)):
            budget.remaining -= size
            contents.put_bytes(sha, data)
        return _record(member, path, FileType.FILE, digest, size=size, sha256=sha)
    if not keep:
        return _record(member, path, FileType.FILE, digest, size=size, sha256=_hash_stream(handle))
    sha, kept = _spool(handle, condition, contents)
    if kept:
        budget.remaining -= size
    return _record(member, path, FileType.FILE, digest, size=size, sha256=sha)


def _hash_stream(handle: _TarStream, first: bytes = b"") -> str:
    """The sha256 of ``first`` followed by the rest of ``handle``."""
    hasher = hashlib.sha256(first)
    while chunk := handle.read(READ_CHUNK):
        hasher.update(chunk)
    return hasher.hexdigest()


def _spool(
    handle: _TarStream, condition: ContentCondition | None, contents: ContentStore
) -> tuple[str, bool]:
    """Hash a large file and keep it in a spool file; with a condition, only if the content meets it.

    Returns the sha256 and whether the content was kept.
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
    sha = hasher.hexdigest()
    if not found:
        spool.unlink(missing_ok=True)
        return sha, False
    contents.put_file(sha, spool)
    return sha, True


def summarize(index: LayerIndex) -> dict[str, Any]:
    return {
        "digest": index.digest,
        "diff_id": index.diff_id,
        "entries": len(index.records),
        "whiteouts": len(index.whiteouts),
        "opaque_dirs": len(index.opaque_dirs),
        "warnings": len(index.warnings),
    }
