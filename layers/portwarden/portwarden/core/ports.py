"""Protocols the core depends on; adapters (HTTP, local SQLite/filesystem, AWS) implement them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import BinaryIO, Protocol

from portwarden.core.image.reference import ImageReference
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.base import ValueObject
from portwarden.core.model.match import Match
from portwarden.core.model.records import (
    AnalysisClaim,
    AnalysisStatus,
    AnalyzedSummary,
    DbPointer,
    EvaluationRecord,
    EventRecord,
    ImageRecord,
    StoredBundle,
    TagRecord,
)


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


# ---- stores: two adapters each, SQLite (local) and DynamoDB + S3 (AWS) ----------------------------------


class CatalogStore(Protocol):
    """Images (by manifest digest) and tags."""

    def put_image(self, image: ImageRecord) -> None: ...

    def add_image(self, image: ImageRecord) -> bool:
        """Insert ``image`` only if its digest is unknown; False (nothing written) otherwise."""
        ...

    def get_image(self, image_digest: str) -> ImageRecord | None: ...

    def add_repo_tag(self, image_digest: str, repo_tag: str) -> None:
        """Add ``repo_tag`` to the image's tags without touching anything else (its status above all):
        a tag event must never overwrite what a running analysis writes. The list keeps the newest
        ``REPO_TAGS_KEPT`` tags, oldest dropped first. NotFoundError if unknown."""
        ...

    def list_images_by_status(self, status: AnalysisStatus, limit: int = 1000) -> list[ImageRecord]:
        """Images in one analysis status, newest first (every analyzed image, for a rematch)."""
        ...

    def list_images(self, limit: int = 1000) -> list[ImageRecord]: ...

    def set_status(
        self,
        image_digest: str,
        status: AnalysisStatus,
        *,
        error: str | None = None,
        expected: AnalysisStatus | None = None,
    ) -> bool:
        """Move an image to ``status``; with ``expected``, only from that status (False otherwise).
        The conditional form makes duplicate triggers start one analysis."""
        ...

    def claim_analysis(
        self, image_digest: str, claim: AnalysisClaim, *, now: datetime, force: bool = False
    ) -> bool:
        """Atomically move the image to analyzing under ``claim``: from not_analyzed or
        analysis_failed, from analyzing when the current claim's deadline is before ``now`` (or it
        has none), and with ``force`` from analyzed too. An unexpired claim is never taken: False.
        NotFoundError for an unknown digest."""
        ...

    def release_claim(self, image_digest: str, owner: str | None, error: str) -> bool:
        """analyzing under ``owner``'s claim (``None``: a claim without owner) → analysis_failed with
        ``error``, the claim cleared. False when the image is not analyzing under that owner."""
        ...

    def mark_analyzed(self, image_digest: str, summary: AnalyzedSummary) -> None:
        """Status analyzed with ``summary``, last error and claim cleared; every other attribute (the
        tags above all) untouched. NotFoundError for an unknown digest."""
        ...

    def put_tag(self, tag: TagRecord) -> None: ...

    def get_tag(self, repo_tag: str) -> TagRecord | None: ...

    def list_tags(self) -> list[TagRecord]: ...


class AnalysisStore(Protocol):
    """Analysis documents and their vulnerability matches, by image digest."""

    def put_analysis(self, image_digest: str, analysis: ImageAnalysis) -> None: ...

    def get_analysis(self, image_digest: str) -> ImageAnalysis | None: ...

    def put_matches(
        self, image_digest: str, matches: Sequence[Match], db_built_at: datetime | None
    ) -> None: ...

    def get_matches(self, image_digest: str) -> list[Match] | None: ...


class EvaluationStore(Protocol):
    def put_evaluation(self, evaluation: EvaluationRecord) -> None: ...

    def latest_evaluation(
        self, image_digest: str, repo_tag: str | None = None
    ) -> EvaluationRecord | None: ...

    def list_evaluations(self, image_digest: str) -> list[EvaluationRecord]: ...


class PolicyStore(Protocol):
    """Policy bundles as documents; exactly one may be active."""

    def put_bundle(self, bundle: StoredBundle) -> None: ...

    def get_bundle(self, bundle_id: str) -> StoredBundle | None: ...

    def list_bundles(self) -> list[StoredBundle]: ...

    def activate(self, bundle_id: str) -> None:
        """Make ``bundle_id`` the active bundle (NotFoundError if absent); the previous one is deactivated."""
        ...

    def active_bundle(self) -> StoredBundle | None: ...

    def delete_bundle(self, bundle_id: str) -> bool: ...


class EventStore(Protocol):
    def put_event(self, event: EventRecord) -> None: ...

    def list_events(self, since: datetime | None = None, limit: int = 100) -> list[EventRecord]: ...


class FeedMetadataStore(Protocol):
    """Which vulnerability database snapshot is current (AWS: a DynamoDB item; local: a file)."""

    def get_db_pointer(self) -> DbPointer | None: ...

    def put_db_pointer(self, pointer: DbPointer) -> None: ...


# ---- vulnerability feeds -----------------------------------------------------------------------------


class FetchedFeed(ValueObject):
    """What a conditional download gave: either "not modified", or a temporary file with the new body.

    The caller owns ``path`` and deletes it once read. ``etag`` and ``last_modified`` are the validators
    to send next time.
    """

    url: str
    not_modified: bool = False
    path: str | None = None
    etag: str | None = None
    last_modified: str | None = None


class FeedFetcher(Protocol):
    """Downloads feed documents (HTTP(S) with retries and conditional GET, or ``file://`` mirrors).

    Raises ``FeedUnavailableError`` when the document cannot be had (error status, network failure
    after the retries).
    """

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> FetchedFeed: ...
