"""Digests, verified while bytes stream past."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Protocol

from portwarden.core.errors import DigestMismatchError, ManifestError

_DIGEST_RE = re.compile(r"^(sha256):([a-f0-9]{64})$|^(sha512):([a-f0-9]{128})$")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def split_digest(digest: str) -> tuple[str, str]:
    """``sha256:abc…`` → (``sha256``, ``abc…``); anything else is rejected, which also keeps a
    hostile digest from ever becoming a path (``sha256:../../x``)."""
    match = _DIGEST_RE.match(digest)
    if match is None:
        raise ManifestError(f"invalid digest {digest!r}")
    algorithm = match.group(1) or match.group(3)
    hexdigest = match.group(2) or match.group(4)
    return algorithm, hexdigest


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify_bytes(data: bytes, digest: str, what: str) -> None:
    algorithm, _ = split_digest(digest)
    actual = digest_bytes(data, algorithm)
    if actual != digest:
        raise DigestMismatchError(f"{what} {digest} does not match its content (got {actual})")


def read_into(read: Callable[[int], bytes], buffer: bytearray | memoryview) -> int:
    """``readinto`` for a stream that only has ``read``: a read of the buffer's size, copied in."""
    data = read(len(buffer))
    buffer[: len(data)] = data
    return len(data)


class VerifyingReader:
    """Reads a blob stream, hashing as it goes; at EOF the digest (and size, when known) must match.

    The check happens when the stream ends, so a consumer must read to the end: ``drain`` does that
    for consumers (tar readers) that stop at the end-of-archive marker.
    """

    def __init__(self, raw: Readable, digest: str, size: int | None, what: str = "blob") -> None:
        algorithm, _ = split_digest(digest)
        self._raw = raw
        self._digest = digest
        self._size = size
        self._hash = hashlib.new(algorithm)
        self._algorithm = algorithm
        self._count = 0
        self._verified = False
        self._what = what

    @property
    def bytes_read(self) -> int:
        return self._count

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        if chunk:
            self._hash.update(chunk)
            self._count += len(chunk)
            if self._size is not None and self._count > self._size:
                raise DigestMismatchError(
                    f"{self._what} {self._digest} is larger than its declared size {self._size}"
                )
        elif size != 0:
            self._verify()
        return chunk

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """``read`` into ``buffer``: straight from the stream when it has ``readinto`` (no copy)."""
        readinto = getattr(self._raw, "readinto", None)
        if readinto is None:
            return read_into(self.read, buffer)
        count: int = readinto(buffer)
        if count:
            with memoryview(buffer) as view:
                self._hash.update(view[:count])
            self._count += count
            if self._size is not None and self._count > self._size:
                raise DigestMismatchError(
                    f"{self._what} {self._digest} is larger than its declared size {self._size}"
                )
        elif len(buffer):
            self._verify()
        return count

    def drain(self, chunk_size: int = 1 << 20) -> None:
        while self.read(chunk_size):
            pass

    def _verify(self) -> None:
        if self._verified:
            return
        actual = f"{self._algorithm}:{self._hash.hexdigest()}"
        if actual != self._digest:
            raise DigestMismatchError(
                f"{self._what} {self._digest} does not match its content (got {actual})"
            )
        if self._size is not None and self._count != self._size:
            raise DigestMismatchError(
                f"{self._what} {self._digest} is {self._count} bytes, its descriptor says {self._size}"
            )
        self._verified = True

    @property
    def verified(self) -> bool:
        return self._verified

    def close(self) -> None:
        self._raw.close()
