"""The per-layer fragment cache, and the image-level result cache (at the end).

A fragment is what reading one layer produced for a given analyzer set: its LayerIndex (records,
whiteouts, scanner hits, warnings) and the contents it captured. Keyed by (layer digest,
analyzer-set fingerprint): base layers shared by many images are read once, and bumping any
analyzer's version (or its capture patterns) changes the fingerprint, so stale fragments are never
used. Fragments live in a BlobStore: files locally, S3 on AWS.

Nothing read back is trusted: the fragment is a zstd frame with a content checksum, and every
captured content object must hash to the sha256 it is stored under. A fragment that fails either
check, or that references a content object the store no longer has, is a miss with a reason: the
caller reads the layer again and :meth:`LayerCache.save` replaces the fragment and any broken
object. An analysis is never built from a damaged cache, silently or otherwise.
"""

from __future__ import annotations

import hashlib
import io
import json
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
    RenderingLookup,
    RenderingRecorder,
    read_rendering,
    rendering_key,
    rendering_trailer,
)
from portwarden.core.model.analysis import ImageAnalysis

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
    from portwarden.core.ports import BlobStore

# 2: the frame carries a zstd content checksum (format 1 fragments are read again, once).
# 3: entries as compact arrays (fragment.encode_index) instead of one object per entry.
# 4: entries as columns, digests as one base64 string (fragment.encode_index).
FRAGMENT_FORMAT = 4
# Analysis warnings about the cache start with this, so a front end can single them out.
CACHE_WARNING_PREFIX = "layer cache: "


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
    def __init__(self, blobs: BlobStore, fingerprint: str) -> None:
        self._blobs = blobs
        self.fingerprint = fingerprint

    def _key(self, digest: str) -> str:
        algorithm, hexdigest = split_digest(digest)
        return f"fragments/{algorithm}/{hexdigest}/{self.fingerprint}.json.zst"

    @staticmethod
    def _content_key(sha256: str) -> str:
        return f"contents/{sha256[:2]}/{sha256}"

    def has(self, digest: str) -> bool:
        """Whether a fragment exists (its contents are checked when it is loaded)."""
        try:
            return self._blobs.exists(self._key(digest))
        except StoreError:
            return False

    def lookup(self, digest: str, contents: ContentStore, diff_id: str | None = None) -> FragmentLookup:
        """The cached fragment with its verified contents put into ``contents``, or why not.

        A fragment whose contents cannot all be loaded (expired on their own, or altered) is a miss
        with a reason: the caller reads the layer again and ``save`` replaces the fragment and
        restores the contents. So is one whose diff_id is not ``diff_id`` (the image config's): the
        layer read again verifies it for real (a config that is wrong then fails as on a first read,
        a fragment that is wrong is replaced)."""
        try:
            raw = self._blobs.get(self._key(digest))
            if raw is None:
                return FragmentLookup(None)
            document = json.loads(zstandard.ZstdDecompressor().decompress(raw))
            if document.get("format") != FRAGMENT_FORMAT:
                return FragmentLookup(None)  # written by another release: an ordinary miss
            index = decode_index(document["index"])
            if diff_id is not None and index.diff_id != diff_id:
                return self._broken(
                    digest, f"the fragment's diff_id {index.diff_id} is not the image config's {diff_id}"
                )
            for sha in document["captured"]:
                data = self._blobs.get(self._content_key(sha))
                if data is None:
                    return self._broken(digest, f"cached content sha256:{sha} is missing")
                actual = hashlib.sha256(data).hexdigest()
                if actual != sha:
                    return self._broken(
                        digest, f"cached content sha256:{sha} does not match its digest (got sha256:{actual})"
                    )
                contents.put_bytes(sha, data)
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
        """Store the fragment and its captured contents, replacing any that are missing or altered."""
        captured = sorted(
            {
                record.sha256
                for record in index.records.values()
                if record.sha256 and capture.wants(record.path) and contents.has(record.sha256)
            }
        )
        # Every content object is written again, even when it exists and is intact: expiry counts from
        # an object's last write, so a content shared with older fragments is never older than this
        # fragment and expires no earlier (a fragment outliving its contents is the rare path
        # ``lookup`` covers); the write also replaces a missing or altered object.
        for sha in captured:
            with contents.open(sha) as handle:
                self._blobs.put(self._content_key(sha), handle.read())
        document = {"format": FRAGMENT_FORMAT, "index": encode_index(index), "captured": captured}
        compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
        self._blobs.put(self._key(index.digest), compressor.compress(json.dumps(document).encode()))


# -- image-level results ------------------------------------------------------------------------------

# 2: the compact analysis JSON, then a line "portwarden-analysis 2 <sha256 of the JSON>", in a
# checksummed zstd frame; written and read a slice at a time (format 1 held the document whole twice).
RESULT_FORMAT = 2
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
            if version != str(RESULT_FORMAT).encode():
                return ResultLookup(None)  # written by another release: an ordinary miss
            del data[end:]
            actual = hashlib.sha256(data).hexdigest()
            if actual != stated.decode("ascii", "replace"):
                return self._broken(
                    manifest_digest, f"the stored analysis does not match its digest (got {actual})"
                )
            analysis = ImageAnalysis.model_validate_json(data)
            del data
            if analysis.source.manifest_digest != manifest_digest:
                return self._broken(
                    manifest_digest, f"the stored analysis is of {analysis.source.manifest_digest}"
                )
            return ResultLookup(analysis)
        except (StoreError, ValidationError, ValueError, zstandard.ZstdError) as exc:
            return self._broken(manifest_digest, f"unreadable stored analysis: {exc}")

    def rendering(self, manifest_digest: str, rendering: str) -> RenderingLookup:
        """The stored document ``rendering`` (see ``rendering_id``) of this image's analysis, verified
        (``rendering.read_rendering``)."""
        return read_rendering(self._blobs, self.key, manifest_digest, rendering, self.max_document_bytes)

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

    def save(self, analysis: ImageAnalysis) -> bool:
        """Store ``analysis`` (every field, ``owned_files`` included), serialized a slice at a time.

        False (nothing stored) when its JSON is over ``max_document_bytes``.
        """
        from portwarden.core.sbom.native import iter_native_json

        hasher = hashlib.sha256()
        out = io.BytesIO()
        size = 0
        compressor = zstandard.ZstdCompressor(level=1, write_checksum=True)
        with compressor.stream_writer(out, closefd=False) as writer:
            for piece in iter_native_json(analysis, include_owned_files=True, indent=None):
                size += len(piece)
                if size > self.max_document_bytes:
                    return False
                hasher.update(piece)
                writer.write(piece)
            writer.write(b"\n%s %d %s" % (_RESULT_MAGIC, RESULT_FORMAT, hasher.hexdigest().encode()))
        self._blobs.put(self._blob_key(analysis.source.manifest_digest), out.getvalue())
        return True
