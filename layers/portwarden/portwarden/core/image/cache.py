"""The per-layer fragment cache, and the image-level result cache (at the end).

A fragment is what reading one layer produced for a given analyzer set: its LayerIndex (records,
whiteouts, scanner hits, warnings) and the contents it captured. Keyed by (layer digest,
analyzer-set fingerprint): base layers shared by many images are read once, and bumping any
analyzer's version (or its capture patterns) changes the fingerprint, so stale fragments are never
used. Fragments live in a BlobStore: files locally, S3 on AWS.

Nothing read back is trusted: the fragment is a zstd frame with a content checksum, and every
captured content it carries must hash to the sha256 it is listed under. A fragment that fails either
check is a miss with a reason: the caller reads the layer again and :meth:`LayerCache.save` replaces
the fragment. So is one whose frame states no size or more than ``MAX_FRAGMENT_BYTES``: it is not
inflated. An analysis is never built from a damaged cache, silently or otherwise.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard
from pydantic import ValidationError

from portwarden.core.errors import StoreError
from portwarden.core.image.capture import CapturePolicy
from portwarden.core.image.content import ContentStore
from portwarden.core.image.digest import split_digest
from portwarden.core.image.fragment import LayerIndex, decode_index, encode_index
from portwarden.core.image.rendering import (
    CACHE_WARNING_PREFIX,
    RenderingLookup,
    RenderingRecorder,
    read_rendering,
    rendering_key,
    rendering_on_stack,
    rendering_trailer,
)
from portwarden.core.model.analysis import ImageAnalysis

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.image.stacks import LayerStackCache
    from portwarden.core.ports import BlobStore

# 2: the frame carries a zstd content checksum (format 1 fragments are read again, once).
# 3: entries as compact arrays (fragment.encode_index) instead of one object per entry.
# 4: entries as columns, digests as one base64 string (fragment.encode_index).
# 5: the captured contents in the fragment's own object, after its header line (one object a layer).
FRAGMENT_FORMAT = 5
# The most a fragment's frame may state it holds. Its captured contents are at most the default
# ``max_captured_total_bytes`` (2 GiB) and the index of the largest layer (a million entries) well
# under 1 GiB: a frame that states more (a damaged or forged one) is not inflated, since inflating
# allocates what the frame states at once. A layer past it (raised limits) is read each time.
MAX_FRAGMENT_BYTES = 3 << 30


@dataclass(frozen=True)
class FragmentLookup:
    """A cache lookup: the fragment, or why there is none usable.

    ``problem`` is None for an ordinary miss (nothing cached) and says what was wrong with a cached
    fragment that could not be used (damaged, or referencing missing or altered contents).
    """

    index: LayerIndex | None
    problem: str | None = None

    @property
    def warning(self) -> str | None:
        return f"{CACHE_WARNING_PREFIX}{self.problem}; the layer was read again" if self.problem else None


class LayerCache:
    """Layer fragments, each one object holding its LayerIndex and the contents it captured.

    One object per layer, written once and read once: a layer's captured files (package databases,
    copyright files, ``/etc/passwd``: hundreds for a distribution's base layer) travel with its index
    instead of as one object each, which on S3 cost a request apiece (hundreds of sequential PUTs in
    AnalyzeLayer and GETs in Assemble, each tens of milliseconds). The object is a checksummed zstd
    frame of a JSON header line (format, index, and the sha256 and size of each captured content in
    order) followed by the contents' bytes; every content is hashed again when it is read back.
    """

    def __init__(self, blobs: BlobStore, fingerprint: str) -> None:
        self._blobs = blobs
        self.fingerprint = fingerprint

    def _key(self, digest: str) -> str:
        algorithm, hexdigest = split_digest(digest)
        return f"fragments/{algorithm}/{hexdigest}/{self.fingerprint}.json.zst"

    def has(self, digest: str) -> bool:
        """Whether a fragment exists (its contents are checked when it is loaded)."""
        try:
            return self._blobs.exists(self._key(digest))
        except StoreError:
            return False

    def lookup(self, digest: str, contents: ContentStore, diff_id: str | None = None) -> FragmentLookup:
        """The cached fragment with its verified contents put into ``contents``, or why not.

        A fragment whose contents do not all hash to what it states is a miss with a reason: the
        caller reads the layer again and ``save`` replaces the fragment. So is one whose diff_id is
        not ``diff_id`` (the image config's): the layer read again verifies it for real (a config
        that is wrong then fails as on a first read, a fragment that is wrong is replaced)."""
        try:
            raw = self._blobs.get(self._key(digest))
            if raw is None:
                return FragmentLookup(None)
            # ``save`` has the frame state its size: checked before anything is allocated for it.
            stated = zstandard.frame_content_size(raw)
            if not 0 <= stated <= MAX_FRAGMENT_BYTES:
                what = "no size" if stated < 0 else f"{stated} bytes, over {MAX_FRAGMENT_BYTES}"
                return self._broken(digest, f"unreadable fragment: its frame states {what}")
            data = zstandard.ZstdDecompressor().decompress(raw)
            header_end = data.find(b"\n")
            document = json.loads(data if header_end < 0 else data[:header_end])
            if document.get("format") != FRAGMENT_FORMAT:
                return FragmentLookup(None)  # written by another release: an ordinary miss
            index = decode_index(document["index"])
            if diff_id is not None and index.diff_id != diff_id:
                return self._broken(
                    digest, f"the fragment's diff_id {index.diff_id} is not the image config's {diff_id}"
                )
            body = memoryview(data)[header_end + 1 :]
            offset = 0
            for sha, size in document["captured"]:
                if not isinstance(size, int) or size < 0 or offset + size > len(body):
                    return self._broken(digest, "its captured contents are truncated")
                content = body[offset : offset + size]
                offset += size
                actual = hashlib.sha256(content).hexdigest()
                if actual != sha:
                    return self._broken(
                        digest, f"cached content sha256:{sha} does not match its digest (got sha256:{actual})"
                    )
                contents.put_bytes(sha, bytes(content))
            if offset != len(body):
                return self._broken(digest, "it holds more than the contents it lists")
            return FragmentLookup(index)
        except (StoreError, ValidationError, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
            # A broken cache entry costs a re-read, never an analysis.
            return self._broken(digest, f"unreadable fragment: {exc}")

    @staticmethod
    def _broken(digest: str, problem: str) -> FragmentLookup:
        # Not logged here: the reader puts the warning on the analysis, and each front end reports
        # it once (the CLI prints it, the pipeline logs it).
        return FragmentLookup(None, f"{digest}: {problem}")

    def save(self, index: LayerIndex, capture: CapturePolicy, contents: ContentStore) -> None:
        """Store the fragment with its captured contents (replacing any fragment stored before)."""
        captured = sorted(
            {
                record.sha256
                for record in index.records.values()
                if record.sha256 and capture.wants(record.path) and contents.has(record.sha256)
            }
        )
        sizes = [contents.size(sha) for sha in captured]
        header = {
            "format": FRAGMENT_FORMAT,
            "index": encode_index(index),
            "captured": [[sha, size] for sha, size in zip(captured, sizes, strict=True)],
        }
        head = json.dumps(header).encode() + b"\n"
        # The frame states its size, as one-shot compression would: ``lookup`` inflates it in one call.
        compressor = zstandard.ZstdCompressor(level=3, write_checksum=True).compressobj(
            size=len(head) + sum(sizes)
        )
        out = [compressor.compress(head)]
        for sha, size in zip(captured, sizes, strict=True):
            with contents.open(sha) as handle:
                data = handle.read()
            if len(data) != size:  # the header would misplace every content after it
                raise StoreError(f"captured content sha256:{sha} changed size while the fragment was written")
            out.append(compressor.compress(data))
        out.append(compressor.flush())
        self._blobs.put(self._key(index.digest), b"".join(out))


# -- image-level results ------------------------------------------------------------------------------

# 2: the compact analysis JSON, then a line "portwarden-analysis 2 <sha256 of the JSON>", in a
# checksummed zstd frame; written and read a slice at a time (format 1 held the document whole twice).
RESULT_FORMAT = 2
# 3: an analysis on a layer stack (``save_on_stack``): the JSON of a header line (the stack, the
# members' sizes) and the members the layers do not determine, then the same trailer (format 3).
RESULT_ON_STACK_FORMAT = 3
_READ_CHUNK = 1 << 20
# Reading an analysis back costs several times its JSON (the parsed document, then the models): past
# this size (about 75,000 files) a rescan is cheaper in memory from the layer fragments, so the
# analysis is not stored. A 300,000-file image (125 MB of JSON) would need about 1 GB to read back.
MAX_STORED_ANALYSIS_BYTES = 32 << 20
_RESULT_MAGIC = b"portwarden-analysis"


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
        algorithm, hexdigest = split_digest(manifest_digest)
        return f"analyses/{algorithm}/{hexdigest}/{self.key}.json.zst"

    def layer_stacks(self) -> LayerStackCache:
        """The layer-stack cache of these analyses (``core.image.stacks``: the same key and store)."""
        from portwarden.core.image.stacks import LayerStackCache

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
            if end < 0 or magic != _RESULT_MAGIC:
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
        from portwarden.core.image.stacks import read_on_stack, splice_members

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
        header = {"stack": stack_id, "members": [[name, len(piece)] for name, piece in fresh.items()]}
        body = [json.dumps(header).encode() + b"\n", *fresh.values()]
        hasher = hashlib.sha256()
        for piece in body:
            hasher.update(piece)
        trailer = b"\n%s %d %s" % (_RESULT_MAGIC, RESULT_ON_STACK_FORMAT, hasher.hexdigest().encode())
        compressed = zstandard.ZstdCompressor(level=1, write_checksum=True).compress(
            b"".join([*body, trailer])
        )
        self._blobs.put(self._blob_key(manifest_digest), compressed)
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
            writer.write(b"\n%s %d %s" % (_RESULT_MAGIC, RESULT_FORMAT, hasher.hexdigest().encode()))
        self._blobs.put(self._blob_key(manifest_digest), out.getvalue())
        return True
