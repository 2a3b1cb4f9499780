"""Subscription rules in Anchore's vocabulary.

Tag subscriptions (``tag_update``, ``analysis_update``, ``vuln_update``, ``policy_eval``) are keyed by the
full tag (``registry/repo:tag``); ``repo_update`` by ``registry/repo`` with a JSON *string* value
``{"autosubscribe": bool, "lookuptag": "latest", "repotags": [...]}``. Adding an image creates the four
tag subscriptions (``ensure_tag_subscriptions`` in ``core.services.images``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime

from pydantic import Field, ValidationError

from portwarden.core.errors import InvalidRequestError
from portwarden.core.model.accounts import TAG_SUBSCRIPTION_TYPES, SubscriptionRecord, SubscriptionType
from portwarden.core.model.base import ValueObject
from portwarden.core.ports import SubscriptionStore


class RepoWatch(ValueObject):
    """The value of a ``repo_update`` subscription: what the repository watcher needs to remember."""

    autosubscribe: bool = False
    lookuptag: str = "latest"
    # The tags seen at the last look; a tag not in this list is new.
    repotags: tuple[str, ...] = Field(default=())

    @classmethod
    def parse(cls, value: str | None) -> RepoWatch:
        """The stored JSON string (``None`` or an empty string: the defaults).

        Anchore's own records carry ``tagcount`` rather than ``repotags``: unknown keys are ignored.
        """
        if not value:
            return cls()
        try:
            document = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"repo_update value is not JSON: {exc.msg}") from exc
        if not isinstance(document, dict):
            raise InvalidRequestError("repo_update value must be a JSON object")
        try:
            return cls.model_validate(
                {k: v for k, v in document.items() if k in ("autosubscribe", "lookuptag", "repotags")}
            )
        except ValidationError as exc:
            raise InvalidRequestError(f"repo_update value is invalid: {exc.errors()[0]['msg']}") from exc

    def dump(self) -> str:
        return json.dumps(
            {
                "autosubscribe": self.autosubscribe,
                "lookuptag": self.lookuptag,
                "repotags": list(self.repotags),
            },
            sort_keys=True,
        )

    def with_tags(self, tags: Iterable[str]) -> RepoWatch:
        return self.model_copy(update={"repotags": tuple(sorted(set(tags)))})


def split_repo_tag(full_tag: str) -> tuple[str, str]:
    """``registry/repo:tag`` -> (``registry/repo``, ``tag``); the tag is after the last colon past the
    last slash (a registry port is not a tag)."""
    slash = full_tag.rfind("/")
    colon = full_tag.rfind(":")
    if colon <= slash:
        raise InvalidRequestError(f"{full_tag!r} is not a full tag (registry/repository:tag)")
    return full_tag[:colon], full_tag[colon + 1 :]


def active(records: Iterable[SubscriptionRecord], kind: SubscriptionType) -> list[SubscriptionRecord]:
    """The active subscriptions of one type (only active subscriptions produce notifications)."""
    return [record for record in records if record.subscription_type is kind and record.active]


def is_active(records: Iterable[SubscriptionRecord], kind: SubscriptionType, key: str) -> bool:
    return any(r.active and r.subscription_type is kind and r.subscription_key == key for r in records)


def add_missing_tag_subscriptions(
    subscriptions: SubscriptionStore, repo_tag: str, now: datetime
) -> list[SubscriptionRecord]:
    """The four tag subscriptions of a watched tag, creating only those missing (``analysis_update``
    and ``tag_update`` active, the others inactive); existing ones stay exactly as their owner left
    them. The subscriptions the call created."""
    existing = {record.subscription_type for record in subscriptions.list_subscriptions(repo_tag)}
    created = []
    for kind in TAG_SUBSCRIPTION_TYPES:
        if kind in existing:
            continue
        created.append(
            subscriptions.add_subscription(
                SubscriptionRecord(
                    subscription_id=uuid.uuid4().hex,
                    subscription_key=repo_tag,
                    subscription_type=kind,
                    active=kind in (SubscriptionType.ANALYSIS_UPDATE, SubscriptionType.TAG_UPDATE),
                    created_at=now,
                    last_updated=now,
                )
            )
        )
    return created
