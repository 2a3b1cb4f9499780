"""Protocols the core depends on; adapters (HTTP, local SQLite/filesystem, AWS) implement them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

from portwarden.core.credentials import RegistryCredential
from portwarden.core.image.reference import ImageReference
from portwarden.core.model.accounts import (
    AccountRecord,
    EventPage,
    EventQuery,
    ImportOperation,
    QueuedAnalysis,
    RegistryRecord,
    SubscriptionRecord,
    UserRecord,
)
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.base import ValueObject
from portwarden.core.model.match import Match, MatchCounts
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
from portwarden.core.watch.notifications import DeliveryAttempt, Notification

if TYPE_CHECKING:
    # Only for annotations: the pipeline service itself depends on these ports.
    from portwarden.core.model.pipeline import AnalysisRequest
    from portwarden.core.triage.model import StoredVexDocument


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


class CredentialSource(Protocol):
    """Answers "which credential do we use for this registry host?" (None: none known here).

    Implementations: Portwarden's own store and Docker's config (``adapters/http/credentials.py``),
    ECR authorization tokens (``adapters/aws/ecr_auth.py``); the wiring chains them.
    """

    def lookup(self, registry: str) -> RegistryCredential | None: ...


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

    def mark_analyzed(self, image_digest: str, summary: AnalyzedSummary, *, owner: str | None = None) -> bool:
        """Status analyzed with ``summary``, last error and claim cleared; every other attribute (the
        tags above all) untouched. NotFoundError for an unknown digest. With ``owner``, only while
        the image is analyzing under that owner's claim: False (nothing written) otherwise."""
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

    def get_match_counts(self, image_digest: str) -> MatchCounts | None:
        """The counts of the stored matches (written with them), None when there are no matches."""
        ...


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


# ---- accounts and the services around the API (SQLite locally, DynamoDB on AWS) ----------------------
# The account-owned stores above and below are opened for one account (the account is part of every
# key); AccountStore and AnalysisQueue span accounts.


class ImageRemoval(Protocol):
    def delete_image(self, image_digest: str) -> bool:
        """Remove the image with its tags, analysis, matches and evaluations; False if it was unknown."""
        ...


class EventLog(EventStore, Protocol):
    """Events with Anchore's filters, paging and deletion."""

    def query_events(self, query: EventQuery) -> EventPage: ...

    def get_event(self, event_id: str) -> EventRecord | None: ...

    def delete_event(self, event_id: str) -> bool: ...

    def delete_events(self, query: EventQuery) -> list[str]:
        """Delete every event matching the filters (paging ignored); the deleted ids."""
        ...


class AccountStore(Protocol):
    """Accounts and their users; usernames are unique across accounts (a login names one user)."""

    def add_account(self, account: AccountRecord) -> bool:
        """Insert if the name is free; False otherwise."""
        ...

    def get_account(self, name: str) -> AccountRecord | None: ...

    def list_accounts(self) -> list[AccountRecord]: ...

    def put_account(self, account: AccountRecord) -> None: ...

    def delete_account(self, name: str) -> bool:
        """Remove the account, its users and every record it owns."""
        ...

    def add_user(self, user: UserRecord) -> bool:
        """Insert if the username is free (in any account); False otherwise."""
        ...

    def get_user(self, username: str) -> UserRecord | None: ...

    def list_users(self, account: str) -> list[UserRecord]: ...

    def put_user(self, user: UserRecord) -> None: ...

    def delete_user(self, username: str) -> bool: ...


class PrincipalStore(Protocol):
    """Which account an IAM principal acts for (API Gateway authenticates with IAM on AWS)."""

    def principal_account(self, principal_arn: str) -> str | None: ...


class RegistryStore(Protocol):
    def put_registry(self, registry: RegistryRecord) -> None: ...

    def get_registry(self, registry: str) -> RegistryRecord | None: ...

    def list_registries(self) -> list[RegistryRecord]: ...

    def delete_registry(self, registry: str) -> bool: ...


