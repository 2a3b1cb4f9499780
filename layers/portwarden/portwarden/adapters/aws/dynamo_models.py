"""pynamodb item models for the store tables, bound to table names at run time.

pynamodb reads ``Meta`` when a class is created, but table names are known only from settings (and
tests create tables with their own names). So each item shape is a base class without ``Meta``, and a
small cached factory returns a subclass bound to one (table, region, endpoint); pynamodb deep-copies
indexes per subclass, so two bindings never share an index or a connection.

``TABLE_DEFINITIONS`` (in ``stores.py``) states the same keys and indexes as CreateTable parameters,
for the SAM template and the test fixtures; a test checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import NamedTuple, TypeVar

from pynamodb.attributes import BinaryAttribute, ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from portwarden.adapters.aws.clients import share_loader_with_pynamodb
from portwarden.core.errors import StoreError
from portwarden.core.model.accounts import ADMIN_ACCOUNT

# Every table model's connection parses DynamoDB's service model once for the process, not once per
# table (adapters/aws/clients.py).
share_loader_with_pynamodb()

# Keys of per-account records: account ``admin`` keeps the bare values (items written before tables
# had accounts are its own), every other account's keys are "<account>|<value>". "|" never occurs in
# an account name, a digest or an image reference, so no key of one account can be another's.
ACCOUNT_SEPARATOR = "|"


def account_key(account: str, value: str) -> str:
    """``value`` as a key of ``account``'s records (see ``ACCOUNT_SEPARATOR``).

    A value holding the separator has no key (it could name another account's record): the answer is
    then ``""``, under which nothing is ever stored (DynamoDB refuses empty keys, so a write fails and
    a read finds nothing).
    """
    if not value or ACCOUNT_SEPARATOR in value:
        return ""
    return value if account == ADMIN_ACCOUNT else f"{account}{ACCOUNT_SEPARATOR}{value}"


def unscoped(account: str, key: str) -> str:
    """The value ``account_key`` made ``key`` from."""
    if account == ADMIN_ACCOUNT:
        return key
    return key.removeprefix(f"{account}{ACCOUNT_SEPARATOR}")


# Every image item carries this constant in ``listing``: the partition of the by_created index, which
# lists all images newest first. One partition is fine at catalog scale (thousands of images).
IMAGE_LISTING = "image"
# Policies table: the item that names the active bundle (bundle ids never start with '#').
ACTIVE_POINTER_ID = "#active"
# Events table (partitions scoped by ``account_key``): the partition that lists which days have
# events, one item per day, and the one that maps each event id to its day and time.
DAY_INDEX_PARTITION = "#days"
EVENT_ID_PARTITION = "#ids"
# Feed metadata table: the vulnerability database pointer item, and the feed-sync workflow's state
# (the last merge, each source's own database and NVD checkpoint: one item per source) and lease.
VULNDB_POINTER_NAME = "vulndb"
FEED_SYNC_STATE_NAME = "#feed-sync"
FEED_SYNC_LEASE_NAME = "#feed-sync-lease"
# Feeds and groups disabled through the API (read by the feed sync and the match phase).
FEED_SETTINGS_NAME = "#feed-settings"
FEED_SYNC_SOURCE_PREFIX = "#feed-sync-source|"

BY_CREATED_INDEX = "by_created"
BY_STATUS_INDEX = "by_status"


class TableBinding(NamedTuple):
    table_name: str
    region: str | None = None
    host: str | None = None


# ---- images ----------------------------------------------------------------------------------------


# pynamodb leaves Index.__init_subclass__ unannotated.
class ImagesByCreated(GlobalSecondaryIndex["ImageItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = BY_CREATED_INDEX
        projection = AllProjection()

    listing = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class ImagesByStatus(GlobalSecondaryIndex["ImageItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = BY_STATUS_INDEX
        projection = AllProjection()

    analysis_status = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class ImageItem(Model):
    image_digest = UnicodeAttribute(hash_key=True)
    listing = UnicodeAttribute(default=IMAGE_LISTING)
    # "<created_at UTC>#<image_digest>": time order, with the digest breaking ties deterministically.
    created_key = UnicodeAttribute()
    analysis_status = UnicodeAttribute()
    image_id = UnicodeAttribute(null=True)
    # pynamodb types ``of`` as the element type, but it takes the attribute class that stores it.
    repo_tags = ListAttribute[str](of=UnicodeAttribute, default=list)  # type: ignore[arg-type]
    source = UnicodeAttribute(null=True)
    platform = UnicodeAttribute(null=True)
    distro = UnicodeAttribute(null=True)
    package_count = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    analyzed_at = UnicodeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    # The analysis claim while analyzing: its owner (an execution ARN) and deadline (a timestamp).
    claim_owner = UnicodeAttribute(null=True)
    claim_deadline = UnicodeAttribute(null=True)

    by_created = ImagesByCreated()
    by_status = ImagesByStatus()


class TagItem(Model):
    repo_tag = UnicodeAttribute(hash_key=True)
    image_digest = UnicodeAttribute()
    updated_at = UnicodeAttribute()


# ---- evaluations, bundles, events, feed metadata ------------------------------------------------------


class EvaluationItem(Model):
    image_digest = UnicodeAttribute(hash_key=True)
    # "<evaluated_at UTC>#<evaluation_id>": a query in reverse order finds the latest first.
    evaluated_key = UnicodeAttribute(range_key=True)
    evaluation_id = UnicodeAttribute()
    repo_tag = UnicodeAttribute(null=True)
    bundle_id = UnicodeAttribute()
    final_action = UnicodeAttribute()
    status = UnicodeAttribute()
    evaluated_at = UnicodeAttribute()
    # The result document, zstd-compressed JSON: inline when small, else an S3 key.
    document = BinaryAttribute(null=True, legacy_encoding=False)
    document_key = UnicodeAttribute(null=True)
    # The table's TTL attribute (epoch seconds): set once a newer evaluation for the same image and
    # tag supersedes this one; the current evaluation never expires.
    expires_at = NumberAttribute(null=True)


class BundleItem(Model):
    """A policy bundle, or (with ``bundle_id == ACTIVE_POINTER_ID``) the active-bundle pointer."""

    bundle_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    document = BinaryAttribute(null=True, legacy_encoding=False)
    document_key = UnicodeAttribute(null=True)
    active_bundle_id = UnicodeAttribute(null=True)


class EventItem(Model):
    """An event (partition = its account's UTC day), a day-index entry (partition
    ``DAY_INDEX_PARTITION``) or an id entry (partition ``EVENT_ID_PARTITION``: ``event_id`` and
    ``timestamp`` name the event), every partition scoped by ``account_key``."""

    day = UnicodeAttribute(hash_key=True)
    # Events: "<timestamp UTC>#<event_id>"; day-index entries: "YYYY-MM-DD"; id entries: the event id.
    event_key = UnicodeAttribute(range_key=True)
    event_id = UnicodeAttribute(null=True)
    type = UnicodeAttribute(null=True)
    level = UnicodeAttribute(null=True)
    resource_type = UnicodeAttribute(null=True)
    resource_id = UnicodeAttribute(null=True)
    message = UnicodeAttribute(null=True)
    details = UnicodeAttribute(null=True)
    timestamp = UnicodeAttribute(null=True)
    # The table's TTL attribute (epoch seconds): the event's time plus the retention period.
    expires_at = NumberAttribute(null=True)


class FeedItem(Model):
    name = UnicodeAttribute(hash_key=True)
    location = UnicodeAttribute()
    sha256 = UnicodeAttribute()
    built_at = UnicodeAttribute()
    schema_version = NumberAttribute()
    record_count = NumberAttribute(default=0)
    updated_at = UnicodeAttribute()


class FeedSyncStateItem(Model):
    """The workflow's last merge or a source's database (``working``: JSON), or its lease
    (``lease_owner``/``lease_until``)."""

    name = UnicodeAttribute(hash_key=True)
    working = UnicodeAttribute(null=True)
    lease_owner = UnicodeAttribute(null=True)
    lease_until = UnicodeAttribute(null=True)
    # ``FEED_SETTINGS_NAME`` only: the ``FeedSettings`` as JSON.
    settings = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


# ---- errors ------------------------------------------------------------------------------------------


@contextmanager
def dynamodb_errors(action: str) -> Iterator[None]:
    """DynamoDB and connection failures as the stores' ``StoreError``, naming what was being done
    and the service's error code (never the item, which may hold credentials)."""
    from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]

    try:
        yield
    except PynamoDBException as exc:
        code = exc.cause_response_code or type(exc).__name__
        raise StoreError(f"cannot {action} ({code})") from exc
    except BotoCoreError as exc:
        raise StoreError(f"cannot {action} ({type(exc).__name__})") from exc


