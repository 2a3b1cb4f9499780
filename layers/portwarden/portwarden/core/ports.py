"""Protocols the core depends on; adapters (HTTP, local SQLite/filesystem, AWS) implement them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO, Protocol

from portwarden.core.image.reference import ImageReference
from portwarden.core.model.base import ValueObject


class FetchedManifest(ValueObject):
    """A manifest or index exactly as the registry served it."""

    content: bytes
    media_type: str
    digest: str


class RegistryClient(Protocol):
    """The registry protocol (OCI distribution / Docker v2) as the core needs it.

    Implementations authenticate, retry transient failures and raise the core's error types
    (ImageNotFoundError, RegistryAuthError, RegistryUnavailableError). They do not verify digests:
    the core does that while streaming, for every source alike.
    """

    def fetch_manifest(self, ref: ImageReference, accept: Sequence[str]) -> FetchedManifest:
        """GET /v2/<name>/manifests/<tag-or-digest> with the given Accept media types."""
        ...

    def open_blob(self, ref: ImageReference, digest: str) -> BinaryIO:
        """GET /v2/<name>/blobs/<digest> as a raw (still compressed) stream; redirects followed."""
        ...

    def list_tags(self, ref: ImageReference) -> list[str]:
        """GET /v2/<name>/tags/list (all pages)."""
        ...


class BlobStore(Protocol):
    """Opaque documents by key: layer fragments, analysis documents, database snapshots.

    Local: files under PORTWARDEN_HOME; AWS: an S3 bucket. Writes are atomic (a reader sees the old
    document or the new one, never half of one).
    """

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes) -> None: ...

    def exists(self, key: str) -> bool: ...
