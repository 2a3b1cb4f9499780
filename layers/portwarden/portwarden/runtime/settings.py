"""Settings parsed from the Lambda environment, once, at the edge.

Each model validates the variables its handler needs and nothing else, so a misconfigured stack
fails at cold start with a message naming the variable instead of deep inside a request. Models are
composed from small mixins (observability, storage, registry access) the way the template composes
environments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from portwarden.adapters.aws.settings import AwsStoreSettings
from portwarden.core.analyzers.base import DEFAULT_RETRIEVE_FILES
from portwarden.core.errors import ConfigurationError
from portwarden.core.watch.config import RetrySettings, WebhookSettings
from portwarden.runtime.observability_settings import ObservabilityFields

# Lambda gives every function a writable /tmp (ephemeral storage) and nothing else.
DEFAULT_WORK_DIR = Path("/tmp/portwarden")  # noqa: S108 - the Lambda scratch directory


class _EnvSettings(BaseSettings):
    """Frozen, case-insensitive, and tolerant of the many unrelated variables Lambda sets."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False, defer_build=True)


def _split_list(value: Any) -> Any:
    """``a, b c`` → ``["a", "b", "c"]``: CloudFormation passes lists as one comma-joined string."""
    if isinstance(value, str):
        return [item for item in value.replace(",", " ").split() if item]
    return value


class ObservabilitySettings(_EnvSettings, ObservabilityFields):
    """What the Powertools logger, tracer and metrics are configured with (the fields of
    ``ObservabilityFields``), read as every other setting is."""

    # The settings' own configuration (environment sources) over the plain model's.
    model_config = _EnvSettings.model_config


class StorageSettings(_EnvSettings):
    """Where persistent state lives: the six tables of ``docs/dynamodb.md`` and the bucket.

    Every name is optional here so that functions which need no store (the liveness route) start
    without them; :meth:`store_settings` insists on all of them when a store is actually built.
    ``table_name`` is the images table, the catalog every other record hangs off.
    """

    table_name: str | None = Field(default=None, min_length=1, validation_alias="PORTWARDEN_TABLE_NAME")
    tags_table: str | None = Field(default=None, min_length=3, validation_alias="PORTWARDEN_TAGS_TABLE")
    evaluations_table: str | None = Field(
        default=None, min_length=3, validation_alias="PORTWARDEN_EVALUATIONS_TABLE"
    )
    policies_table: str | None = Field(
        default=None, min_length=3, validation_alias="PORTWARDEN_POLICIES_TABLE"
    )
    events_table: str | None = Field(default=None, min_length=3, validation_alias="PORTWARDEN_EVENTS_TABLE")
    feeds_table: str | None = Field(default=None, min_length=3, validation_alias="PORTWARDEN_FEEDS_TABLE")
    bucket_name: str | None = Field(default=None, min_length=3, validation_alias="PORTWARDEN_BUCKET_NAME")
    # Emulators only (moto server, dynalite); unset on AWS.
    aws_endpoint_url: str | None = Field(default=None, validation_alias="PORTWARDEN_AWS_ENDPOINT_URL")
    # Days until DynamoDB's TTL deletes an event / an evaluation a newer one superseded (unset: never).
    event_retention_days: int | None = Field(
        default=None, ge=1, validation_alias="PORTWARDEN_EVENT_RETENTION_DAYS"
    )
    superseded_evaluation_days: int | None = Field(
        default=None, ge=1, validation_alias="PORTWARDEN_SUPERSEDED_EVALUATION_DAYS"
    )

    def store_settings(self) -> AwsStoreSettings:
        names = {
            "PORTWARDEN_TABLE_NAME": self.table_name,
            "PORTWARDEN_TAGS_TABLE": self.tags_table,
            "PORTWARDEN_EVALUATIONS_TABLE": self.evaluations_table,
            "PORTWARDEN_POLICIES_TABLE": self.policies_table,
            "PORTWARDEN_EVENTS_TABLE": self.events_table,
            "PORTWARDEN_FEEDS_TABLE": self.feeds_table,
            "PORTWARDEN_BUCKET_NAME": self.bucket_name,
        }
        missing = sorted(name for name, value in names.items() if value is None)
        if missing:
            raise ConfigurationError(f"the stores need these environment variables: {', '.join(missing)}")
        assert self.table_name and self.tags_table and self.evaluations_table and self.bucket_name
        assert self.policies_table and self.events_table and self.feeds_table
        return AwsStoreSettings(
            bucket=self.bucket_name,
            images_table=self.table_name,
            tags_table=self.tags_table,
            evaluations_table=self.evaluations_table,
            policies_table=self.policies_table,
            events_table=self.events_table,
            feeds_table=self.feeds_table,
            dynamodb_endpoint_url=self.aws_endpoint_url,
            s3_endpoint_url=self.aws_endpoint_url,
            event_retention_days=self.event_retention_days,
            superseded_evaluation_days=self.superseded_evaluation_days,
        )