# ---- the factory ---------------------------------------------------------------------------------------

_ItemT = TypeVar("_ItemT", bound=Model)


def _bind(base: type[_ItemT], binding: TableBinding) -> type[_ItemT]:
    """``base`` bound to one table (its name, region and endpoint): a new model class."""
    meta = type(
        "Meta",
        (),
        {
            "table_name": binding.table_name,
            "region": binding.region,
            "host": binding.host,
            "billing_mode": "PAY_PER_REQUEST",
        },
    )
    # type() runs pynamodb's metaclass: indexes are copied onto the new class and point at it.
    bound: type[_ItemT] = type(f"{base.__name__}_{binding.table_name}", (base,), {"Meta": meta})
    return bound


@lru_cache(maxsize=64)
def bind_model(base: type[_ItemT], binding: TableBinding) -> type[_ItemT]:
    """``base`` bound to one table, once per table for the life of the process (thread-safe: a
    race builds two equal classes and keeps one)."""
    return _bind(base, binding)


@lru_cache(maxsize=64)
def image_model(binding: TableBinding) -> type[ImageItem]:
    return _bind(ImageItem, binding)


@lru_cache(maxsize=64)
def tag_model(binding: TableBinding) -> type[TagItem]:
    return _bind(TagItem, binding)


@lru_cache(maxsize=64)
def evaluation_model(binding: TableBinding) -> type[EvaluationItem]:
    return _bind(EvaluationItem, binding)


@lru_cache(maxsize=64)
def bundle_model(binding: TableBinding) -> type[BundleItem]:
    return _bind(BundleItem, binding)


@lru_cache(maxsize=64)
def event_model(binding: TableBinding) -> type[EventItem]:
    return _bind(EventItem, binding)


@lru_cache(maxsize=64)
def feed_model(binding: TableBinding) -> type[FeedItem]:
    return _bind(FeedItem, binding)


@lru_cache(maxsize=64)
def feed_sync_state_model(binding: TableBinding) -> type[FeedSyncStateItem]:
    return _bind(FeedSyncStateItem, binding)
