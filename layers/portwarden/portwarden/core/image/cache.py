"""The per-layer fragment cache.

A fragment is what reading one layer produced for a given analyzer set: its LayerIndex (records,
whiteouts, scanner hits, warnings) and the contents it captured. Keyed by (layer digest,
analyzer-set fingerprint): base layers shared by many images are read once, and bumping any
analyzer's version (or its capture patterns) changes the fingerprint, so stale fragments are never
used. Fragments live in a BlobStore: files locally, S3 on AWS.
"""

from __future__ import annotations

import json
import logging

import zstandard
from pydantic import ValidationError

from portwarden.core.errors import StoreError
from portwarden.core.image.content import ContentStore
from portwarden.core.image.digest import split_digest
from portwarden.core.image.layer import CapturePolicy, LayerIndex
from portwarden.core.ports import BlobStore

logger = logging.getLogger(__name__)
FRAGMENT_FORMAT = 1


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

    def load(self, digest: str, contents: ContentStore) -> LayerIndex | None:
        """The cached fragment with its contents put back into ``contents``; None on a miss.

        A fragment whose contents cannot all be loaded is a miss: the caller reads the layer again
        and ``save`` replaces the fragment (and restores the contents)."""
        try:
            raw = self._blobs.get(self._key(digest))
            if raw is None:
                return None
            document = json.loads(zstandard.ZstdDecompressor().decompress(raw))
            if document.get("format") != FRAGMENT_FORMAT:
                return None
            index = LayerIndex.model_validate(document["index"])
            for sha in document["captured"]:
                data = self._blobs.get(self._content_key(sha))
                if data is None:
                    return None  # partially evicted: read the layer again
                contents.put_bytes(sha, data)
            return index
        except (StoreError, ValidationError, ValueError, KeyError, zstandard.ZstdError) as exc:
            # A broken cache entry costs a re-read, never an analysis.
            logger.warning("ignoring unreadable layer fragment for %s: %s", digest, exc)
            return None

    def save(self, index: LayerIndex, capture: CapturePolicy, contents: ContentStore) -> None:
        captured = sorted(
            {
                record.sha256
                for record in index.records.values()
                if record.sha256 and capture.wants(record.path) and contents.has(record.sha256)
            }
        )
        # Every content object is written again, even when it exists: expiry counts from an object's
        # last write, so a content shared with older fragments is never older than this fragment,
        # and expires no earlier (a fragment outliving its contents is the rare path ``load`` covers).
        for sha in captured:
            with contents.open(sha) as handle:
                self._blobs.put(self._content_key(sha), handle.read())
        document = {"format": FRAGMENT_FORMAT, "index": index.model_dump(mode="json"), "captured": captured}
        self._blobs.put(
            self._key(index.digest), zstandard.ZstdCompressor(level=3).compress(json.dumps(document).encode())
        )
