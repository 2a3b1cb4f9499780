"""Printed documents kept for identical requests: their names, their trailers, their verified read.

A rendering is one output document (native JSON, CycloneDX, SPDX) of a stored analysis, as printed:
the bytes, then a line "portwarden-rendering 1 <manifest digest> <rendering id> <sha256 of the bytes>",
in a checksummed zstd frame. A rescan asking for the same format from the same source prints it
without building the analysis's models or encoding them again.

Kept apart from ``cache`` (which loads the analysis models, and so pydantic) so that the quickest
answer to a rescan (``cli.request_memo``) can read and verify a stored document with nothing else
loaded; ``AnalysisCache`` names and reads renderings through these functions.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard

from portwarden.core.errors import StoreError
from portwarden.core.image.digest import split_digest

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.ports import BlobStore

RENDERING_FORMAT = 1
_RENDERING_MAGIC = b"portwarden-rendering"
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class RenderingLookup:
    """A stored document, verified (``document``), or None; ``problem`` says why a stored one was refused."""

    document: bytes | None
    problem: str | None = None


def rendering_id(document_format: str, source: bytes) -> str:
    """Names one rendering of an analysis: the format and the source the document names (the same
    image read from another place is another document)."""
    if not document_format.replace("-", "").isalnum():
        raise ValueError(f"invalid document format {document_format!r}")
    source_digest = hashlib.sha256(source).hexdigest()[:32]
    return f"{document_format}-{RENDERING_FORMAT}-{source_digest}"


def rendering_key(result_key: str, manifest_digest: str, rendering: str) -> str:
    """The blob key of a rendering, next to the stored analysis it was written from."""
    algorithm, hexdigest = split_digest(manifest_digest)
    if not rendering.replace("-", "").isalnum() or not result_key.replace("-", "").isalnum():
        raise ValueError(f"invalid rendering name {result_key!r}.{rendering!r}")
    return f"analyses/{algorithm}/{hexdigest}/{result_key}.{rendering}.zst"


def rendering_trailer(manifest_digest: str, rendering: str) -> bytes:
    """The trailer's head: what the document must be of (its sha256 follows it)."""
    return b"%s %d %s %s" % (_RENDERING_MAGIC, RENDERING_FORMAT, manifest_digest.encode(), rendering.encode())


def read_rendering(
    blobs: BlobStore, result_key: str, manifest_digest: str, rendering: str, max_bytes: int
) -> RenderingLookup:
    """The stored document ``rendering`` of this image's analysis, verified.

    Refused (a miss with a reason) unless the zstd frame checksum, the sha256 in the trailer, the
    manifest digest and the rendering id all agree, and the document is at most ``max_bytes``.
    """
    try:
        raw = blobs.get(rendering_key(result_key, manifest_digest, rendering))
        if raw is None:
            return RenderingLookup(None)
        data = bytearray()
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)) as reader:
            while chunk := reader.read(_READ_CHUNK):
                data += chunk
                if len(data) > max_bytes + 4096:
                    return RenderingLookup(None, f"image {manifest_digest}: stored {rendering} too large")
        end = data.rfind(b"\n")
        head, _, stated = bytes(data[end + 1 :]).rpartition(b" ")
        if end < 0 or head != rendering_trailer(manifest_digest, rendering):
            problem = f"image {manifest_digest}: stored {rendering} has no matching trailer"
            return RenderingLookup(None, problem)
        del data[end:]
        actual = hashlib.sha256(data).hexdigest()
        if actual != stated.decode("ascii", "replace"):
            return RenderingLookup(
                None,
                f"image {manifest_digest}: stored {rendering} does not match its digest (got {actual})",
            )
        return RenderingLookup(bytes(data))
    except (StoreError, ValueError, zstandard.ZstdError) as exc:
        return RenderingLookup(None, f"image {manifest_digest}: unreadable stored {rendering}: {exc}")


class RenderingRecorder:
    """Keeps a copy of a document as it is written, compressed; ``commit`` stores it.

    Past ``max_bytes`` the copy is dropped (``commit`` then stores nothing): reading back a document
    holds it whole.
    """

    def __init__(self, blobs: BlobStore, key: str, trailer_head: bytes, max_bytes: int) -> None:
        self._blobs = blobs
        self.key = key
        self._trailer_head = trailer_head
        self._max_bytes = max_bytes
        self._size = 0
        self._hasher = hashlib.sha256()
        self._out: io.BytesIO | None = io.BytesIO()
        self._writer = zstandard.ZstdCompressor(level=1, write_checksum=True).compressobj()

    def write(self, data: bytes) -> int:
        if self._out is not None:
            self._size += len(data)
            if self._size > self._max_bytes:
                self._out = None
            else:
                self._hasher.update(data)
                self._out.write(self._writer.compress(data))
        return len(data)

    def commit(self) -> bool:
        """Store the document; False when it was too large to keep."""
        if self._out is None:
            return False
        trailer = b"\n%s %s" % (self._trailer_head, self._hasher.hexdigest().encode())
        self._out.write(self._writer.compress(trailer))
        self._out.write(self._writer.flush())
        self._blobs.put(self.key, self._out.getvalue())
        self._out = None
        return True