class WorkSettings(_EnvSettings):
    """Scratch space on the function's ephemeral storage."""

    work_dir: Path = Field(default=DEFAULT_WORK_DIR, validation_alias="PORTWARDEN_WORK_DIR")


class RegistrySettings(WorkSettings):
    """How the image phases reach registries.

    ECR hosts authenticate through the function's role; other registries are pulled anonymously.
    ``insecure_registries`` are spoken to over plain HTTP (registries inside a VPC, and the local
    registry of the integration tests). ``registry_mirrors`` sends a registry's traffic to another
    host (a pull-through mirror) while the image keeps its own name in the catalog: a JSON object
    ``{"registry host": "mirror host"}``. ``registry_max_attempts`` bounds the client's own
    retries; the state machine retries a failed phase on top of that.
    """

    insecure_registries: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="PORTWARDEN_INSECURE_REGISTRIES"
    )
    registry_mirrors: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias="PORTWARDEN_REGISTRY_MIRRORS"
    )
    registry_max_attempts: int = Field(
        default=4, ge=1, le=10, validation_alias="PORTWARDEN_REGISTRY_MAX_ATTEMPTS"
    )
    # Secrets Manager names of private registries' credentials: <prefix><registry host>.
    registry_secret_prefix: str = Field(
        default="portwarden/registries/", min_length=1, validation_alias="PORTWARDEN_REGISTRY_SECRET_PREFIX"
    )
    # Wall-clock bounds: one HTTP request (all attempts), and one image read (docs/image-reading.md).
    registry_request_deadline: float = Field(
        default=120.0, gt=0, validation_alias="PORTWARDEN_REGISTRY_REQUEST_DEADLINE"
    )
    image_read_deadline: float = Field(
        default=3600.0, gt=0, validation_alias="PORTWARDEN_IMAGE_READ_DEADLINE"
    )
    # The accounts table: each account's registry entries (added through the API) are used first.
    accounts_table: str | None = Field(
        default=None, min_length=3, validation_alias="PORTWARDEN_ACCOUNTS_TABLE"
    )

    @field_validator("accounts_table", mode="before")
    @classmethod
    def _no_accounts_table(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("insecure_registries", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("registry_mirrors", mode="before")
    @classmethod
    def _parse_mirrors(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value


class ApiSettings(ObservabilitySettings, StorageSettings):
    """Environment of the API function."""

    stage: str = Field(default="dev", pattern=r"^[a-z][a-z0-9-]{0,15}$", validation_alias="PORTWARDEN_STAGE")
    state_machine_arn: str | None = Field(
        default=None, min_length=1, validation_alias="PORTWARDEN_STATE_MACHINE_ARN"
    )
    # Responses larger than this (serialized, bytes) go to S3 under ``large_response_prefix`` behind
    # a redirect to a presigned URL valid ``large_response_url_seconds`` (Lambda returns 6 MB at most).
    response_limit_bytes: int = Field(
        default=6 * 1024 * 1024,
        ge=1024,
        le=6 * 1024 * 1024,
        validation_alias="PORTWARDEN_RESPONSE_LIMIT_BYTES",
    )
    large_response_prefix: str = Field(
        default="responses/", pattern=r"^[a-z0-9-]+/$", validation_alias="PORTWARDEN_LARGE_RESPONSE_PREFIX"
    )
    large_response_url_seconds: int = Field(
        default=300, ge=30, le=3600, validation_alias="PORTWARDEN_LARGE_RESPONSE_URL_SECONDS"
    )
    # The FeedSync workflow ``POST /system/feeds`` starts. Unset: /system/feeds answers 500.
    feed_sync_state_machine_arn: str | None = Field(
        default=None, min_length=1, validation_alias="PORTWARDEN_FEED_SYNC_STATE_MACHINE_ARN"
    )
    # Accounts, users, IAM principals, registries, subscriptions and VEX documents. Unset: the API
    # acts for account admin alone, whoever API Gateway let in.
    accounts_table: str | None = Field(
        default=None, min_length=3, validation_alias="PORTWARDEN_ACCOUNTS_TABLE"
    )
    # The IAM principal (API Gateway's ``userArn``) mapped to account admin on first use.
    admin_principal_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:\S+$",
        validation_alias="PORTWARDEN_ADMIN_PRINCIPAL_ARN",
    )

    # The event bus where a change of an account's active bundle asks for the re-evaluation of its
    # images (the Rematch state machine's rule). Unset: nothing is asked; the schedule catches up.
    reevaluation_bus: str | None = Field(
        default=None, min_length=1, validation_alias="PORTWARDEN_REEVALUATION_BUS"
    )
    # The notification outbox: set, ``POST /system/webhooks/{type}/test`` sends through the Notify
    # function's channels (PORTWARDEN_NOTIFICATIONS_TOPIC_ARN, PORTWARDEN_WEBHOOKS: NotifySettings) and
    # ``GET /system/notifications/deliveries`` reads the delivery log. Unset: both answer 500.
    notifications_table: str | None = Field(
        default=None, min_length=1, validation_alias="PORTWARDEN_NOTIFICATIONS_TABLE"
    )

    # Where a test send whose webhook delivery is still due is handed for the Notify function's retries.
    notification_queue_url: str | None = Field(
        default=None, min_length=1, validation_alias="PORTWARDEN_NOTIFICATION_QUEUE_URL"
    )

    @field_validator(
        "accounts_table",
        "admin_principal_arn",
        "reevaluation_bus",
        "notifications_table",
        "notification_queue_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # The template passes its empty parameter default through as "".
        return None if value == "" else value


class StarterSettings(ObservabilitySettings):
    """Environment of the functions that start analyses (API, ECR trigger)."""

    state_machine_arn: str = Field(min_length=1, validation_alias="PORTWARDEN_STATE_MACHINE_ARN")


class EcrTriggerSettings(StarterSettings):
    """Environment of the ECR push trigger: which repositories' pushes start analyses (name
    prefixes separated by commas; empty: all)."""

    ecr_repository_prefixes: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="PORTWARDEN_ECR_REPOSITORY_PREFIXES"
    )

    @field_validator("ecr_repository_prefixes", mode="before")
    @classmethod
    def _split_prefixes(cls, value: Any) -> Any:
        return _split_list(value)


class PipelineSettings(ObservabilitySettings, StorageSettings, RegistrySettings):
    """Environment of the state machine's task functions.

    ``analysis_timeout_seconds`` is the state machine's own timeout: a claim lasts that long plus a
    margin, so no live execution loses its claim and no dead one keeps it much longer.
    ``retrieve_files`` (``PORTWARDEN_RETRIEVE_FILES``, paths separated by commas or whitespace) are the
    files whose content every analysis keeps, ``/etc/passwd`` unless set; empty keeps none. Resolve,
    AnalyzeLayer and Assemble read the same variable, so they agree on the layer-cache key.
    """

    analysis_timeout_seconds: int = Field(
        default=7200, ge=60, le=86400, validation_alias="PORTWARDEN_ANALYSIS_TIMEOUT_SECONDS"
    )
    retrieve_files: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_RETRIEVE_FILES, validation_alias="PORTWARDEN_RETRIEVE_FILES"
    )

    @field_validator("retrieve_files", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        return _split_list(value)


class FeedSyncSettings(ObservabilitySettings, StorageSettings, WorkSettings):
    """Environment of the feed sync function.

    ``feed_sources`` lists ``KIND=URL`` entries (``osv=https://…/PyPI/all.zip``), separated by commas
    or whitespace; empty means the real upstream feeds (docs/feeds.md). ``nvd_api_key_secret`` names
    the Secrets Manager secret holding the NVD API key.
    """

    feed_sources: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="PORTWARDEN_FEED_SOURCES"
    )
    # The NVD API key lives in Secrets Manager; the environment names the secret, never the key.
    nvd_api_key_secret: str | None = Field(
        default=None, min_length=1, validation_alias="PORTWARDEN_NVD_API_KEY_SECRET"
    )
    # How long one step of a source may run before it checkpoints and returns (NVD pages); the
    # function's remaining time caps it as well.
    feed_step_seconds: int = Field(default=600, ge=0, le=900, validation_alias="PORTWARDEN_FEED_STEP_SECONDS")
    # How long a run holds the sync lease (a run that dies frees it after this).
    feed_sync_lease_seconds: int = Field(
        default=21600, ge=60, validation_alias="PORTWARDEN_FEED_SYNC_LEASE_SECONDS"
    )

    @field_validator("feed_sources", mode="before")
    @classmethod
    def _split_sources(cls, value: Any) -> Any:
        return _split_list(value)


# ---- watch mode: the Notify, Watch and Rematch functions ---------------------------------------------


class NotifySettings(_EnvSettings):
    """Environment of the Notify function. ``PORTWARDEN_NOTIFICATIONS_TABLE`` (the outbox),
    ``PORTWARDEN_NOTIFICATIONS_TOPIC_ARN`` (every notification is published there),
    ``PORTWARDEN_WEBHOOKS`` (JSON: ``{"general": {"url": ...}, "<type>": {...}}``) and
    ``PORTWARDEN_NOTIFICATION_RETRY_TIMEOUT`` (seconds a failing delivery is retried, through the
    queue)."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", case_sensitive=False, env_prefix="PORTWARDEN_"
    )

    notifications_table: str = Field(min_length=1)
    notifications_topic_arn: str | None = None
    webhooks: Annotated[WebhookSettings, NoDecode] = Field(default_factory=WebhookSettings)
    notification_retry_timeout: float = Field(default=3600.0, ge=0)
    aws_endpoint_url: str | None = None
    aws_region: str | None = Field(default=None, validation_alias="AWS_REGION")

    @field_validator("notifications_topic_arn", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # The template passes its empty parameter default through as "".
        return None if value == "" else value

    @field_validator("webhooks", mode="before")
    @classmethod
    def _endpoints(cls, value: object) -> object:
        # The variable holds the endpoints by type, as config.yaml does; empty configures none.
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else None
        if value is None:
            return WebhookSettings()
        if isinstance(value, dict) and "endpoints" not in value:
            return {"endpoints": value}
        return value

    @property
    def retry(self) -> RetrySettings:
        return RetrySettings(window_seconds=self.notification_retry_timeout)


class WatchSettings(ObservabilitySettings):
    """Environment of the Watch, AnalysisUpdates and Rematch functions: the notification queue they send
    to, the watch table (image namespace index, watcher state), and how a watch round uses its time.

    ``watch_stop_margin_seconds``: a round stops looking up tags this long before the function would be
    killed (the tags left are looked at next round); ``watch_parallel_registries``: how many registries
    are polled side by side."""

    notification_queue_url: str = Field(min_length=1, validation_alias="PORTWARDEN_NOTIFICATION_QUEUE_URL")
    watch_table: str = Field(min_length=3, validation_alias="PORTWARDEN_WATCH_TABLE")
    watch_stop_margin_seconds: int = Field(
        default=60, ge=5, le=600, validation_alias="PORTWARDEN_WATCH_STOP_MARGIN_SECONDS"
    )
    watch_parallel_registries: int = Field(
        default=8, ge=1, le=64, validation_alias="PORTWARDEN_WATCH_PARALLEL_REGISTRIES"
    )
