"""The per-layer fragment cache.

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

Kept apart from ``cache`` (the image-level results, which load the analysis models and so pydantic):
an answer on cached layers made without the models (``core.replay``) reads fragments through it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard

from portwarden.core.errors import StoreError
from portwarden.core.image.capture import CapturePolicy
from portwarden.core.image.content import ContentStore
from portwarden.core.image.digest import split_digest
from portwarden.core.image.fragment import LayerIndex, decode_index, encode_index
from portwarden.core.image.rendering import CACHE_WARNING_PREFIX

if TYPE_CHECKING:  # the port is a type here; importing ports loads every model
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
        except (StoreError, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
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
