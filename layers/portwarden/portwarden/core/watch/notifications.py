"""Notifications: what a subscriber is told, in Anchore's envelope, and the event each one also is.

A notification has an id derived from what it reports (account, type, key and the change itself), so
the same change noticed twice (a retried watcher round, a redelivered queue message) is the same
notification, and each delivery target gets it at most once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from portwarden.core.model.base import ValueObject

# Anchore's default for webhooks.notification_retry_timeout is 30 s; ours is longer since a receiver
# that is down for a few minutes (a redeploy) should still get what happened meanwhile.
DEFAULT_RETRY_WINDOW_SECONDS = 3600.0


class NotificationType(StrEnum):
    TAG_UPDATE = "tag_update"
    ANALYSIS_UPDATE = "analysis_update"
    VULN_UPDATE = "vuln_update"
    POLICY_EVAL = "policy_eval"


# Every notification is also an event (readable through /events); Anchore's names where it has them.
EVENT_TYPES: dict[NotificationType, str] = {
    NotificationType.TAG_UPDATE: "user.checks.tag.digest.update",
    NotificationType.ANALYSIS_UPDATE: "user.image.analysis.update",
    NotificationType.VULN_UPDATE: "user.checks.tag.vulnerabilities.update",
    NotificationType.POLICY_EVAL: "user.checks.tag.policy_evaluation.update",
}
ANALYSIS_COMPLETED_EVENT = "user.image.analysis.completed"
ANALYSIS_FAILED_EVENT = "user.image.analysis.failed"
DELIVERY_FAILED_EVENT = "system.notifications.delivery_failed"
LIST_TAGS_FAILED_EVENT = "system.repository.list_tags_fail"
TAG_LOOKUP_FAILED_EVENT = "system.image_analysis.registry_lookup_failed"


def analysis_event_type(status: str) -> str:
    """``analysis_update`` to ``analyzed`` is Anchore's ``…completed``, to ``analysis_failed`` ``…failed``."""
    if status == "analyzed":
        return ANALYSIS_COMPLETED_EVENT
    if status == "analysis_failed":
        return ANALYSIS_FAILED_EVENT
    return EVENT_TYPES[NotificationType.ANALYSIS_UPDATE]


class Notification(ValueObject):
    notification_id: str
    notification_type: NotificationType
    account: str
    subscription_key: str
    # The type-specific fields of ``notification_payload`` (last_eval/curr_eval, diff_vulnerability_result…).
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    severity_max: str | None = None
    user_email: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)

    @property
    def event_type(self) -> str:
        if self.notification_type is NotificationType.ANALYSIS_UPDATE:
            current = self.payload.get("curr_eval")
            if isinstance(current, dict):
                return analysis_event_type(str(current.get("analysis_status", "")))
        return EVENT_TYPES[self.notification_type]

    def envelope(self, *, tries: int = 0, max_tries: int | None = None) -> dict[str, Any]:
        """Anchore's notification envelope, as posted to webhooks."""
        created = _iso(self.created_at)
        payload: dict[str, Any] = {
            "userId": self.account,
            "subscription_key": self.subscription_key,
            "subscription_type": self.notification_type.value,
            "notificationId": self.notification_id,
            **self.payload,
        }
        if self.annotations:
            payload["annotations"] = dict(self.annotations)
        return {
            "queueId": self.notification_type.value,
            "userId": self.account,
            "dataId": self.notification_id,
            "created_at": created,
            "last_updated": created,
            "record_state_key": "active",
            "tries": tries,
            "max_tries": max_tries if max_tries is not None else tries,
            "data": {
                "notification_user": self.account,
                "notification_user_email": self.user_email,
                "notification_type": self.notification_type.value,
                "notification_payload": payload,
            },
        }

    def summary(self) -> str:
        """One line for an email subject and an event message."""
        kind = self.notification_type
        if kind is NotificationType.TAG_UPDATE:
            return f"{self.subscription_key} now points at {_first(self.payload.get('curr_eval'))}"
        if kind is NotificationType.ANALYSIS_UPDATE:
            current = self.payload.get("curr_eval") or {}
            status = current.get("analysis_status") if isinstance(current, dict) else None
            return f"analysis of {self.subscription_key} is {status}"
        if kind is NotificationType.VULN_UPDATE:
            diff = self.payload.get("diff_vulnerability_result") or {}
            counts = {name: len(diff.get(name, ())) for name in ("added", "removed", "updated")}
            return (
                f"vulnerabilities of {self.subscription_key} changed: {counts['added']} added, "
                f"{counts['removed']} removed, {counts['updated']} updated"
            )
        last = self.payload.get("last_eval") or {}
        current = self.payload.get("curr_eval") or {}
        return f"policy result of {self.subscription_key}: {last.get('status')} -> {current.get('status')}"