class SubscriptionStore(Protocol):
    def add_subscription(self, subscription: SubscriptionRecord) -> SubscriptionRecord:
        """Insert unless (key, type) exists; the stored record either way."""
        ...

    def put_subscription(self, subscription: SubscriptionRecord) -> None: ...

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None: ...

    def list_subscriptions(
        self, subscription_key: str | None = None, subscription_type: str | None = None
    ) -> list[SubscriptionRecord]: ...

    def delete_subscription(self, subscription_id: str) -> bool: ...


class VexStore(Protocol):
    """The VEX documents of one account (applied to its vulnerability reports and checks)."""

    def put_document(self, document: StoredVexDocument) -> None: ...

    def get_document(self, document_id: str) -> StoredVexDocument | None: ...

    def list_documents(self) -> list[StoredVexDocument]:
        """Oldest first: the order their statements are given in (a later statement wins a tie)."""
        ...

    def delete_document(self, document_id: str) -> bool: ...

    def revision(self) -> datetime | None:
        """When a document was last stored or deleted (None: never); what was computed with the
        account's statements before then is stale."""
        ...


class ImportStore(Protocol):
    """SBOM import operations of one account and their uploaded parts (content-addressed)."""

    def put_operation(self, operation: ImportOperation) -> None: ...

    def get_operation(self, uuid: str) -> ImportOperation | None: ...

    def list_operations(self) -> list[ImportOperation]: ...

    def delete_operation(self, uuid: str) -> bool:
        """The operation and its parts."""
        ...

    def put_content(self, uuid: str, kind: str, digest: str, data: bytes) -> None: ...

    def get_content(self, uuid: str, kind: str, digest: str) -> bytes | None: ...

    def list_contents(self, uuid: str, kind: str) -> list[str]:
        """The digests of the parts of ``kind`` uploaded so far."""
        ...


class AnalysisQueue(Protocol):
    """Durable work for the local analysis workers."""

    def enqueue(self, item: QueuedAnalysis) -> bool:
        """Queue unless the same (account, digest) is already queued or running; True if queued now."""
        ...

    def claim(self) -> QueuedAnalysis | None:
        """The oldest queued item, moved to running (atomically: two workers never claim one item)."""
        ...

    def finish(self, account: str, image_digest: str) -> None: ...

    def requeue_running(self, max_attempts: int) -> tuple[list[QueuedAnalysis], list[QueuedAnalysis]]:
        """After a restart: running items go back to the queue (requeued, first) unless they have
        been tried ``max_attempts`` times already (given up, second, and removed)."""
        ...

    def pending(self) -> int: ...


class FeedMetadataStore(Protocol):
    """Which vulnerability database snapshot is current (AWS: a DynamoDB item; local: a file)."""

    def get_db_pointer(self) -> DbPointer | None: ...

    def put_db_pointer(self, pointer: DbPointer) -> None: ...


# ---- starting analyses --------------------------------------------------------------------------------


class AnalysisStart(ValueObject):
    """What starting an analysis did.

    ``execution_id`` names the started work in the host's terms (a Step Functions execution ARN on
    AWS, a queue entry locally). ``started`` is False when a start with the same ``name`` had already
    happened: ``execution_id`` is then that earlier execution.
    """

    execution_id: str
    started: bool


class AnalysisStarter(Protocol):
    """Starts the analysis pipeline for one request, asynchronously.

    On AWS an execution of the analysis state machine; locally a durable queue and a worker pool.
    ``name`` makes starts idempotent: a second start with a name already used starts nothing and
    answers ``started=False``. Without a name every call starts new work. Failures to start are
    ``StoreError``.
    """

    def start(self, request: AnalysisRequest, *, name: str | None = None) -> AnalysisStart: ...


