"""Layer decompression on a background thread, with the decompression-bomb checks.

One thread pulls the compressed stream (whose digest the ``VerifyingReader`` checks) and inflates it
(gzip, zstd or none); another hashes the inflated stream (the diff_id). The inflaters and hashlib
release the GIL, so both run beside the thread that parses the tar stream: the three stages of a
large layer share the cores instead of queueing on one.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from collections.abc import Iterator
from gzip import BadGzipFile
from typing import IO, cast

import zstandard

from portwarden.core.errors import LimitExceededError, UnsafeContentError
from portwarden.core.image.digest import VerifyingReader
from portwarden.core.image.inflaters import GZIP_WBITS, INFLATE_ERRORS, decompressobj, gzip_reader
from portwarden.core.image.limits import SafetyLimits

# The inflater works in large units: each unit is a few hand-overs of the interpreter lock between
# it and the parsing thread, and every hand-over waits for the other thread's next pause.
INFLATE_CHUNK = 4 << 20
# How much compressed input the gzip reader pulls (and hashes, for the layer digest) at a time.
GZIP_INPUT_CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Inflater:
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
        self._finished = False  # the whole stream was handed over (not cut short by an error)
        self._stop = threading.Event()
        self.inflated = 0
        # The diff_id is the sha256 of the inflated stream, computed on a thread of its own: on the
        # inflating thread it made that thread the longest stage of a large layer's read.
        self._diff_hasher = ChunkHasher(f"diff-id-{what[:19]}")
        head = raw.read(4)
        while len(head) < 4 and (more := raw.read(4 - len(head))):  # a stream may answer short
            head += more
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
                self._diff_hasher.feed(chunk)
                if not self._put(chunk):
                    return
            self._diff_hasher.end()
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
        reader = gzip_reader(_HeadFirst(self._head, self._raw), GZIP_INPUT_CHUNK)
        if reader is None:
            yield from self._gunzip_chunks()
            return
        # Besides the inflater's own errors: a bad header or trailer (CRC, length) is BadGzipFile, a
        # gzip header larger than the input buffer OverflowError (names and comments of a megabyte
        # are no real layer's), a stream that ends inside a member EOFError.
        corrupt: tuple[type[BaseException], ...] = (*INFLATE_ERRORS, BadGzipFile, OverflowError)
        try:
            # Each chunk is allocated at its final size and filled by ISA-L without the GIL; the
            # reader checks each member's CRC and length, reads concatenated members as one stream
            # and skips zero padding between and after them, as the chunked path below does.
            while out := reader.read(INFLATE_CHUNK):
                yield out
        except EOFError as exc:
            raise UnsafeContentError(f"layer {self._what}: truncated gzip stream") from exc
        except corrupt as exc:
            raise UnsafeContentError(f"layer {self._what}: corrupt gzip stream ({exc})") from exc

    def _gunzip_chunks(self) -> Iterator[bytes]:
        """Inflate with a ``decompressobj`` (zlib-ng, zlib): where ISA-L's gzip reader is missing."""
        inflater = decompressobj(GZIP_WBITS)
        member_started = False
        for chunk in self._raw_chunks():
            data = chunk
            while data:
                if inflater.eof:
                    # Concatenated gzip members are one stream (RFC 1952); zero padding between and
                    # after them is not a member (gzip's readers skip it too).
                    data = data.lstrip(b"\x00")
                    if not data:
                        break
                    inflater = decompressobj(GZIP_WBITS)
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
                except INFLATE_ERRORS as exc:
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
            self._finished = True
        return item

    def diff_id(self) -> str:
        """``sha256:…`` of the whole inflated stream; only once ``next_chunk`` has returned b""."""
        if not self._finished:
            raise RuntimeError("the diff_id is known only once the stream has been read to its end")
        return f"sha256:{self._diff_hasher.hexdigest()}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._diff_hasher.close()


class ChunkHasher:
    """sha256 of a sequence of chunks, computed on a thread of its own, in the order they are fed.

    The chunks are ``bytes`` (immutable), handed over by reference: the thread that feeds them goes
    on using them (the tar parser reads the same objects) while this one hashes them. The queue is
    bounded, so a slow hasher holds the producer back instead of piling up memory. Should hashing
    fail, the failure is raised to the feeder (and by ``hexdigest``), never left as a hang.
    """

    _END = b""

    def __init__(self, name: str) -> None:
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._ended = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        update, get = self._hash.update, self._queue.get
        try:
            while True:
                try:
                    chunk = get(timeout=0.2)
                except queue.Empty:
                    if self._stop.is_set():
                        return
                    continue
                if not chunk or self._stop.is_set():
                    return
                update(chunk)
        except BaseException as exc:  # raised to the feeder and to hexdigest's caller
            self._error = exc

    def feed(self, chunk: bytes) -> None:
        """Hash ``chunk`` after every chunk fed before it (empty chunks change nothing)."""
        if chunk:
            self._offer(chunk)

    def end(self) -> None:
        """No more chunks: the digest is complete once the thread has hashed what it holds."""
        self._ended = True
        self._offer(self._END)

    def _offer(self, item: bytes) -> None:
        while not self._stop.is_set():
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def hexdigest(self) -> str:
        """The digest of every chunk fed, once ``end`` was called (waits for the thread)."""
        if not self._ended:
            raise RuntimeError("the hashed stream has not ended")
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._hash.hexdigest()

    def close(self) -> None:
        """Stop the thread, whether or not the stream ended (an abandoned read)."""
        self._stop.set()
        # Wakes a thread waiting for a chunk; a full queue means it is busy and will see the stop.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(self._END)
        self._thread.join(timeout=5)


class _HeadFirst:
    """The compressed stream with the bytes the ``Inflater`` read to recognize it put back in front,
    for a reader that pulls the whole stream itself (``readinto``; ``read`` is there because the gzip
    reader asks for a file-like object)."""

    def __init__(self, head: bytes, raw: VerifyingReader) -> None:
        self._head = head
        self._raw = raw

    def readinto(self, buffer: memoryview) -> int:
        head = self._head
        if not head:
            return self._raw.readinto(buffer)
        count = min(len(head), len(buffer))
        buffer[:count] = head[:count]
        self._head = head[count:]
        if self._head or count == len(buffer):
            return count
        return count + self._raw.readinto(buffer[count:])

    def read(self, size: int = -1) -> bytes:
        head, self._head = self._head, b""
        if size < 0:
            return head + self._raw.read(-1)
        if len(head) > size:
            head, self._head = head[:size], head[size:]
            return head
        return head + self._raw.read(size - len(head))


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
