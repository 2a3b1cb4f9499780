"""Printed documents kept for identical requests: their names, their trailers, their verified read.

A rendering is one output document (native JSON, CycloneDX, SPDX) of a stored analysis, as printed:
the bytes, then a line "portwarden-rendering 1 <manifest digest> <rendering id> <sha256 of the bytes>",
in a checksummed zstd frame. A rescan asking for the same format from the same source prints it
without building the analysis's models or encoding them again.

A native document spliced from a layer stack's entry (``stacks``: a new image on analyzed layers) is
kept as what it adds to the entry (format 2): a header line naming the stack, the document's members
in order and the sizes of the image's own members, those members, then the trailer line with format 2
and the sha256 of all that. Read back, the entry is read and verified too and the document spliced
again, byte for byte the one printed: the 7 MB of an ordinary image's inventory are compressed and
hashed once per stack, not once more for each image on it.

Kept apart from ``cache`` (which loads the analysis models, and so pydantic) so that the quickest
answer to a rescan (``cli.request_memo``) can read and verify a stored document with nothing else
loaded; ``AnalysisCache`` names and reads renderings through these functions.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard

from portwarden.core.errors import StoreError
from portwarden.core.image.digest import split_digest

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.ports import BlobStore

RENDERING_FORMAT = 1
RENDERING_ON_STACK_FORMAT = 2
_RENDERING_MAGIC = b"portwarden-rendering"
# Analysis warnings about the cache (a fragment, a stored analysis, a layer stack's entry, a stored
# document) start with this, so a front end can single them out.
CACHE_WARNING_PREFIX = "layer cache: "
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


def analysis_key(result_key: str, manifest_digest: str) -> str:
    """The blob key of the analysis of ``manifest_digest`` stored under ``result_key``."""
    algorithm, hexdigest = split_digest(manifest_digest)
    if not result_key.replace("-", "").isalnum():
        raise ValueError(f"invalid result key {result_key!r}")
    return f"analyses/{algorithm}/{hexdigest}/{result_key}.json.zst"


def rendering_key(result_key: str, manifest_digest: str, rendering: str) -> str:
    """The blob key of a rendering, next to the stored analysis it was written from."""
    algorithm, hexdigest = split_digest(manifest_digest)
    if not rendering.replace("-", "").isalnum() or not result_key.replace("-", "").isalnum():
        raise ValueError(f"invalid rendering name {result_key!r}.{rendering!r}")
    return f"analyses/{algorithm}/{hexdigest}/{result_key}.{rendering}.zst"


def rendering_trailer(manifest_digest: str, rendering: str, version: int = RENDERING_FORMAT) -> bytes:
    """The trailer's head: what the document must be of (its sha256 follows it)."""
    return b"%s %d %s %s" % (_RENDERING_MAGIC, version, manifest_digest.encode(), rendering.encode())


def rendering_on_stack(
    manifest_digest: str, rendering: str, stack_id: str, names: list[str], own: dict[str, bytes]
) -> bytes:
    """The stored form (format 2) of a native document spliced from the entry of ``stack_id``:
    ``names`` the document's members in order, ``own`` the image's own members as printed."""
    header = {
        "stack": stack_id,
        "names": names,
        "members": [[name, len(piece)] for name, piece in own.items()],
    }
    body = [json.dumps(header).encode() + b"\n", *own.values()]
    hasher = hashlib.sha256()
    for piece in body:
        hasher.update(piece)
    head = rendering_trailer(manifest_digest, rendering, RENDERING_ON_STACK_FORMAT)
    trailer = b"\n%s %s" % (head, hasher.hexdigest().encode())
    return zstandard.ZstdCompressor(level=1, write_checksum=True).compress(b"".join([*body, trailer]))


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
        on_stack = head == rendering_trailer(manifest_digest, rendering, RENDERING_ON_STACK_FORMAT)
        if end < 0 or (head != rendering_trailer(manifest_digest, rendering) and not on_stack):
            problem = f"image {manifest_digest}: stored {rendering} has no matching trailer"
            return RenderingLookup(None, problem)
        del data[end:]
        actual = hashlib.sha256(data).hexdigest()
        if actual != stated.decode("ascii", "replace"):
            return RenderingLookup(
                None,
                f"image {manifest_digest}: stored {rendering} does not match its digest (got {actual})",
            )
        if on_stack:
            document, problem = _spliced(blobs, result_key, bytes(data), max_bytes)
            if document is None:
                return RenderingLookup(None, f"image {manifest_digest}: stored {rendering}: {problem}")
            return RenderingLookup(document)
        return RenderingLookup(bytes(data))
    except (StoreError, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
        return RenderingLookup(None, f"image {manifest_digest}: unreadable stored {rendering}: {exc}")


def _spliced(blobs: BlobStore, result_key: str, data: bytes, max_bytes: int) -> tuple[bytes | None, str]:
    """The document a format 2 rendering (``data``, its trailer checked and cut) and its layer stack's
    entry make; or None and why not (the entry missing, damaged or of other layers)."""
    from portwarden.core.image.stacks import (
        FRESH_MEMBERS,
        STACK_MEMBERS,
        LayerStackCache,
        read_on_stack,
        splice_members,
    )

    found, problem = read_on_stack(data, LayerStackCache(blobs, result_key, max_bytes))
    if found is None:
        return None, problem
    names = found.header["names"]
    if sorted(found.own) != sorted(FRESH_MEMBERS) or sorted(names) != sorted(
        [*FRESH_MEMBERS, *STACK_MEMBERS]
    ):
        return None, f"the members {sorted(found.own)} and the entry's do not make a document"
    document, _ = splice_members(names, found.own, found.entry.members)
    spliced = b"".join(document)
    if len(spliced) > max_bytes:
        return None, "too large"
    return spliced, ""


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
