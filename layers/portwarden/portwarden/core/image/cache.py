"""The image-level result cache, and (re-exported from ``layer_cache``) the per-layer fragment cache.

An analysis is stored by (manifest digest, the result key: analyzers, options, limits, schema,
release) and read back verified (``AnalysisCache``); its printed documents are kept beside it
(``rendering``). The fragment cache lives in ``layer_cache``, which loads no model.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard
from pydantic import ValidationError

from portwarden.core.errors import StoreError
from portwarden.core.image.rendering import (
    CACHE_WARNING_PREFIX,
    RenderingLookup,
    RenderingRecorder,
    analysis_key,
    read_rendering,
    rendering_key,
    rendering_on_stack,
    rendering_trailer,
)
from portwarden.core.image.stacks import (
    RESULT_MAGIC,
    RESULT_ON_STACK_FORMAT,
    LayerStackCache,
    analysis_on_stack,
    read_on_stack,
    splice_members,
)
from portwarden.core.model.analysis import ImageAnalysis

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.ports import BlobStore

# -- image-level results ------------------------------------------------------------------------------

# 2: the compact analysis JSON, then a line "portwarden-analysis 2 <sha256 of the JSON>", in a
# checksummed zstd frame; written and read a slice at a time (format 1 held the document whole twice).
RESULT_FORMAT = 2
# 3: an analysis on a layer stack (``save_on_stack``, ``stacks.RESULT_ON_STACK_FORMAT``).
_READ_CHUNK = 1 << 20
# Reading an analysis back costs several times its JSON (the parsed document, then the models): past
# this size (about 75,000 files) a rescan is cheaper in memory from the layer fragments, so the
# analysis is not stored. A 300,000-file image (125 MB of JSON) would need about 1 GB to read back.
MAX_STORED_ANALYSIS_BYTES = 32 << 20


@dataclass(frozen=True)
class ResultLookup:
    """An image-level lookup: the stored analysis, or why there is none usable (``problem``)."""

    analysis: ImageAnalysis | None
    problem: str | None = None

    @property
    def warning(self) -> str | None:
        return f"{CACHE_WARNING_PREFIX}{self.problem}; the image was analyzed again" if self.problem else None


class AnalysisCache:
    """Whole analyses by (manifest digest, analyzer-set fingerprint and options).

    A manifest digest names the config and every layer by digest, and the config names every diff_id:
    the same manifest is the same image, so an analysis made with the same analyzers, options and
    limits is the answer to a rescan, without reading a layer. ``key`` carries everything else that
    shapes the result (analyzers.fingerprint, options, limits, the document schema).

    Read back like a fragment: the zstd frame's checksum, the sha256 of the document stated in its
    trailer, the manifest digest inside the document and pydantic's validation must all agree, or the
    lookup is a miss with the reason, and the caller analyzes the image again and replaces the entry.
    """

    def __init__(
        self, blobs: BlobStore, key: str, max_document_bytes: int = MAX_STORED_ANALYSIS_BYTES
    ) -> None:
        self._blobs = blobs
        self.key = key
        self.max_document_bytes = max_document_bytes

    def _blob_key(self, manifest_digest: str) -> str:
        return analysis_key(self.key, manifest_digest)

    def layer_stacks(self) -> LayerStackCache:
        """The layer-stack cache of these analyses (``core.image.stacks``: the same key and store)."""
        return LayerStackCache(self._blobs, self.key, self.max_document_bytes)

    def has(self, manifest_digest: str) -> bool:
        """Whether an entry exists (it is verified when it is looked up)."""
        try:
            return self._blobs.exists(self._blob_key(manifest_digest))
        except StoreError:
            return False

    def lookup(self, manifest_digest: str) -> ResultLookup:
        try:
            raw = self._blobs.get(self._blob_key(manifest_digest))
            if raw is None:
                return ResultLookup(None)
            # Inflated into one growing buffer, the trailer cut off in place: the document is never
            # copied whole (a 300,000-file image's analysis is over 100 MB of JSON).
            data = bytearray()
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)) as reader:
                while chunk := reader.read(_READ_CHUNK):
                    data += chunk
            end = data.rfind(b"\n")
            magic, _, rest = bytes(data[end + 1 :]).partition(b" ")
            version, _, stated = rest.partition(b" ")
            if end < 0 or magic != RESULT_MAGIC:
                return self._broken(manifest_digest, "the stored analysis has no trailer")
            on_stack = version == str(RESULT_ON_STACK_FORMAT).encode()
            if version != str(RESULT_FORMAT).encode() and not on_stack:
                return ResultLookup(None)  # written by another release: an ordinary miss
            del data[end:]
            actual = hashlib.sha256(data).hexdigest()
            if actual != stated.decode("ascii", "replace"):
                return self._broken(
                    manifest_digest, f"the stored analysis does not match its digest (got {actual})"
                )
            if on_stack:
                spliced, problem = self._spliced(bytes(data))
                if spliced is None:
                    return self._broken(manifest_digest, f"the stored analysis's layer stack: {problem}")
                data = bytearray(spliced)
            analysis = ImageAnalysis.model_validate_json(data)
            del data
            if analysis.source.manifest_digest != manifest_digest:
                return self._broken(
                    manifest_digest, f"the stored analysis is of {analysis.source.manifest_digest}"
                )
            return ResultLookup(analysis)
        except (StoreError, ValidationError, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
            return self._broken(manifest_digest, f"unreadable stored analysis: {exc}")

    def _spliced(self, data: bytes) -> tuple[bytes | None, str | None]:
        """The analysis JSON of an entry made by ``save_on_stack`` (its trailer checked), with the
        members its layer stack's entry keeps; or None and why not."""
        found, problem = read_on_stack(data, self.layer_stacks())
        if found is None:
            return None, problem
        names = list(ImageAnalysis.model_fields)
        if sorted([*found.own, *found.entry.members]) != sorted([*names, "packages/stored"]):
            return None, f"the members {sorted(found.own)} and the entry's do not make an analysis"
        _, stored = splice_members(names, found.own, found.entry.members)
        return b"".join(stored), None

    def save_on_stack(self, manifest_digest: str, stack_id: str, fresh: Mapping[str, bytes]) -> bool:
        """Store the analysis of ``manifest_digest`` as its own members (``fresh``: the document's
        members the layers do not determine, as printed) and the layer stack whose entry
        (``stacks.LayerStackCache``) holds the others: a few kilobytes instead of the whole analysis.
        ``lookup`` puts it together again, verified, and refuses it (a miss with a warning) when the
        entry is missing, damaged or of other layers."""
        self._blobs.put(self._blob_key(manifest_digest), analysis_on_stack(stack_id, fresh))
        return True

    def rendering(self, manifest_digest: str, rendering: str) -> RenderingLookup:
        """The stored document ``rendering`` (see ``rendering_id``) of this image's analysis, verified
        (``rendering.read_rendering``)."""
        return read_rendering(self._blobs, self.key, manifest_digest, rendering, self.max_document_bytes)

    def save_rendering_on_stack(
        self, manifest_digest: str, rendering: str, stack_id: str, names: list[str], own: dict[str, bytes]
    ) -> None:
        """Store a native document spliced from the entry of ``stack_id`` as what it adds to the
        entry (``rendering.rendering_on_stack``): read back, it is spliced again, verified."""
        self._blobs.put(
            rendering_key(self.key, manifest_digest, rendering),
            rendering_on_stack(manifest_digest, rendering, stack_id, names, own),
        )

    def record_rendering(self, manifest_digest: str, rendering: str) -> RenderingRecorder:
        """A recorder of the document ``rendering`` of this image's analysis (``commit`` stores it)."""
        return RenderingRecorder(
            self._blobs,
            rendering_key(self.key, manifest_digest, rendering),
            rendering_trailer(manifest_digest, rendering),
            self.max_document_bytes,
        )

    @staticmethod
    def _broken(manifest_digest: str, problem: str) -> ResultLookup:
        return ResultLookup(None, f"image {manifest_digest}: {problem}")

    def save(self, analysis: ImageAnalysis, encoded: Iterable[bytes] | None = None) -> bool:
        """Store ``analysis`` (every field, ``owned_files`` included), serialized a slice at a time.

        ``encoded``, when given, is that JSON already made (in pieces, any whitespace: see
        ``native.native_json_and_stored_analysis``); otherwise it is encoded here, compact.
        False (nothing stored) when its JSON is over ``max_document_bytes``.
        """
        if encoded is None:
            from portwarden.core.sbom.native import iter_native_json

            encoded = iter_native_json(analysis, include_owned_files=True, indent=None)
        return self.save_encoded(analysis.source.manifest_digest, encoded)

    def save_encoded(self, manifest_digest: str, encoded: Iterable[bytes]) -> bool:
        """Store the analysis of ``manifest_digest`` given as its JSON (see ``save``), which must name
        that image (``lookup`` refuses it otherwise)."""
        hasher = hashlib.sha256()
        out = io.BytesIO()
        size = 0
        compressor = zstandard.ZstdCompressor(level=1, write_checksum=True)
        with compressor.stream_writer(out, closefd=False) as writer:
            for piece in encoded:
                size += len(piece)
                if size > self.max_document_bytes:
                    return False
                hasher.update(piece)
                writer.write(piece)
            writer.write(b"\n%s %d %s" % (RESULT_MAGIC, RESULT_FORMAT, hasher.hexdigest().encode()))
        self._blobs.put(self._blob_key(manifest_digest), out.getvalue())
        return True
