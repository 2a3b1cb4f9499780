"""An in-memory ``RegistryClient`` serving ``ocibuild`` images: unit tests of code that resolves and
reads images without a registry process."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from typing import BinaryIO

from portwarden.core.errors import ImageNotFoundError
from portwarden.core.image.reference import ImageReference
from portwarden.core.ports import FetchedManifest

from .ocibuild import Blob, Image, ImageIndex


class MemoryRegistry:
    """Repositories of tagged images; every blob by digest. Counts manifest fetches per reference."""

    def __init__(self) -> None:
        self._tags: dict[tuple[str, str, str], Blob] = {}
        self._blobs: dict[str, Blob] = {}
        self._lock = threading.Lock()
        self.manifest_fetches: dict[str, int] = {}

    def push(self, registry: str, repository: str, tag: str, target: Image | ImageIndex) -> str:
        manifest = target.manifest if isinstance(target, Image) else target.index
        with self._lock:
            for blob in target.blobs():
                self._blobs[blob.digest] = blob
            self._tags[(registry, repository, tag)] = manifest
        return manifest.digest

    def drop_blob(self, digest: str) -> None:
        with self._lock:
            del self._blobs[digest]

    def fetch_manifest(self, ref: ImageReference, accept: Sequence[str]) -> FetchedManifest:
        with self._lock:
            key = str(ref)
            self.manifest_fetches[key] = self.manifest_fetches.get(key, 0) + 1
            if ref.digest is not None:
                blob = self._blobs.get(ref.digest)
            else:
                blob = self._tags.get((ref.registry, ref.repository, ref.tag or "latest"))
        if blob is None:
            raise ImageNotFoundError(f"{ref} not found")
        return FetchedManifest(content=blob.data, media_type=blob.media_type, digest=blob.digest)

    def open_blob(self, ref: ImageReference, digest: str) -> BinaryIO:
        with self._lock:
            blob = self._blobs.get(digest)
        if blob is None:
            raise ImageNotFoundError(f"blob {digest} not found in {ref.repository}")
        return io.BytesIO(blob.data)

    def list_tags(self, ref: ImageReference) -> list[str]:
        with self._lock:
            return sorted(
                tag
                for (registry, repository, tag) in self._tags
                if (registry, repository) == (ref.registry, ref.repository)
            )
