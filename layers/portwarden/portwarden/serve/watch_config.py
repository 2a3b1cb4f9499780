"""Watch and notification settings from ``config.yaml`` under PORTWARDEN_HOME, and the channels they
configure.

The file speaks Anchore's vocabulary where it has one::

    webhooks:
      general: {url: "https://hooks.example/<userId>/<notification_type>", secret: "..."}
      policy_eval: {url: "https://policy.example/in", username: "u", password: "p", ssl_verify: true}
      notification_retry_timeout: 3600      # seconds a failing delivery is retried
    smtp:
      host: smtp.example
      port: 587
      starttls: true
      username: portwarden
      password: "..."
      sender: portwarden@example
      recipients: {general: [ops@example], policy_eval: [security@example]}
    sns:
      topic_arn: arn:aws:sns:eu-west-1:123456789012:portwarden-notifications
    watch:
      tag_interval: 3600        # seconds between polls of watched tags (Anchore's default)
      repo_interval: 60         # seconds between polls of watched repositories
      policy_interval: 3600     # seconds between scheduled re-evaluations

A missing file is the defaults (no channel: notifications are still events). An invalid one is an
error naming the file and the field, never silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from portwarden.core.errors import ConfigurationError
from portwarden.core.ports import NotificationChannel
from portwarden.core.watch.config import NotificationSettings, WebhookEndpoint

CONFIG_FILE = "config.yaml"


def load_settings(home: Path, *, webhook_url: str | None = None) -> tuple[NotificationSettings, str | None]:
    """The settings in ``home/config.yaml`` (and the SNS topic, if any); ``webhook_url`` (``serve
    --webhook-url``) replaces the general webhook's URL."""
    path = home / CONFIG_FILE
    document: Any = {}
    if path.exists():
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigurationError(f"{path}: expected a mapping at the top level")
    webhooks = dict(document.get("webhooks") or {})
    retry = dict(document.get("retry") or {})
    if "notification_retry_timeout" in webhooks:
        retry["window_seconds"] = webhooks.pop("notification_retry_timeout")
    if webhook_url is not None:
        general = dict(webhooks.get("general") or {})
        general["url"] = webhook_url
        webhooks["general"] = general
    sns = document.get("sns") or {}
    try:
        settings = NotificationSettings.model_validate(
            {
                "webhooks": {"endpoints": webhooks},
                "smtp": document.get("smtp"),
                "retry": retry,
                "watch": document.get("watch") or {},
            }
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'] if part != 'endpoints')}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"{path}: {problems}") from exc
    topic = sns.get("topic_arn") if isinstance(sns, dict) else None
    return settings, str(topic) if topic else None


def channels_for(settings: NotificationSettings, sns_topic: str | None = None) -> list[NotificationChannel]:
    from portwarden.adapters.http.webhooks import WebhookChannel
    from portwarden.adapters.local.smtp_email import SmtpChannel

    channels: list[NotificationChannel] = []
    if settings.webhooks.endpoints:
        channels.append(WebhookChannel(settings.webhooks, timeout=settings.retry.timeout))
    if settings.smtp is not None:
        channels.append(SmtpChannel(settings.smtp))
    if sns_topic:
        from portwarden.adapters.aws.sns import SnsChannel

        channels.append(SnsChannel(sns_topic))
    return channels


__all__ = ["CONFIG_FILE", "WebhookEndpoint", "channels_for", "load_settings"]
