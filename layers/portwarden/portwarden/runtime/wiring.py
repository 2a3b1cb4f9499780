"""The one place Lambda functions choose concrete adapters (DESIGN §4 rule 3).

Each builder reads its settings model from the environment and is cached, so a container builds
its clients, stores and database cache once and reuses them across warm invocations. ``reset``
forgets them all (tests switch environments between cases). Adapters are imported by the builder
that uses them: a function pays at cold start only for the adapters it builds.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any, BinaryIO

from portwarden.core.errors import ConfigurationError

if TYPE_CHECKING:
    # Annotations only: the settings models (pydantic-settings) and the ports load with the first
    # builder that reads them, so a function imports only what its own builders use.
    from portwarden.adapters.aws.account_stores import DynamoAccountStore
    from portwarden.adapters.aws.dynamo_models import TableBinding
    from portwarden.adapters.aws.feed_service import StepFunctionsFeedService
    from portwarden.adapters.aws.large_responses import LargeResponses
    from portwarden.adapters.aws.notification_queue import SqsNotificationQueue
    from portwarden.adapters.aws.outbox import DynamoOutbox
    from portwarden.adapters.aws.reevaluation import EventBridgeReevaluationRequests
    from portwarden.adapters.aws.s3 import S3BlobStore, S3SnapshotFiles
    from portwarden.adapters.aws.sfn import StepFunctionsStarter
    from portwarden.adapters.aws.stores import AwsStores
    from portwarden.adapters.aws.watch_index import DynamoImageNamespaceIndex
    from portwarden.adapters.http.feeds import HttpFeedFetcher
    from portwarden.api.dependencies import ApiDependencies
    from portwarden.core.analyzers.base import AnalyzerOptions
    from portwarden.core.image.reference import ImageReference
    from portwarden.core.model.accounts import RegistryRecord
    from portwarden.core.ports import (
        CredentialSource,
        EventStore,
        FetchedManifest,
        NotificationChannel,
        RegistryClient,
        TagDigestSource,
    )
    from portwarden.core.services.acquire import ImageAccess
    from portwarden.core.services.rematch import AccountStores
    from portwarden.core.services.sync_feeds import FeedSource
    from portwarden.core.services.watch import ImageAdder, WatchStores
    from portwarden.core.triage.model import TriageInputs
    from portwarden.core.watch.notifications import DeliveryAttempt
    from portwarden.runtime.notification_center import QueuedNotificationCenter
    from portwarden.runtime.settings import (
        ApiSettings,
        EcrTriggerSettings,
        FeedSyncSettings,
        NotifySettings,
        PipelineSettings,
        RegistrySettings,
        WatchSettings,
    )
    from portwarden.runtime.snapshots import VulnerabilityDbCache


class MirroredRegistryClient:
    """A RegistryClient that fetches a registry's content from its mirror host.

    References keep their own registry everywhere else (catalog, tags, events); only the host the
    bytes come from changes. Digests are verified by the core as always, so a mirror cannot serve
    other content under the image's name.
    """

    def __init__(self, inner: RegistryClient, mirrors: Mapping[str, str]) -> None:
        self._inner = inner
        self._mirrors = dict(mirrors)

    def _routed(self, ref: ImageReference) -> ImageReference:
        mirror = self._mirrors.get(ref.registry)
        return ref.model_copy(update={"registry": mirror}) if mirror else ref

    def fetch_manifest(self, ref: ImageReference, accept: Sequence[str]) -> FetchedManifest:
        return self._inner.fetch_manifest(self._routed(ref), accept)

    def open_blob(self, ref: ImageReference, digest: str) -> BinaryIO:
        return self._inner.open_blob(self._routed(ref), digest)

    def list_tags(self, ref: ImageReference) -> list[str]:
        return self._inner.list_tags(self._routed(ref))


def build_registry_client(
    settings: RegistrySettings,
    *,
    account_credentials: CredentialSource | None = None,
    insecure: Sequence[str] = (),
) -> RegistryClient:
    """The HTTP client with the credential chain: the account's own registry entries (added through
    the API) when given, then Secrets Manager, then ECR (the function's role); else anonymous.
    ``insecure`` adds hosts spoken to over plain HTTP (entries with ``registry_verify: false``)."""
    from portwarden.adapters.aws.registry_secrets import FirstCredential
    from portwarden.adapters.http.credentials import CredentialResolver
    from portwarden.adapters.http.registry import HttpRegistryClient, RetryPolicy

    shared = _shared_registry_credentials(settings.registry_secret_prefix)
    chain = FirstCredential(account_credentials, shared) if account_credentials is not None else shared
    client: RegistryClient = HttpRegistryClient(
        CredentialResolver(ecr=chain),
        insecure_registries=sorted({*settings.insecure_registries, *insecure}),
        retry=RetryPolicy(max_attempts=settings.registry_max_attempts),
        request_deadline=settings.registry_request_deadline,
    )
    if settings.registry_mirrors:
        client = MirroredRegistryClient(client, settings.registry_mirrors)
    return client


# ---- cached per container --------------------------------------------------------------------------

_lock = threading.Lock()


@cache
def _shared_registry_credentials(secret_prefix: str) -> CredentialSource:
    """Secrets Manager (one secret per registry host) where the CLI has its own store, then ECR:
    built once per container, so a missing secret is asked once and ECR tokens are reused."""
    from portwarden.adapters.aws.ecr_auth import EcrCredentialProvider
    from portwarden.adapters.aws.registry_secrets import FirstCredential, SecretsManagerRegistryCredentials
    from portwarden.adapters.aws.secrets import SecretsManagerSecrets
    from portwarden.runtime.settings import StorageSettings

    secrets = SecretsManagerSecrets(endpoint_url=StorageSettings().aws_endpoint_url)
    return FirstCredential(SecretsManagerRegistryCredentials(secrets, secret_prefix), EcrCredentialProvider())


@cache
def stores() -> AwsStores:
    from portwarden.adapters.aws.stores import AwsStores
    from portwarden.runtime.settings import StorageSettings

    return AwsStores(StorageSettings().store_settings())


@cache
def pipeline_settings() -> PipelineSettings:
    from portwarden.runtime.settings import PipelineSettings

    return PipelineSettings()


def image_access(account: str | None = None) -> ImageAccess:
    """How the image phases pull for ``account`` (account ``admin`` when None)."""
    from portwarden.core.model.accounts import ADMIN_ACCOUNT

    return _image_access(account or ADMIN_ACCOUNT)


@cache
def _image_access(account: str) -> ImageAccess:
    """How the image phases pull for ``account``: built once per account and container.

    With the accounts table, the account's registry entries (``/registries``) come first in the
    credential chain, and an entry with ``registry_verify: false`` allows plain HTTP for its host.
    They are read when an image is opened (one Query), so an entry added or changed through the API
    applies to the next pull, in a warm container too.
    """
    from portwarden.core.image.limits import SafetyLimits
    from portwarden.core.services.acquire import ImageAccess

    settings = pipeline_settings()
    work_dir = settings.work_dir / "image"
    work_dir.mkdir(parents=True, exist_ok=True)
    limits = SafetyLimits(max_image_read_seconds=settings.image_read_deadline)
    if settings.accounts_table is None:
        client = build_registry_client(settings)
        return ImageAccess(limits=limits, registry_client=lambda _ref: client, work_dir=work_dir)
    from portwarden.adapters.aws.account_stores import DynamoRegistryStore
    from portwarden.adapters.aws.dynamo_models import TableBinding
    from portwarden.serve.registry_access import AccountCredentials, insecure_hosts

    stores_ = stores()
    binding = TableBinding(settings.accounts_table, stores_.region, stores_.settings.dynamodb_endpoint_url)
    registries = DynamoRegistryStore(binding, account)

    def account_client(_ref: ImageReference) -> RegistryClient:
        entries = registries.list_registries()
        return build_registry_client(
            settings,
            account_credentials=AccountCredentials(_ListedRegistries(entries)),
            insecure=insecure_hosts(entries),
        )

    return ImageAccess(limits=limits, registry_client=account_client, work_dir=work_dir)


class _ListedRegistries:
    """An account's registry entries as read once for one image (a ``RegistryStore`` to read)."""

    def __init__(self, entries: list[RegistryRecord]) -> None:
        self._entries = entries

    def list_registries(self) -> list[RegistryRecord]:
        return list(self._entries)

    def get_registry(self, registry: str) -> RegistryRecord | None:
        return next((entry for entry in self._entries if entry.registry == registry), None)

    def put_registry(self, registry: RegistryRecord) -> None:
        raise NotImplementedError("read-only")

    def delete_registry(self, registry: str) -> bool:
        raise NotImplementedError("read-only")


def account_names() -> list[str]:
    """Every account whose records the pipeline keeps: ``admin``, and those of the accounts table."""
    from portwarden.core.model.accounts import ADMIN_ACCOUNT

    settings = pipeline_settings()
    if settings.accounts_table is None:
        return [ADMIN_ACCOUNT]
    from portwarden.adapters.aws.account_stores import DynamoAccountStore
    from portwarden.adapters.aws.dynamo_models import TableBinding

    stores_ = stores()
    binding = TableBinding(settings.accounts_table, stores_.region, stores_.settings.dynamodb_endpoint_url)
    names = {account.name for account in DynamoAccountStore(binding).list_accounts()}
    return sorted(names | {ADMIN_ACCOUNT})


def analyzer_options() -> AnalyzerOptions:
    """The analyzer options every image phase uses (the same everywhere: they key the layer cache)."""
    from portwarden.core.analyzers.base import AnalyzerOptions

    return AnalyzerOptions(retrieve_files=pipeline_settings().retrieve_files)


@cache
def starter() -> StepFunctionsStarter:
    from portwarden.adapters.aws.sfn import StepFunctionsStarter
    from portwarden.runtime.settings import StarterSettings, StorageSettings

    settings = StarterSettings()
    return StepFunctionsStarter(settings.state_machine_arn, endpoint_url=StorageSettings().aws_endpoint_url)


@cache
def ecr_trigger_settings() -> EcrTriggerSettings:
    """Which pushed repositories StartAnalysis analyzes (read once per container)."""
    from portwarden.runtime.settings import EcrTriggerSettings

    return EcrTriggerSettings()


@cache
def api_settings() -> ApiSettings:
    from portwarden.runtime.settings import ApiSettings

    return ApiSettings()


@cache
def api_dependencies() -> ApiDependencies:
    """What the API function injects into the app: the AWS stores and the Step Functions starter.

    With an accounts table, callers are IAM principals mapped to accounts through it (the admin
    principal of the settings is mapped to account ``admin`` here, on first use); without one the
    API acts for account ``admin`` alone. Without a state machine configured the API is read-only
    (submitting answers 500).
    """
    from portwarden.core.model.accounts import ADMIN_ACCOUNT

    settings = api_settings()
    if settings.accounts_table is not None:
        seed_admin(account_store(), settings.admin_principal_arn)
    return account_dependencies(ADMIN_ACCOUNT)


@cache
def account_store() -> DynamoAccountStore:
    from portwarden.adapters.aws.account_stores import DynamoAccountStore

    return DynamoAccountStore(_accounts_binding())


def _accounts_binding() -> TableBinding:
    from portwarden.adapters.aws.dynamo_models import TableBinding

    settings = api_settings()
    if settings.accounts_table is None:
        raise ConfigurationError("the accounts table needs PORTWARDEN_ACCOUNTS_TABLE")
    store_settings = stores().settings
    return TableBinding(settings.accounts_table, store_settings.region, store_settings.dynamodb_endpoint_url)


def seed_admin(accounts: DynamoAccountStore, admin_principal_arn: str | None) -> None:
    """Account ``admin`` exists, and the deploying principal acts for it unless it was mapped otherwise.

    Both writes are conditional or idempotent, so concurrent cold starts agree; a principal already
    mapped (by an operator, to another account) is left alone.
    """
    from portwarden.core.model.accounts import ADMIN_ACCOUNT, AccountType
    from portwarden.core.services.accounts import new_account

    accounts.add_account(new_account(ADMIN_ACCOUNT, type=AccountType.ADMIN))
    if admin_principal_arn and accounts.principal_account(admin_principal_arn) is None:
        accounts.put_principal(admin_principal_arn, ADMIN_ACCOUNT)


@cache
def account_dependencies(account: str) -> ApiDependencies:
    """The dependencies opened for ``account`` (cached per account for the life of the container).

    Every store is the account's own (its key is part of every item's key: docs/dynamodb.md), and
    the analyses it starts are recorded under it.
    """
    from portwarden.adapters.aws.sfn import StepFunctionsStarter
    from portwarden.api.dependencies import ApiDependencies

    settings = api_settings()
    stores_ = stores().for_account(account)
    arn = settings.state_machine_arn
    common = ApiDependencies(
        catalog=stores_.catalog,
        analyses=stores_.analyses,
        evaluations=stores_.evaluations,
        starter=(
            StepFunctionsStarter(arn, endpoint_url=settings.aws_endpoint_url, account=account)
            if arn
            else None
        ),
        # Checks evaluate with the same active bundle and database pointer as the pipeline.
        policies=stores_.policies,
        feeds=stores_.feeds,
        events=stores_.events,
        feed_service=feed_service(),
        notifications=_LazyNotificationCenter() if _has_notification_center(settings) else None,
        reevaluation=reevaluation_requests(),
    )
    if settings.accounts_table is None:
        return common
    from portwarden.adapters.aws.account_stores import DynamoRegistryStore, DynamoSubscriptionStore
    from portwarden.adapters.aws.vex_store import DynamoVexStore
    from portwarden.serve.registry_access import probe_registry

    binding = _accounts_binding()
    accounts = account_store()
    return replace(
        common,
        registries=DynamoRegistryStore(binding, account),
        subscriptions=DynamoSubscriptionStore(binding, account),
        vex=DynamoVexStore(binding, account),
        # POST /registries?validate=true logs in with the entry's credentials (bounded, seconds).
        registry_probe=probe_registry,
        accounts=accounts,
        principals=accounts,
        for_account=account_dependencies,
    )


@cache
def reevaluation_requests() -> EventBridgeReevaluationRequests | None:
    """Where the API asks for a re-evaluation when an account's active bundle changed (None: no bus)."""
    settings = api_settings()
    if settings.reevaluation_bus is None:
        return None
    from portwarden.adapters.aws.reevaluation import EventBridgeReevaluationRequests

    return EventBridgeReevaluationRequests(
        settings.reevaluation_bus, region=stores().settings.region, endpoint_url=settings.aws_endpoint_url
    )


def _has_notification_center(settings: ApiSettings) -> bool:
    return settings.notifications_table is not None and settings.notification_queue_url is not None


class _LazyNotificationCenter:
    """The API's ``NotificationCenter``, built on the first test send or delivery-log read: the outbox,
    SNS and webhook adapters stay out of the Api function's cold start."""

    def send_test(self, account: str, notification_type: str) -> list[DeliveryAttempt]:
        return notification_center().send_test(account, notification_type)

    def deliveries(
        self, account: str, *, notification_id: str | None = None, limit: int = 100
    ) -> list[DeliveryAttempt]:
        return notification_center().deliveries(account, notification_id=notification_id, limit=limit)


@cache
def notification_center() -> QueuedNotificationCenter:
    """Test sends and the delivery log through the Notify function's channels and outbox (the Api
    function has the outbox table and the notification queue; without them those routes answer 500)."""
    settings = api_settings()
    if settings.notifications_table is None or settings.notification_queue_url is None:
        raise ConfigurationError("test sends need PORTWARDEN_NOTIFICATIONS_TABLE and the notification queue")
    from portwarden.adapters.aws.notification_queue import SqsNotificationQueue
    from portwarden.runtime.notification_center import QueuedNotificationCenter

    return QueuedNotificationCenter(
        channels=notification_channels(),
        outbox=outbox(),
        retry=notify_settings().retry,
        events_for=notification_event_log,
        queue=SqsNotificationQueue(
            settings.notification_queue_url,
            region=stores().settings.region,
            endpoint_url=settings.aws_endpoint_url,
        ),
    )


@cache
def large_responses() -> LargeResponses:
    """What the Api host passes every response through (a redirect to S3 for those over the limit)."""
    from portwarden.adapters.aws.large_responses import LargeResponses, presigning_s3_client

    def open_bucket() -> tuple[Any, str]:
        stores_ = stores()
        client = presigning_s3_client(stores_.region, stores_.settings.s3_endpoint_url)
        return client, stores_.documents.bucket

    settings = api_settings()
    return LargeResponses(
        open_bucket,
        settings.large_response_prefix,
        limit=settings.response_limit_bytes,
        url_seconds=settings.large_response_url_seconds,
    )


@cache
def feed_service() -> StepFunctionsFeedService | None:
    """``/system/feeds``: the feeds table and the FeedSync state machine (None without its ARN)."""
    from portwarden.adapters.aws.feed_service import StepFunctionsFeedService

    settings = api_settings()
    arn = settings.feed_sync_state_machine_arn
    if arn is None:
        return None
    return StepFunctionsFeedService(stores().feeds, arn, endpoint_url=settings.aws_endpoint_url)


def snapshot_files() -> S3SnapshotFiles:
    """Snapshots sit at the bucket's root under ``vulndb/``, beside the stores' own prefixes."""
    from portwarden.adapters.aws.s3 import S3BlobStore, S3SnapshotFiles

    blobs = stores().blobs
    return S3SnapshotFiles(S3BlobStore(blobs.bucket, "", blobs.client))


@cache
def vulnerability_db() -> VulnerabilityDbCache:
    from portwarden.runtime.snapshots import VulnerabilityDbCache

    return VulnerabilityDbCache(snapshot_files(), stores().feeds, pipeline_settings().work_dir / "vulndb")


@cache
def feed_sync_settings() -> FeedSyncSettings:
    from portwarden.runtime.settings import FeedSyncSettings

    return FeedSyncSettings()


def feed_sources() -> list[FeedSource]:
    from portwarden.core.services.sync_feeds import FeedSource, default_sources

    configured = feed_sync_settings().feed_sources
    return [FeedSource.parse(text) for text in configured] if configured else default_sources()


def feed_fetcher(subdirectory: str | None = None) -> HttpFeedFetcher:
    """A fetcher downloading under the work directory (in ``subdirectory`` of it: a fetcher clears
    its directory's leftovers, so fetchers that may run side by side get one each)."""
    from portwarden.adapters.http.feeds import HttpFeedFetcher

    work_dir = feed_sync_settings().work_dir / "downloads"
    if subdirectory is not None:
        work_dir = work_dir / subdirectory
    work_dir.mkdir(parents=True, exist_ok=True)
    return HttpFeedFetcher(work_dir)


def reset() -> None:
    """Forget every cached adapter and settings model (the next call reads the environment again)."""
    with _lock:
        if vulnerability_db.cache_info().currsize:
            vulnerability_db().close()
        for builder in (
            stores,
            pipeline_settings,
            _image_access,
            _shared_registry_credentials,
            starter,
            ecr_trigger_settings,
            api_settings,
            api_dependencies,
            account_store,
            account_dependencies,
            feed_service,
            reevaluation_requests,
            notification_center,
            large_responses,
            vulnerability_db,
            feed_sync_settings,
        ):
            builder.cache_clear()
        _reset_watch()


# ---- watch mode: notifications (Notify), the watchers (Watch, AnalysisUpdates) and the rematch ---------


@cache
def notify_settings() -> NotifySettings:
    from portwarden.runtime.settings import NotifySettings

    return NotifySettings()  # type: ignore[call-arg]  # read from the environment


@cache
def outbox() -> DynamoOutbox:
    from portwarden.adapters.aws.outbox import DynamoOutbox

    configured = notify_settings()
    return DynamoOutbox(
        configured.notifications_table, region=configured.aws_region, host=configured.aws_endpoint_url
    )


@cache
def notification_channels() -> tuple[NotificationChannel, ...]:
    """SNS (the stack's topic) and the configured webhooks."""
    from portwarden.adapters.aws.sns import SnsChannel
    from portwarden.adapters.http.webhooks import WebhookChannel

    configured = notify_settings()
    found: list[NotificationChannel] = []
    if configured.notifications_topic_arn:
        found.append(SnsChannel(configured.notifications_topic_arn, endpoint_url=configured.aws_endpoint_url))
    if configured.webhooks.endpoints:
        found.append(WebhookChannel(configured.webhooks, timeout=configured.retry.timeout))
    return tuple(found)


def notification_event_log(account: str) -> EventStore:
    """The account's ``EventLog``, where its notifications are recorded as events (``/events``)."""
    events = account_dependencies(account).events
    if events is None:
        raise ConfigurationError(f"no event log for account {account}")
    return events


@cache
def watch_settings() -> WatchSettings:
    from portwarden.runtime.settings import WatchSettings

    return WatchSettings()  # type: ignore[call-arg]  # read from the environment


@cache
def namespace_index() -> DynamoImageNamespaceIndex:
    from portwarden.adapters.aws.watch_index import DynamoImageNamespaceIndex

    store_settings = stores().settings
    return DynamoImageNamespaceIndex(
        watch_settings().watch_table, region=store_settings.region, host=store_settings.dynamodb_endpoint_url
    )


@cache
def notification_queue() -> SqsNotificationQueue:
    from portwarden.adapters.aws.notification_queue import SqsNotificationQueue
    from portwarden.runtime.settings import StorageSettings

    return SqsNotificationQueue(
        watch_settings().notification_queue_url,
        region=stores().settings.region,
        endpoint_url=StorageSettings().aws_endpoint_url,
    )


def watched_accounts() -> list[str]:
    """The accounts the watchers and the rematch serve: ``admin`` and every account of the accounts
    table (each has its own images, subscriptions and evaluations: docs/dynamodb.md)."""
    from portwarden.core.model.accounts import ADMIN_ACCOUNT

    names = {ADMIN_ACCOUNT}
    if api_settings().accounts_table is not None:
        names |= {account.name for account in account_store().list_accounts()}
    return sorted(names)


def account_stores(account: str) -> AccountStores:
    """The stores a rematch and a re-evaluation of ``account`` use."""
    from portwarden.core.services.rematch import AccountStores

    deps = account_dependencies(account)
    if deps.policies is None or deps.subscriptions is None:
        raise ConfigurationError("the rematch needs the policies and the accounts table (subscriptions)")
    return AccountStores(
        account, deps.catalog, deps.analyses, deps.evaluations, deps.policies, deps.subscriptions
    )


def watch_stores(account: str) -> WatchStores:
    from portwarden.core.services.watch import WatchStores

    deps = account_dependencies(account)
    if deps.subscriptions is None:
        raise ConfigurationError("the watchers need the accounts table (subscriptions)")
    return WatchStores(account, deps.catalog, deps.subscriptions, notification_event_log(account))


def vex_inputs(account: str) -> TriageInputs:
    """The account's VEX statements, applied in re-evaluation as the API's policy check applies them."""
    from portwarden.core.triage.model import TriageInputs
    from portwarden.core.triage.stored import stored_triage_inputs

    if api_settings().accounts_table is None:
        return TriageInputs()
    from portwarden.adapters.aws.vex_store import DynamoVexStore

    # Only the VEX store: the analysis phases need none of the API's other dependencies.
    return stored_triage_inputs(DynamoVexStore(_accounts_binding(), account).list_documents())


def tag_digests() -> TagDigestSource:
    """Tag look-ups with the analysis pipeline's registry access (credentials, mirrors, deadlines)."""
    from portwarden.core.services.watch import RegistryTagDigests

    client_for = image_access().registry_client
    if client_for is None:
        raise ConfigurationError("the watchers need registry access")
    return RegistryTagDigests(client_for)


def image_adder(account: str) -> ImageAdder:
    """Adds an image as ``POST /images`` does, the analysis started through the analysis state machine."""
    from portwarden.core.services.images import ImageSubmission, full_tag, submit_image
    from portwarden.core.watch.subscriptions import add_missing_tag_subscriptions

    def add(tag: str, digest: str | None, *, autosubscribe: bool | None) -> None:
        deps = account_dependencies(account)
        submit_image(
            ImageSubmission(tag=tag, digest=digest, autosubscribe=bool(autosubscribe)),
            account=account,
            access=image_access(),
            catalog=deps.catalog,
            subscriptions=deps.subscriptions if autosubscribe is not None else None,
            starter=starter(),
        )
        if autosubscribe is None and deps.subscriptions is not None:
            from datetime import UTC, datetime

            add_missing_tag_subscriptions(deps.subscriptions, full_tag(tag), datetime.now(UTC))

    return add


def rematch_lists() -> S3BlobStore:
    """The item lists the Rematch state machine's Distributed Map reads, under ``rematch/`` in the bucket."""
    from portwarden.adapters.aws.s3 import S3BlobStore

    blobs = stores().blobs
    return S3BlobStore(blobs.bucket, "", blobs.client)


def _reset_watch() -> None:
    for builder in (
        notify_settings,
        outbox,
        notification_channels,
        watch_settings,
        namespace_index,
        notification_queue,
    ):
        builder.cache_clear()