@runtime_checkable
class AnalysisCancellation(Protocol):
    """Stops a running analysis (a starter that can: the Step Functions one), for a forced delete."""

    def stop(self, execution_id: str, reason: str) -> bool:
        """Stop the analysis ``execution_id`` names (an image's claim owner); False when it is not
        one this starter runs or it no longer runs. Failures to stop are ``StoreError``."""
        ...


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
    after the retries, a body larger than ``max_bytes``, too little free disk space to store it).
    """

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> FetchedFeed: ...

    def discard_leftovers(self) -> int:
        """Delete temporary bodies an interrupted sync left behind; how many. Called under the build
        lock, when no other sync can be using them."""
        ...


# ---- watch mode: registry look-ups and notification delivery ---------------------------------------


class TagDigestSource(Protocol):
    """The digest a tag points at now (HEAD of the manifest: cheap and kind to registry rate limits).

    Implementations honour ``429 Retry-After`` and raise the core's registry errors.
    """

    def tag_digest(self, ref: ImageReference) -> str: ...

    def list_tags(self, ref: ImageReference) -> list[str]:
        """Every tag of the repository (all pages of ``/tags/list``)."""
        ...


class NotificationChannel(Protocol):
    """One way of delivering notifications (webhooks, email, SNS).

    ``target_for`` names where a notification would go (None: this channel is not configured for its
    type); ``send`` delivers it there once or raises ``DeliveryError``.
    """

    @property
    def name(self) -> str: ...

    def target_for(self, notification: Notification) -> str | None: ...

    def send(self, notification: Notification, target: str, attempt: int) -> int | None:
        """Deliver; the receiver's status code when there is one."""
        ...


class OutboxItem(ValueObject):
    """A notification due for one target of one channel; ``attempts`` made so far."""

    notification: Notification
    channel: str
    target: str
    attempts: int = 0
    enqueued_at: datetime
    next_attempt_at: datetime


class Outbox(Protocol):
    """Durable deliveries: every (notification, channel, target) once, every attempt logged.

    A (notification id, channel, target) already enqueued is not enqueued again, so a notification
    made twice is delivered at most once to each target. ``claim_due`` hands each due item to one
    caller only (concurrent deliverers never send one item twice).
    """

    def register(self, notification: Notification, now: datetime) -> bool:
        """Remember the notification; False when its id was registered before (nothing written)."""
        ...

    def enqueue(self, notification: Notification, channel: str, target: str, now: datetime) -> bool: ...

    def claim_due(self, now: datetime, limit: int = 100) -> list[OutboxItem]: ...

    def record(self, item: OutboxItem, attempt: DeliveryAttempt) -> None:
        """Log ``attempt`` and settle the item: delivered or failed (done), or retrying at
        ``attempt.next_attempt_at``."""
        ...

    def release_claims(self, claimed_before: datetime) -> int:
        """Items claimed before ``claimed_before`` (by a process that died: an attempt takes seconds)
        are due again."""
        ...

    def attempts(
        self, *, notification_id: str | None = None, account: str | None = None, limit: int = 100
    ) -> list[DeliveryAttempt]: ...

    def pending(self) -> int: ...

    def undelivered(self, notification_id: str) -> int:
        """Deliveries of one notification still due or claimed (0: all delivered or failed)."""
        ...


class ImageNamespaceIndex(Protocol):
    """Which vulnerability namespaces each analyzed image has packages in, and small watch state.

    A feed change then touches only the images indexed under a changed namespace, without reading
    every stored analysis.
    """

    def set_image_namespaces(
        self, account: str, image_digest: str, namespaces: Iterable[str], *, has_matches: bool
    ) -> None: ...

    def indexed_images(self, account: str) -> set[str]: ...

    def images_in_namespaces(self, account: str, namespaces: Iterable[str]) -> set[str]: ...

    def images_with_matches(self, account: str) -> set[str]: ...

    def get_state(self, key: str) -> Any: ...

    def put_state(self, key: str, value: Any) -> None: ...


class NotificationQueue(Protocol):
    """Where a host that does not deliver itself hands its notifications (AWS: the SQS queue the Notify
    function reads). ``send`` returns once every notification is durably queued, or raises
    ``StoreError``: a caller that gets no error may forget them."""

    def send(self, notifications: Sequence[Notification]) -> None: ...
