"""The per-layer fragment cache.

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
import json
from dataclasses import dataclass

import zstandard
from pydantic import ValidationError

from portwarden.core.errors import StoreError
from portwarden.core.image.capture import CapturePolicy
from portwarden.core.image.content import ContentStore
from portwarden.core.image.digest import split_digest
from portwarden.core.image.fragment import LayerIndex, decode_index, encode_index
from portwarden.core.ports import BlobStore

# 2: the frame carries a zstd content checksum (format 1 fragments are read again, once).
# 3: entries as compact arrays (fragment.encode_index) instead of one object per entry.
FRAGMENT_FORMAT = 3
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

    def lookup(self, digest: str, contents: ContentStore) -> FragmentLookup:
        """The cached fragment with its verified contents put into ``contents``, or why not.

        A fragment whose contents cannot all be loaded (expired on their own, or altered) is a miss
        with a reason: the caller reads the layer again and ``save`` replaces the fragment and
        restores the contents."""
        try:
            raw = self._blobs.get(self._key(digest))
            if raw is None:
                return FragmentLookup(None)
            document = json.loads(zstandard.ZstdDecompressor().decompress(raw))
            if document.get("format") != FRAGMENT_FORMAT:
                return FragmentLookup(None)  # written by another release: an ordinary miss
            index = decode_index(document["index"])
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
