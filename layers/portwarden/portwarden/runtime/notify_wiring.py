"""Settings and adapters of the Notify function (SQS queue of notifications -> SNS and webhooks).

Kept beside ``wiring`` for the one function that uses them; cached per container like the rest.
"""

from __future__ import annotations

from functools import cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from portwarden.adapters.aws.outbox import DynamoOutbox
from portwarden.adapters.aws.sns import SnsChannel
from portwarden.adapters.http.webhooks import WebhookChannel
from portwarden.core.ports import EventStore, NotificationChannel
from portwarden.core.watch.config import RetrySettings, WebhookSettings


class NotifySettings(BaseSettings):
    """``PORTWARDEN_NOTIFICATIONS_TABLE`` (the outbox), ``PORTWARDEN_NOTIFICATIONS_TOPIC_ARN`` (every
    notification is published there), ``PORTWARDEN_WEBHOOKS`` (JSON: ``{"general": {"url": ...},
    "<type>": {...}}``) and ``PORTWARDEN_NOTIFICATION_RETRY_TIMEOUT`` (seconds a failing delivery is
    retried, through the queue)."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", case_sensitive=False, env_prefix="PORTWARDEN_"
    )

    notifications_table: str = Field(min_length=1)
    notifications_topic_arn: str | None = None
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    notification_retry_timeout: float = Field(default=3600.0, ge=0)
    aws_endpoint_url: str | None = None
    aws_region: str | None = Field(default=None, validation_alias="AWS_REGION")

    @field_validator("webhooks", mode="before")
    @classmethod
    def _endpoints(cls, value: object) -> object:
        # The variable holds the endpoints by type, as config.yaml does.
        if isinstance(value, dict) and "endpoints" not in value:
            return {"endpoints": value}
        return value

    @property
    def retry(self) -> RetrySettings:
        return RetrySettings(window_seconds=self.notification_retry_timeout)


@cache
def settings() -> NotifySettings:
    return NotifySettings()  # type: ignore[call-arg]  # read from the environment


@cache
def outbox() -> DynamoOutbox:
    configured = settings()
    return DynamoOutbox(
        configured.notifications_table, region=configured.aws_region, host=configured.aws_endpoint_url
    )


@cache
def channels() -> tuple[NotificationChannel, ...]:
    configured = settings()
    found: list[NotificationChannel] = []
    if configured.notifications_topic_arn:
        found.append(SnsChannel(configured.notifications_topic_arn, endpoint_url=configured.aws_endpoint_url))
    if configured.webhooks.endpoints:
        found.append(WebhookChannel(configured.webhooks, timeout=configured.retry.timeout))
    return tuple(found)


def events_for(_account: str) -> EventStore:
    # The AWS stores are single-account for now: every account's events go to the one event table.
    from portwarden.runtime import wiring

    return wiring.stores().events


def reset() -> None:
    for builder in (settings, outbox, channels):
        builder.cache_clear()
