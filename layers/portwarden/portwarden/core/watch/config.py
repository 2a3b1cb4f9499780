"""Delivery and watch settings, as Anchore spells them where it has a name (``webhooks.<type>.url``).

Validated here; read from ``config.yaml`` under PORTWARDEN_HOME and from ``serve`` options at the edge
(the core never reads files or the environment).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from portwarden.core.model.base import ValueObject
from portwarden.core.watch.notifications import DEFAULT_RETRY_WINDOW_SECONDS, NotificationType

GENERAL = "general"
# Anchore's default polling intervals (seconds).
DEFAULT_TAG_WATCH_INTERVAL = 3600.0
DEFAULT_REPO_WATCH_INTERVAL = 60.0
DEFAULT_POLICY_EVAL_INTERVAL = 3600.0


class WebhookEndpoint(ValueObject):
    """One webhook: ``url`` may hold ``<userId>`` and ``<notification_type>`` placeholders."""

    url: str
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    ssl_verify: bool = True
    # Signs each body with HMAC-SHA256 (header ``X-Portwarden-Signature-256: sha256=<hex>``).
    secret: str | None = Field(default=None, repr=False)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("a webhook url starts with http:// or https://")
        return value

    def render(self, account: str, notification_type: str) -> str:
        return self.url.replace("<userId>", account).replace("<notification_type>", notification_type)


class WebhookSettings(ValueObject):
    """``general`` is the fallback for a type without its own endpoint."""

    endpoints: dict[str, WebhookEndpoint] = Field(default_factory=dict)

    @field_validator("endpoints")
    @classmethod
    def _known_types(cls, value: dict[str, WebhookEndpoint]) -> dict[str, WebhookEndpoint]:
        allowed = {GENERAL, *(kind.value for kind in NotificationType)}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"webhooks for unknown notification types: {', '.join(unknown)}")
        return value

    def endpoint_for(self, notification_type: str) -> WebhookEndpoint | None:
        return self.endpoints.get(notification_type) or self.endpoints.get(GENERAL)


class SmtpSettings(ValueObject):
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    ssl_verify: bool = True
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    sender: str
    # Recipients per notification type, with ``general`` as the fallback.
    recipients: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0)

    def recipients_for(self, notification_type: str) -> tuple[str, ...]:
        return self.recipients.get(notification_type) or self.recipients.get(GENERAL) or ()


class RetrySettings(ValueObject):
    """How long a failing delivery is retried, with exponential backoff between attempts."""

    window_seconds: float = Field(default=DEFAULT_RETRY_WINDOW_SECONDS, ge=0)
    initial_delay: float = Field(default=2.0, gt=0)
    max_delay: float = Field(default=300.0, gt=0)
    timeout: float = Field(default=10.0, gt=0)

    def delay(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1`` after attempt ``attempt`` (1-based) failed."""
        return float(min(self.max_delay, self.initial_delay * 2.0 ** max(0, attempt - 1)))


class WatchSettings(ValueObject):
    tag_interval: float = Field(default=DEFAULT_TAG_WATCH_INTERVAL, gt=0)
    repo_interval: float = Field(default=DEFAULT_REPO_WATCH_INTERVAL, gt=0)
    policy_interval: float = Field(default=DEFAULT_POLICY_EVAL_INTERVAL, gt=0)


class NotificationSettings(ValueObject):
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    smtp: SmtpSettings | None = None
    retry: RetrySettings = Field(default_factory=RetrySettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)
