"""SNS delivery: every notification published to the stack's topic with message attributes, so that
email, SQS or Lambda subscribers pick what they want with subscription filter policies.

Attributes: ``notification_type``, ``account``, ``subscription_key``, ``notification_id``, for
``vuln_update`` ``severity_max`` (the highest severity added or updated), for ``policy_eval``
``policy_status`` (the current pass/fail). The message is Anchore's envelope as JSON (SNS caps a message
at 256 KiB: a larger one is sent without ``diff_vulnerability_result`` entries, with the counts, and
says so).
"""

from __future__ import annotations

import json
from typing import Any

from portwarden.adapters.aws.clients import LazyClient
from portwarden.adapters.aws.s3 import client_error_code
from portwarden.core.errors import DeliveryError
from portwarden.core.watch.notifications import Notification, NotificationType

SNS_MAX_BYTES = 256 * 1024
# Throttling and service faults pass; anything else (a topic that does not exist, no permission, an
# invalid parameter) does not fix itself by waiting.
_RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "KMSThrottlingException",
    }
)


def message_attributes(notification: Notification) -> dict[str, dict[str, str]]:
    attributes = {
        "notification_type": notification.notification_type.value,
        "account": notification.account,
        "subscription_key": notification.subscription_key,
        "notification_id": notification.notification_id,
    }
    if notification.notification_type is NotificationType.VULN_UPDATE and notification.severity_max:
        attributes["severity_max"] = notification.severity_max
    if notification.notification_type is NotificationType.POLICY_EVAL:
        current = notification.payload.get("curr_eval")
        if isinstance(current, dict) and current.get("status"):
            attributes["policy_status"] = str(current["status"])
    return {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()}


def sns_message(notification: Notification) -> str:
    envelope = notification.envelope()
    text = json.dumps(envelope, sort_keys=True)
    if len(text.encode()) <= SNS_MAX_BYTES:
        return text
    payload = envelope["data"]["notification_payload"]
    diff = payload.get("diff_vulnerability_result")
    if isinstance(diff, dict):
        payload["diff_vulnerability_result"] = {name: [] for name in diff}
        payload["diff_counts"] = {name: len(entries) for name, entries in diff.items()}
    for name in ("last_eval", "curr_eval"):
        if isinstance(payload.get(name), dict):
            payload[name] = {
                key: payload[name].get(key)
                for key in ("image_digest", "status", "final_action")
                if key in payload[name]
            }
    payload["truncated"] = True
    return json.dumps(envelope, sort_keys=True)


class SnsChannel:
    name = "sns"

    def __init__(
        self,
        topic_arn: str,
        client: Any | None = None,
        *,
        session: Any | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self._topic_arn = topic_arn
        self._client = LazyClient("sns", client, session=session, region=region, endpoint_url=endpoint_url)

    def _sns(self) -> Any:
        return self._client.get()

    def target_for(self, notification: Notification) -> str | None:
        return self._topic_arn

    def send(self, notification: Notification, target: str, attempt: int) -> int | None:
        try:
            self._sns().publish(
                TopicArn=target,
                Message=sns_message(notification),
                Subject=f"portwarden {notification.notification_type.value}"[:100],
                MessageAttributes=message_attributes(notification),
            )
        except Exception as exc:
            code = client_error_code(exc)
            if not code:
                # Not an AWS error answer: a connection problem, which may pass.
                raise DeliveryError(f"SNS publish failed: {type(exc).__name__}") from exc
            raise DeliveryError(f"SNS publish refused: {code}", retryable=code in _RETRYABLE_CODES) from exc
        return 200