def _first(value: Any) -> str:
    if isinstance(value, list) and value:
        return str(value[0])
    return str(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def notification_id(
    account: str, kind: NotificationType, subscription_key: str, change: dict[str, Any]
) -> str:
    """A stable id: the same change of the same subscription is the same notification."""
    identity = json.dumps(
        {"account": account, "type": kind.value, "key": subscription_key, "change": change},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def make_notification(
    kind: NotificationType,
    *,
    account: str,
    subscription_key: str,
    payload: dict[str, Any],
    identity: dict[str, Any],
    now: datetime,
    severity_max: str | None = None,
    annotations: dict[str, str] | None = None,
    user_email: str | None = None,
) -> Notification:
    """A notification whose id derives from ``identity`` (what distinguishes this change from others)."""
    return Notification(
        notification_id=notification_id(account, kind, subscription_key, identity),
        notification_type=kind,
        account=account,
        subscription_key=subscription_key,
        payload=payload,
        created_at=now,
        severity_max=severity_max,
        annotations=dict(annotations or {}),
        user_email=user_email,
    )


# The tag a synthetic (test) notification names; nothing is ever analyzed under it.
SYNTHETIC_SUBSCRIPTION_KEY = "docker.io/portwarden/test:latest"


def synthetic_notification(
    kind: NotificationType, *, account: str, nonce: str, now: datetime
) -> Notification:
    """A notification of ``kind`` in the shape a real one has, marked ``"test": true`` (``POST
    /system/webhooks/{type}/test``); ``nonce`` makes each test send a notification of its own."""
    before, after = "sha256:" + "0" * 64, "sha256:" + "1" * 64
    payloads: dict[NotificationType, dict[str, Any]] = {
        NotificationType.TAG_UPDATE: {"last_eval": [before], "curr_eval": [after]},
        NotificationType.ANALYSIS_UPDATE: {
            "last_eval": {"imageDigest": before, "analysis_status": "analyzing", "annotations": {}},
            "curr_eval": {"imageDigest": before, "analysis_status": "analyzed", "annotations": {}},
        },
        NotificationType.VULN_UPDATE: {
            "imageDigest": before,
            "diff_vulnerability_result": {"added": [], "removed": [], "updated": []},
        },
        NotificationType.POLICY_EVAL: {
            "last_eval": {"image_digest": before, "status": "pass", "final_action": "go"},
            "curr_eval": {"image_digest": before, "status": "fail", "final_action": "stop"},
        },
    }
    return make_notification(
        kind,
        account=account,
        subscription_key=SYNTHETIC_SUBSCRIPTION_KEY,
        payload={**payloads.get(kind, {}), "test": True},
        identity={"test": nonce},
        now=now,
    )


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"  # this attempt failed; another one is due
    FAILED = "failed"  # gave up: the retry window is over, or the target refused for good
    SKIPPED = "skipped"  # already delivered to this target (a redelivered notification)


class DeliveryAttempt(ValueObject):
    """One attempt to deliver one notification to one target; the delivery log keeps every one."""

    notification_id: str
    notification_type: NotificationType
    account: str
    target: str
    attempt: int
    outcome: DeliveryOutcome
    detail: str = ""
    status_code: int | None = None
    attempted_at: datetime
    next_attempt_at: datetime | None = None
