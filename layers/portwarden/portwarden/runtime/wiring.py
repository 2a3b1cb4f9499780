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
from typing import TYPE_CHECKING, BinaryIO

from portwarden.core.errors import ConfigurationError
from portwarden.core.model.accounts import ADMIN_ACCOUNT, AccountType
from portwarden.runtime.settings import (
    ApiSettings,
    FeedSyncSettings,
    PipelineSettings,
    RegistrySettings,
    StarterSettings,
    StorageSettings,
)

if TYPE_CHECKING:
    from portwarden.adapters.aws.account_stores import DynamoAccountStore
    from portwarden.adapters.aws.dynamo_models import TableBinding
    from portwarden.adapters.aws.s3 import S3SnapshotFiles
    from portwarden.adapters.aws.sfn import StepFunctionsStarter
    from portwarden.adapters.aws.stores import AwsStores
    from portwarden.adapters.http.feeds import HttpFeedFetcher
    from portwarden.api.dependencies import ApiDependencies
    from portwarden.core.analyzers.base import AnalyzerOptions
    from portwarden.core.image.reference import ImageReference
    from portwarden.core.ports import FetchedManifest, RegistryClient
    from portwarden.core.services.acquire import ImageAccess
    from portwarden.core.services.sync_feeds import FeedSource
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


def build_registry_client(settings: RegistrySettings) -> RegistryClient:
    """The HTTP client with the ECR credential chain (the function's role); others are anonymous."""
    from portwarden.adapters.aws.ecr_auth import EcrCredentialProvider
    from portwarden.adapters.aws.registry_secrets import FirstCredential, SecretsManagerRegistryCredentials
    from portwarden.adapters.aws.secrets import SecretsManagerSecrets
    from portwarden.adapters.http.credentials import CredentialResolver
    from portwarden.adapters.http.registry import HttpRegistryClient, RetryPolicy

    # Secrets Manager (one secret per registry host) where the CLI has its own store, then ECR.
    secrets = SecretsManagerSecrets(endpoint_url=StorageSettings().aws_endpoint_url)
    registry_secrets = SecretsManagerRegistryCredentials(secrets, settings.registry_secret_prefix)
    credentials = CredentialResolver(ecr=FirstCredential(registry_secrets, EcrCredentialProvider()))
    client: RegistryClient = HttpRegistryClient(
        credentials,
        insecure_registries=settings.insecure_registries,
        retry=RetryPolicy(max_attempts=settings.registry_max_attempts),
        request_deadline=settings.registry_request_deadline,
    )
    if settings.registry_mirrors:
        client = MirroredRegistryClient(client, settings.registry_mirrors)
    return client


# ---- cached per container --------------------------------------------------------------------------

_lock = threading.Lock()


@cache
def stores() -> AwsStores:
    from portwarden.adapters.aws.stores import AwsStores

    return AwsStores(StorageSettings().store_settings())


@cache
def pipeline_settings() -> PipelineSettings:
    return PipelineSettings()


@cache
def image_access() -> ImageAccess:
    from portwarden.core.image.limits import SafetyLimits
    from portwarden.core.services.acquire import ImageAccess

    settings = pipeline_settings()
    client = build_registry_client(settings)
    work_dir = settings.work_dir / "image"
    work_dir.mkdir(parents=True, exist_ok=True)
    limits = SafetyLimits(max_image_read_seconds=settings.image_read_deadline)
    return ImageAccess(limits=limits, registry_client=lambda _ref: client, work_dir=work_dir)


def analyzer_options() -> AnalyzerOptions:
    """The analyzer options every image phase uses (the same everywhere: they key the layer cache)."""
    from portwarden.core.analyzers.base import AnalyzerOptions

    return AnalyzerOptions(retrieve_files=pipeline_settings().retrieve_files)


@cache
def starter() -> StepFunctionsStarter:
    from portwarden.adapters.aws.sfn import StepFunctionsStarter

    settings = StarterSettings()
    return StepFunctionsStarter(settings.state_machine_arn, endpoint_url=StorageSettings().aws_endpoint_url)


@cache
def api_settings() -> ApiSettings:
    return ApiSettings()


@cache
def api_dependencies() -> ApiDependencies:
    """What the API function injects into the app: the AWS stores and the Step Functions starter.

    With an accounts table, callers are IAM principals mapped to accounts through it (the admin
    principal of the settings is mapped to account ``admin`` here, on first use); without one the
    API acts for account ``admin`` alone. Without a state machine configured the API is read-only
    (submitting answers 500).
    """
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
    from portwarden.core.services.accounts import new_account

    accounts.add_account(new_account(ADMIN_ACCOUNT, type=AccountType.ADMIN))
    if admin_principal_arn and accounts.principal_account(admin_principal_arn) is None:
        accounts.put_principal(admin_principal_arn, ADMIN_ACCOUNT)


@cache
def account_dependencies(account: str) -> ApiDependencies:
    """The dependencies opened for ``account`` (cached per account for the life of the container).

    Images, analyses, evaluations and policies live in tables without an account key: they are
    account ``admin``'s, and any other account is refused (403) rather than shown them.
    """
    from portwarden.adapters.aws.sfn import StepFunctionsStarter
    from portwarden.api.auth import ForbiddenError
    from portwarden.api.dependencies import ApiDependencies

    if account != ADMIN_ACCOUNT:
        raise ForbiddenError(
            f"account {account} cannot be served here: this deployment keeps images, evaluations and "
            f"policies for account {ADMIN_ACCOUNT} only; map the principal to {ADMIN_ACCOUNT}"
        )
    settings = api_settings()
    stores_ = stores()
    arn = settings.state_machine_arn
    common = ApiDependencies(
        catalog=stores_.catalog,
        analyses=stores_.analyses,
        evaluations=stores_.evaluations,
        starter=StepFunctionsStarter(arn, endpoint_url=settings.aws_endpoint_url) if arn else None,
        # Checks evaluate with the same active bundle and database pointer as the pipeline.
        policies=stores_.policies,
        feeds=stores_.feeds,
    )
    if settings.accounts_table is None:
        return common
    from portwarden.adapters.aws.account_stores import DynamoRegistryStore, DynamoSubscriptionStore
    from portwarden.adapters.aws.vex_store import DynamoVexStore

    binding = _accounts_binding()
    accounts = account_store()
    return replace(
        common,
        registries=DynamoRegistryStore(binding, account),
        subscriptions=DynamoSubscriptionStore(binding, account),
        vex=DynamoVexStore(binding, account),
        accounts=accounts,
        principals=accounts,
        for_account=account_dependencies,
    )


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
            image_access,
            starter,
            api_settings,
            api_dependencies,
            account_store,
            account_dependencies,
            vulnerability_db,
            feed_sync_settings,
        ):
            builder.cache_clear()
