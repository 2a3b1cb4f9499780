"""Tenancy and service records: accounts, users, registries, subscriptions, queued analyses.

Every record an account owns (images, analyses, evaluations, bundles, registries, subscriptions,
events) is stored under that account; the account is bound when a store is opened for it, so the
records themselves do not repeat it. Anchore's vocabularies are kept where clients read them.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import Field, field_validator

from portwarden.core.model.base import ValueObject
from portwarden.core.model.records import EventRecord

ADMIN_ACCOUNT = "admin"
"""The account created on first start; existing single-user data belongs to it."""

# Anchore's rule for account and user names: letters, digits and a few separators, no slash.
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9@.!#$+\-=^_`~;]{1,128}$")


def valid_name(value: str) -> str:
    if not _NAME_PATTERN.fullmatch(value):
        raise ValueError(
            "names are 1-128 characters of letters, digits and @.!#$+-=^_`~; (no spaces or slashes)"
        )
    return value


class AccountState(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETING = "deleting"


class AccountType(StrEnum):
    USER = "user"
    ADMIN = "admin"
    SERVICE = "service"


class AccountRecord(ValueObject):
    name: str
    email: str | None = None
    type: AccountType = AccountType.USER
    state: AccountState = AccountState.ENABLED
    created_at: datetime
    last_updated: datetime

    _name = field_validator("name")(valid_name)


class UserRecord(ValueObject):
    """A user of one account. ``password_hash`` is a self-describing memory-hard hash, never the password."""

    username: str
    account: str
    password_hash: str
    type: str = "native"
    source: str | None = None
    created_at: datetime
    last_updated: datetime

    _username = field_validator("username")(valid_name)


class RegistryRecord(ValueObject):
    """Credentials for pulling from a registry (``host[:port]``, optionally a repository prefix).

    The password is kept because pulls need it; the API never returns it and logs never name it.
    """

    registry: str
    registry_name: str | None = None
    registry_user: str
    registry_pass: str = Field(repr=False)
    registry_type: str = "docker_v2"
    registry_verify: bool = True
    created_at: datetime
    last_updated: datetime


class SubscriptionType(StrEnum):
    TAG_UPDATE = "tag_update"
    ANALYSIS_UPDATE = "analysis_update"
    VULN_UPDATE = "vuln_update"
    POLICY_EVAL = "policy_eval"
    REPO_UPDATE = "repo_update"


TAG_SUBSCRIPTION_TYPES = (
    SubscriptionType.POLICY_EVAL,
    SubscriptionType.TAG_UPDATE,
    SubscriptionType.VULN_UPDATE,
    SubscriptionType.ANALYSIS_UPDATE,
)


class SubscriptionRecord(ValueObject):
    subscription_id: str
    subscription_key: str
    subscription_type: SubscriptionType
    # Anchore keeps this as a JSON *string* (repo_update: {"autosubscribe", "lookuptag", "tagcount"}).
    subscription_value: str | None = None
    active: bool = False
    created_at: datetime
    last_updated: datetime


class EventQuery(ValueObject):
    """Filters of ``GET /events``; ``event_type`` is a prefix, with ``*`` as a wildcard."""

    since: datetime | None = None
    before: datetime | None = None
    level: str | None = None
    event_type: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    page: int = Field(default=1, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)


class EventPage(ValueObject):
    events: tuple[EventRecord, ...]
    page: int
    next_page: bool


class ImportStatus(StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"
    EXPIRED = "expired"


IMPORT_CONTENT_KINDS = ("packages", "dockerfile", "manifest", "parent_manifest", "image_config")


class ImportOperation(ValueObject):
    """An SBOM import in progress: its parts are uploaded, then ``POST /images`` finishes it."""

    uuid: str
    status: ImportStatus = ImportStatus.PENDING
    created_at: datetime
    expires_at: datetime


class QueueState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"


class QueuedAnalysis(ValueObject):
    """One analysis waiting for (or held by) a worker; queueing one (account, digest) twice is a no-op."""

    account: str
    image_digest: str
    source: str
    platform: str
    repo_tag: str | None = None
    force: bool = False
    state: QueueState = QueueState.QUEUED
    attempts: int = 0
    enqueued_at: datetime
