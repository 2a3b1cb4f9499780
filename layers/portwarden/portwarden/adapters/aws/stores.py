"""Every store port on DynamoDB (pynamodb) and S3. Tables, keys and item shapes: docs/dynamodb.md.

Conventions shared with the SQLite adapter, so that one contract test suite holds for both:

* timestamps are fixed-width UTC ISO strings (they sort as text; naive datetimes are taken as UTC);
* listings are newest first with a deterministic tie-break (the digest or id in the sort key);
* ``set_status`` is one conditional UpdateItem, so duplicate triggers start one analysis;
* exactly one bundle is active because "active" is a single pointer item, not a flag on each bundle
  (no transaction needed, so it also runs on emulators without TransactWriteItems);
* reads of single items and base-table queries are strongly consistent (a Lambda that just wrote an
  item must read it back); GSI listings are eventually consistent, as DynamoDB allows no other.

Errors from pynamodb/botocore become ``StoreError`` (``NotFoundError`` where the port says so).
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import size
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from portwarden.adapters.aws.clients import new_boto3_session
from portwarden.adapters.aws.dynamo_models import (
    ACCOUNT_SEPARATOR,
    ACTIVE_POINTER_ID,
    BY_CREATED_INDEX,
    BY_STATUS_INDEX,
    DAY_INDEX_PARTITION,
    EVENT_ID_PARTITION,
    FEED_SETTINGS_NAME,
    FEED_SYNC_LEASE_NAME,
    FEED_SYNC_SOURCE_PREFIX,
    FEED_SYNC_STATE_NAME,
    IMAGE_LISTING,
    VULNDB_POINTER_NAME,
    BundleItem,
    EvaluationItem,
    EventItem,
    ImageItem,
    TableBinding,
    TagItem,
    account_key,
    bundle_model,
    dynamodb_errors,
    evaluation_model,
    event_model,
    feed_model,
    feed_sync_state_model,
    image_model,
    tag_model,
    unscoped,
)
from portwarden.adapters.aws.s3 import (
    S3BlobStore,
    client_error_code,
    compress_document,
    compress_json,
    decompress_document,
)
from portwarden.adapters.aws.settings import (
    TABLE_PURPOSES,
    AwsStoreSettings,
)
from portwarden.core.errors import NotFoundError, StoreError
from portwarden.core.model.accounts import ADMIN_ACCOUNT, EventPage, EventQuery
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.base import ValueObject
from portwarden.core.model.feedsync import FeedSettings, SourceDatabase, WorkingDatabase
from portwarden.core.model.match import Match, MatchCounts
from portwarden.core.model.records import (
    REPO_TAGS_KEPT,
    AnalysisClaim,
    AnalysisStatus,
    AnalyzedSummary,
    DbPointer,
    EvaluationRecord,
    EventRecord,
    ImageRecord,
    StoredBundle,
    TagRecord,
)
from portwarden.core.services.events import event_matches

_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_CONDITION_FAILED = "ConditionalCheckFailedException"
# Rewrites of a full tag list that lose a race are retried this often before giving up.
_TAG_LIST_ATTEMPTS = 8


def to_timestamp(value: datetime) -> str:
    """Fixed-width UTC text that sorts in time order (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


def from_timestamp(text: str) -> datetime:
    return datetime.strptime(text, _TIMESTAMP_FORMAT).replace(tzinfo=UTC)


# ---- table definitions (CreateTable parameters; the SAM template declares the same) ----------------


def _key(name: str, key_type: str) -> dict[str, str]:
    return {"AttributeName": name, "KeyType": key_type}


def _string(name: str) -> dict[str, str]:
    return {"AttributeName": name, "AttributeType": "S"}


_TABLE_SCHEMAS: dict[str, dict[str, Any]] = {
    "images": {
        "KeySchema": [_key("image_digest", "HASH")],
        "AttributeDefinitions": [
            _string("image_digest"),
            _string("listing"),
            _string("created_key"),
            _string("analysis_status"),
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": BY_CREATED_INDEX,
                "KeySchema": [_key("listing", "HASH"), _key("created_key", "RANGE")],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": BY_STATUS_INDEX,
                "KeySchema": [_key("analysis_status", "HASH"), _key("created_key", "RANGE")],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    },
    "tags": {"KeySchema": [_key("repo_tag", "HASH")], "AttributeDefinitions": [_string("repo_tag")]},
    "evaluations": {
        "KeySchema": [_key("image_digest", "HASH"), _key("evaluated_key", "RANGE")],
        "AttributeDefinitions": [_string("image_digest"), _string("evaluated_key")],
    },
    "policies": {"KeySchema": [_key("bundle_id", "HASH")], "AttributeDefinitions": [_string("bundle_id")]},
    "events": {
        "KeySchema": [_key("day", "HASH"), _key("event_key", "RANGE")],
        "AttributeDefinitions": [_string("day"), _string("event_key")],
    },
    "feeds": {"KeySchema": [_key("name", "HASH")], "AttributeDefinitions": [_string("name")]},
}


def table_definitions(settings: AwsStoreSettings) -> dict[str, dict[str, Any]]:
    """CreateTable parameters per purpose (``images``, ``tags``, …), on-demand billing.

    The same keys are valid ``AWS::DynamoDB::Table`` properties, so the SAM template and the test
    fixtures are written from one definition.
    """
    return {
        purpose: {"TableName": settings.table_name(purpose), "BillingMode": "PAY_PER_REQUEST", **schema}
        for purpose, schema in _TABLE_SCHEMAS.items()
    }


def create_tables(
    stores: AwsStores, dynamodb_client: Any | None = None, s3_client: Any | None = None
) -> None:
    """Create the six tables and the bucket (tests and local emulators; AWS uses the template)."""
    settings = stores.settings
    dynamodb = dynamodb_client or stores.boto3_client("dynamodb", settings.dynamodb_endpoint_url)
    s3 = s3_client or stores.blobs.client
    for definition in table_definitions(settings).values():
        dynamodb.create_table(**definition)
        dynamodb.get_waiter("table_exists").wait(TableName=definition["TableName"])
    region = settings.region or s3.meta.region_name
    if region and region != "us-east-1":
        s3.create_bucket(Bucket=settings.bucket, CreateBucketConfiguration={"LocationConstraint": region})
    else:
        s3.create_bucket(Bucket=settings.bucket)


# ---- shared helpers ------------------------------------------------------------------------------------


def _condition_failed(exc: PynamoDBException) -> bool:
    return exc.cause_response_code == _CONDITION_FAILED


_ModelT = TypeVar("_ModelT", bound=Model)


def _get(model: type[_ModelT], hash_key: str, **options: Any) -> _ModelT | None:
    """A strongly consistent GetItem; None instead of pynamodb's DoesNotExist."""
    if not hash_key:
        return None  # DynamoDB rejects empty key values; nothing can be stored under one
    try:
        return model.get(hash_key, consistent_read=True, **options)
    except model.DoesNotExist:
        return None


def _get_item(model: type[_ModelT], hash_key: str, range_key: str) -> _ModelT | None:
    """A strongly consistent GetItem by both keys; None instead of pynamodb's DoesNotExist."""
    if not hash_key or not range_key:
        return None
    try:
        return model.get(hash_key, range_key, consistent_read=True)
    except model.DoesNotExist:
        return None


def _document_name(account: str, name: str) -> str:
    """``name`` in an S3 key of ``account``'s documents (the bare name for admin, as in tables)."""
    scoped = account_key(account, name)
    if not scoped:
        raise StoreError(f"{name!r} cannot name a stored document")
    return scoped


class _DocumentSpill:
    """Compressed JSON documents: inline in the item when small enough, else an S3 object."""

    def __init__(self, blobs: S3BlobStore, inline_limit: int) -> None:
        self._blobs = blobs
        self._limit = inline_limit

    def store(self, key: str, document: dict[str, Any]) -> tuple[bytes | None, str | None]:
        compressed = compress_json(json.dumps(document, separators=(",", ":")))
        if len(compressed) <= self._limit:
            return compressed, None
        self._blobs.put(key, compressed)
        return None, key

    def delete(self, key: str) -> None:
        self._blobs.delete(key)

    def load(self, inline: bytes | None, key: str | None) -> dict[str, Any]:
        if inline is not None:
            data: bytes = inline
        elif key is not None:
            fetched = self._blobs.get(key)
            if fetched is None:
                raise StoreError(f"a stored document is missing from S3: {key}")
            data = fetched
        else:
            return {}
        document: dict[str, Any] = json.loads(decompress_document(data))
        return document


# ---- images and tags --------------------------------------------------------------------------------


def _created_key(image: ImageRecord) -> str:
    return f"{to_timestamp(image.created_at)}#{image.image_digest}"


class AwsCatalogStore:
    """Images (table ``images``, GSIs ``by_created`` and ``by_status``) and tags (table ``tags``)."""

    def __init__(self, images: TableBinding, tags: TableBinding, account: str = ADMIN_ACCOUNT) -> None:
        self._images = image_model(images)
        self._tags = tag_model(tags)
        self._account = account
        self._listing = account_key(account, IMAGE_LISTING)

    def _key(self, image_digest: str) -> str:
        return account_key(self._account, image_digest)

    def _status(self, status: AnalysisStatus) -> str:
        """The ``analysis_status`` value, scoped: it is the partition of the ``by_status`` index."""
        return account_key(self._account, status.value)

    def _item(self, image: ImageRecord) -> ImageItem:
        return self._images(
            self._key(image.image_digest),
            listing=self._listing,
            created_key=_created_key(image),
            analysis_status=self._status(image.analysis_status),
            image_id=image.image_id,
            repo_tags=list(image.repo_tags),
            source=image.source,
            platform=image.platform,
            distro=image.distro,
            package_count=image.package_count,
            created_at=to_timestamp(image.created_at),
            analyzed_at=to_timestamp(image.analyzed_at) if image.analyzed_at is not None else None,
            last_error=image.last_error,
            claim_owner=image.claim_owner,
            claim_deadline=to_timestamp(image.claim_deadline) if image.claim_deadline is not None else None,
        )

    def _record(self, item: ImageItem) -> ImageRecord:
        return ImageRecord(
            image_digest=unscoped(self._account, item.image_digest),
            image_id=item.image_id,
            analysis_status=AnalysisStatus(unscoped(self._account, item.analysis_status)),
            repo_tags=tuple(item.repo_tags or ()),
            source=item.source,
            platform=item.platform,
            distro=item.distro,
            package_count=int(item.package_count),
            created_at=from_timestamp(item.created_at),
            analyzed_at=from_timestamp(item.analyzed_at) if item.analyzed_at else None,
            last_error=item.last_error,
            claim_owner=item.claim_owner,
            claim_deadline=from_timestamp(item.claim_deadline) if item.claim_deadline else None,
        )

    def put_image(self, image: ImageRecord) -> None:
        with dynamodb_errors("store an image"):
            self._item(image).save()

    def add_image(self, image: ImageRecord) -> bool:
        """Insert ``image`` only if its digest is unknown (a conditional put); False otherwise."""
        with dynamodb_errors("add an image"):
            try:
                self._item(image).save(condition=self._images.image_digest.does_not_exist())
            except PynamoDBException as exc:
                if _condition_failed(exc):
                    return False
                raise
        return True

    def get_image(self, image_digest: str) -> ImageRecord | None:
        with dynamodb_errors("read an image"):
            item = _get(self._images, self._key(image_digest))
        return self._record(item) if item is not None else None

    def list_images(self, limit: int = 1000) -> list[ImageRecord]:
        if limit <= 0:
            return []
        with dynamodb_errors("list images"):
            items = list(self._images.by_created.query(self._listing, scan_index_forward=False, limit=limit))
        return [self._record(item) for item in items]

    def list_images_by_status(self, status: AnalysisStatus, limit: int = 1000) -> list[ImageRecord]:
        """Images in one analysis status, newest first (the ``by_status`` GSI)."""
        if limit <= 0:
            return []
        with dynamodb_errors("list images by status"):
            items = list(
                self._images.by_status.query(self._status(status), scan_index_forward=False, limit=limit)
            )
        return [self._record(item) for item in items]

    def add_repo_tag(self, image_digest: str, repo_tag: str) -> None:
        """One UpdateItem appending the tag unless the list holds it or is full: the status is untouched.

        A full list (``REPO_TAGS_KEPT``) is rewritten without its oldest tag, under the condition that
        it is still the list that was read, and retried when another writer got there first.
        """
        model = self._images
        room = size(model.repo_tags) < REPO_TAGS_KEPT  # type: ignore[no-untyped-call]
        condition = model.image_digest.exists() & ~model.repo_tags.contains(repo_tag) & room
        with dynamodb_errors("add a tag to an image"):
            try:
                model(self._key(image_digest)).update(
                    actions=[model.repo_tags.set(model.repo_tags.append([repo_tag]))], condition=condition
                )
                return
            except PynamoDBException as exc:
                if not _condition_failed(exc):
                    raise
            for _ in range(_TAG_LIST_ATTEMPTS):
                item = _get(model, self._key(image_digest), attributes_to_get=["image_digest", "repo_tags"])
                if item is None:
                    raise NotFoundError(f"no image {image_digest}")
                tags = list(item.repo_tags or ())
                if repo_tag in tags:
                    return
                try:
                    model(self._key(image_digest)).update(
                        actions=[model.repo_tags.set([*tags, repo_tag][-REPO_TAGS_KEPT:])],
                        condition=model.image_digest.exists() & (model.repo_tags == tags),
                    )
                    return
                except PynamoDBException as exc:
                    if not _condition_failed(exc):
                        raise
        raise StoreError(f"cannot add a tag to {image_digest}: the tag list kept changing")

    def set_status(
        self,
        image_digest: str,
        status: AnalysisStatus,
        *,
        error: str | None = None,
        expected: AnalysisStatus | None = None,
    ) -> bool:
        """One UpdateItem whose condition names the expected status: DynamoDB applies it atomically per
        item, so of two concurrent callers expecting the same status exactly one succeeds.
        ``last_error`` is set to ``error`` (removed when None); a status other than analyzing removes
        the claim. NotFoundError for an unknown digest."""
        model = self._images
        condition = model.image_digest.exists()
        if expected is not None:
            condition = condition & (model.analysis_status == self._status(expected))
        actions: list[Action] = [
            model.analysis_status.set(self._status(status)),
            model.last_error.set(error) if error is not None else model.last_error.remove(),
        ]
        if status is not AnalysisStatus.ANALYZING:
            # A claim only means something while the image is analyzing.
            actions += [model.claim_owner.remove(), model.claim_deadline.remove()]
        with dynamodb_errors("update an image's status"):
            try:
                model(self._key(image_digest)).update(actions=actions, condition=condition)
            except PynamoDBException as exc:
                if not _condition_failed(exc):
                    raise
            else:
                return True
            exists = _get(model, self._key(image_digest), attributes_to_get=["image_digest"])
        if exists is None:
            raise NotFoundError(f"no image {image_digest}")
        return False

    def claim_analysis(
        self, image_digest: str, claim: AnalysisClaim, *, now: datetime, force: bool = False
    ) -> bool:
        """One conditional UpdateItem: the status and the current claim's deadline are checked and the
        new claim written atomically, so of two callers racing for an image exactly one wins."""
        model = self._images
        startable = [self._status(AnalysisStatus.NOT_ANALYZED), self._status(AnalysisStatus.ANALYSIS_FAILED)]
        if force:
            startable.append(self._status(AnalysisStatus.ANALYZED))
        expired = (model.analysis_status == self._status(AnalysisStatus.ANALYZING)) & (
            model.claim_deadline.does_not_exist() | (model.claim_deadline < to_timestamp(now))
        )
        condition = model.image_digest.exists() & (model.analysis_status.is_in(*startable) | expired)
        actions: list[Action] = [
            model.analysis_status.set(self._status(AnalysisStatus.ANALYZING)),
            model.claim_owner.set(claim.owner),
            model.claim_deadline.set(to_timestamp(claim.deadline)),
            model.last_error.remove(),
        ]
        return self._conditional_update(image_digest, actions, condition, "claim an image's analysis")

    def release_claim(self, image_digest: str, owner: str | None, error: str) -> bool:
        model = self._images
        held = model.claim_owner == owner if owner is not None else model.claim_owner.does_not_exist()
        condition = (model.analysis_status == self._status(AnalysisStatus.ANALYZING)) & held
        actions: list[Action] = [
            model.analysis_status.set(self._status(AnalysisStatus.ANALYSIS_FAILED)),
            model.last_error.set(error),
            model.claim_owner.remove(),
            model.claim_deadline.remove(),
        ]
        with dynamodb_errors("release an analysis claim"):
            try:
                model(self._key(image_digest)).update(actions=actions, condition=condition)
            except PynamoDBException as exc:
                if _condition_failed(exc):
                    return False
                raise
        return True

    def mark_analyzed(self, image_digest: str, summary: AnalyzedSummary, *, owner: str | None = None) -> bool:
        """An UpdateItem of the analysis attributes only: a tag added meanwhile survives; with
        ``owner``, conditional on the image analyzing under that owner's claim."""
        model = self._images
        actions: list[Action] = [
            model.analysis_status.set(self._status(AnalysisStatus.ANALYZED)),
            model.analyzed_at.set(to_timestamp(summary.analyzed_at)),
            model.package_count.set(summary.package_count),
            model.distro.set(summary.distro) if summary.distro is not None else model.distro.remove(),
            model.last_error.remove(),
            model.claim_owner.remove(),
            model.claim_deadline.remove(),
        ]
        condition = model.image_digest.exists()
        if owner is not None:
            condition = (
                condition
                & (model.analysis_status == self._status(AnalysisStatus.ANALYZING))
                & (model.claim_owner == owner)
            )
        recorded = self._conditional_update(image_digest, actions, condition, "record an analysis")
        if not recorded and owner is None:
            raise NotFoundError(f"no image {image_digest}")
        return recorded

    def _conditional_update(
        self, image_digest: str, actions: list[Action], condition: Any, action: str
    ) -> bool:
        """True when applied; False when the condition failed on an existing item; NotFoundError else."""
        model = self._images
        with dynamodb_errors(action):
            try:
                model(self._key(image_digest)).update(actions=actions, condition=condition)
            except PynamoDBException as exc:
                if not _condition_failed(exc):
                    raise
            else:
                return True
            exists = _get(model, self._key(image_digest), attributes_to_get=["image_digest"])
        if exists is None:
            raise NotFoundError(f"no image {image_digest}")
        return False

    def put_tag(self, tag: TagRecord) -> None:
        with dynamodb_errors("store a tag"):
            self._tags(
                account_key(self._account, tag.repo_tag),
                image_digest=tag.image_digest,
                updated_at=to_timestamp(tag.updated_at),
            ).save()

    def get_tag(self, repo_tag: str) -> TagRecord | None:
        with dynamodb_errors("read a tag"):
            item = _get(self._tags, account_key(self._account, repo_tag))
        return self._tag(item) if item is not None else None

    def list_tags(self) -> list[TagRecord]:
        """Every tag, sorted by name (a scan: the tag count is small, watch polls read them all anyway)."""
        with dynamodb_errors("list tags"):
            items = list(self._tags.scan(self._own_tags(), consistent_read=True))
        return sorted((self._tag(item) for item in items), key=lambda tag: tag.repo_tag)

    def _own_tags(self) -> Any:
        """The scan filter that keeps this account's tags (admin's have no account prefix)."""
        if self._account == ADMIN_ACCOUNT:
            return ~self._tags.repo_tag.contains(ACCOUNT_SEPARATOR)
        return self._tags.repo_tag.startswith(f"{self._account}{ACCOUNT_SEPARATOR}")

    def _tag(self, item: TagItem) -> TagRecord:
        return TagRecord(
            repo_tag=unscoped(self._account, item.repo_tag),
            image_digest=item.image_digest,
            updated_at=from_timestamp(item.updated_at),
        )


# ---- analyses and matches (S3 only) --------------------------------------------------------------------


class _StoredMatches(ValueObject):
    db_built_at: datetime | None = None
    matches: tuple[Match, ...] = ()


class AwsAnalysisStore:
    """Analysis documents and match lists as zstd-compressed JSON objects in S3 (too big for items).

    Keys: ``analyses/<digest>.json.zst`` and ``matches/<digest>.json.zst`` under the documents prefix.
    Beside each match list, ``matches/<digest>.counts.json`` holds its counts by severity (a few
    hundred bytes, under the same prefix so that whoever may read or write matches may do the same
    with their counts): a list of images reads those, never the match lists. A match list stored
    before its counts were is counted when first read.
    """

    def __init__(self, documents: S3BlobStore, account: str = ADMIN_ACCOUNT) -> None:
        self._documents = documents
        self._account = account

    # The keys are scoped by account as table keys are (admin's are the bare digest): two accounts
    # with one image each keep their own analysis, whose source names the account's own registry.
    @staticmethod
    def analysis_key(image_digest: str, account: str = ADMIN_ACCOUNT) -> str:
        return f"analyses/{_document_name(account, image_digest)}.json.zst"

    @staticmethod
    def matches_key(image_digest: str, account: str = ADMIN_ACCOUNT) -> str:
        return f"matches/{_document_name(account, image_digest)}.json.zst"

    @staticmethod
    def match_counts_key(image_digest: str, account: str = ADMIN_ACCOUNT) -> str:
        return f"matches/{_document_name(account, image_digest)}.counts.json"

    def put_analysis(self, image_digest: str, analysis: ImageAnalysis) -> None:
        self._documents.put(self.analysis_key(image_digest, self._account), compress_document(analysis))

    def get_analysis(self, image_digest: str) -> ImageAnalysis | None:
        data = self._documents.get(self.analysis_key(image_digest, self._account))
        return ImageAnalysis.model_validate_json(decompress_document(data)) if data is not None else None

    def put_matches(self, image_digest: str, matches: Sequence[Match], db_built_at: datetime | None) -> None:
        stored = _StoredMatches(db_built_at=db_built_at, matches=tuple(matches))
        counts = MatchCounts.of(matches).model_dump_json().encode()
        # Counts after the matches: never counts for a list that was not stored. A failure between
        # the two raises, and the match phase is retried, writing both again.
        self._documents.put(self.matches_key(image_digest, self._account), compress_document(stored))
        self._documents.put(self.match_counts_key(image_digest, self._account), counts)

    def get_matches(self, image_digest: str) -> list[Match] | None:
        data = self._documents.get(self.matches_key(image_digest, self._account))
        if data is None:
            return None
        return list(_StoredMatches.model_validate_json(decompress_document(data)).matches)

    def get_match_counts(self, image_digest: str) -> MatchCounts | None:
        stored = self._documents.get(self.match_counts_key(image_digest, self._account))
        if stored is not None:
            return MatchCounts.model_validate_json(stored)
        matches = self.get_matches(image_digest)
        if matches is None:
            return None
        counts = MatchCounts.of(matches)
        # Writing them is only a saving for the next read (a read-only caller, such as the API, may
        # not write documents): the counts are right either way.
        with contextlib.suppress(StoreError):
            self._documents.put(
                self.match_counts_key(image_digest, self._account), counts.model_dump_json().encode()
            )
        return counts

    def delete_documents(self, image_digest: str) -> None:
        """The image's analysis, match list and counts (counts first: never counts without matches)."""
        for key in (
            self.match_counts_key(image_digest, self._account),
            self.matches_key(image_digest, self._account),
            self.analysis_key(image_digest, self._account),
        ):
            self._documents.delete(key)


# ---- evaluations ----------------------------------------------------------------------------------------


def _epoch_seconds(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


class AwsEvaluationStore:
    """Table ``evaluations``: hash image_digest, range "<evaluated_at>#<evaluation_id>"; newest first.

    With ``superseded_days``, storing an evaluation gives the earlier ones for the same image and tag
    an ``expires_at`` (the table's TTL) that many days ahead: history is kept for a while, the
    current evaluation forever.
    """

    def __init__(
        self,
        binding: TableBinding,
        spill: _DocumentSpill,
        superseded_days: int | None = None,
        account: str = ADMIN_ACCOUNT,
    ) -> None:
        self._model = evaluation_model(binding)
        self._account = account
        self._spill = spill
        self._superseded_days = superseded_days

    def put_evaluation(self, evaluation: EvaluationRecord) -> None:
        evaluated_at = to_timestamp(evaluation.evaluated_at)
        inline, key = self._spill.store(
            f"evaluations/{_document_name(self._account, evaluation.image_digest)}/"
            f"{evaluation.evaluation_id}.json.zst",
            evaluation.model_dump(mode="json")["document"],
        )
        with dynamodb_errors("store an evaluation"):
            self._model(
                account_key(self._account, evaluation.image_digest),
                f"{evaluated_at}#{evaluation.evaluation_id}",
                evaluation_id=evaluation.evaluation_id,
                repo_tag=evaluation.repo_tag,
                bundle_id=evaluation.bundle_id,
                final_action=evaluation.final_action,
                status=evaluation.status,
                evaluated_at=evaluated_at,
                document=inline,
                document_key=key,
            ).save()
        if self._superseded_days is not None:
            self._expire_superseded(evaluation)

    def _expire_superseded(self, evaluation: EvaluationRecord) -> None:
        model = self._model
        newest_key = f"{to_timestamp(evaluation.evaluated_at)}#{evaluation.evaluation_id}"
        same_tag = (
            model.repo_tag == evaluation.repo_tag
            if evaluation.repo_tag is not None
            else model.repo_tag.does_not_exist()
        )
        expires_at = _epoch_seconds(datetime.now(UTC) + timedelta(days=self._superseded_days or 0))
        with dynamodb_errors("expire superseded evaluations"):
            earlier = model.query(
                account_key(self._account, evaluation.image_digest),
                range_key_condition=model.evaluated_key < newest_key,
                filter_condition=same_tag & model.expires_at.does_not_exist(),
                attributes_to_get=["image_digest", "evaluated_key"],
            )
            for item in earlier:
                model(item.image_digest, item.evaluated_key).update(
                    actions=[model.expires_at.set(expires_at)], condition=model.image_digest.exists()
                )

    def latest_evaluation(self, image_digest: str, repo_tag: str | None = None) -> EvaluationRecord | None:
        """The newest evaluation of the image; with ``repo_tag``, the newest made for that tag."""
        if not account_key(self._account, image_digest):
            return None
        condition = (self._model.repo_tag == repo_tag) if repo_tag is not None else None
        with dynamodb_errors("read the latest evaluation"):
            results = self._model.query(
                account_key(self._account, image_digest),
                filter_condition=condition,
                scan_index_forward=False,
                consistent_read=True,
                page_size=25,
            )
            item = next(iter(results), None)
        return self._record(item) if item is not None else None

    def list_evaluations(self, image_digest: str) -> list[EvaluationRecord]:
        if not account_key(self._account, image_digest):
            return []
        with dynamodb_errors("list evaluations"):
            items = list(
                self._model.query(
                    account_key(self._account, image_digest), scan_index_forward=False, consistent_read=True
                )
            )
        return [self._record(item) for item in items]

    def delete_evaluations(self, image_digest: str) -> None:
        """Every evaluation of the image, each spilled document before its item."""
        if not account_key(self._account, image_digest):
            return
        model = self._model
        with dynamodb_errors("delete evaluations"):
            items = list(
                model.query(
                    account_key(self._account, image_digest),
                    consistent_read=True,
                    attributes_to_get=["image_digest", "evaluated_key", "document_key"],
                )
            )
            for item in items:
                if item.document_key is not None:
                    self._spill.delete(item.document_key)
                model(item.image_digest, item.evaluated_key).delete()

    def _record(self, item: EvaluationItem) -> EvaluationRecord:
        return EvaluationRecord(
            evaluation_id=item.evaluation_id,
            image_digest=unscoped(self._account, item.image_digest),
            repo_tag=item.repo_tag,
            bundle_id=item.bundle_id,
            final_action=item.final_action,
            status=item.status,
            evaluated_at=from_timestamp(item.evaluated_at),
            document=self._spill.load(item.document, item.document_key),
        )


class AwsImageCatalog(AwsCatalogStore):
    """The catalog of one account with ``ImageRemoval``: deleting an image also deletes what hangs off
    it in that account (tags, evaluations, and the analysis and matches in S3). Content-addressed
    shared data (layer fragments, the result cache) is kept: other images and accounts may use it.
    """

    def __init__(
        self,
        images: TableBinding,
        tags: TableBinding,
        analyses: AwsAnalysisStore,
        evaluations: AwsEvaluationStore,
        account: str = ADMIN_ACCOUNT,
    ) -> None:
        super().__init__(images, tags, account)
        self._analyses = analyses
        self._evaluations = evaluations

    def delete_image(self, image_digest: str) -> bool:
        """Remove the image and its records; False if the account has no such image.

        DynamoDB has no transaction over an unbounded number of items, so the image item goes last:
        a failure midway leaves the image listed, and deleting it again finishes the job.
        """
        image_key = self._key(image_digest)
        if not image_key:
            return False
        with dynamodb_errors("read an image"):
            if _get(self._images, image_key, attributes_to_get=["image_digest"]) is None:
                return False
        self._delete_tags(image_digest)
        self._evaluations.delete_evaluations(image_digest)
        self._analyses.delete_documents(image_digest)
        model = self._images
        with dynamodb_errors("delete an image"):
            try:
                model(image_key).delete(condition=model.image_digest.exists())
            except PynamoDBException as exc:
                if _condition_failed(exc):
                    return False  # deleted meanwhile by another request
                raise
        return True

    def _delete_tags(self, image_digest: str) -> None:
        """The account's tags that point at the image (a tag moved to another image stays)."""
        model = self._tags
        with dynamodb_errors("delete an image's tags"):
            pointing = list(
                model.scan(self._own_tags() & (model.image_digest == image_digest), consistent_read=True)
            )
            for item in pointing:
                try:
                    model(item.repo_tag).delete(condition=model.image_digest == image_digest)
                except PynamoDBException as exc:
                    if not _condition_failed(exc):  # re-pointed meanwhile: no longer this image's
                        raise


# ---- policy bundles -------------------------------------------------------------------------------------


class AwsPolicyStore:
    """Table ``policies``: one item per bundle, plus the pointer item ``#active`` naming the active one.

    Activating writes only the pointer, so at most one bundle is ever active, with no transaction.
    ``active`` on a bundle is derived from the pointer when read. Storing a bundle with ``active=True``
    activates it; ``active=False`` leaves the activation alone. Deleting the active bundle clears the
    pointer; a pointer left dangling by a concurrent delete reads as "no active bundle".
    """

    def __init__(self, binding: TableBinding, spill: _DocumentSpill, account: str = ADMIN_ACCOUNT) -> None:
        self._model = bundle_model(binding)
        self._spill = spill
        self._account = account
        self._pointer = account_key(account, ACTIVE_POINTER_ID)

    def _key(self, bundle_id: str) -> str:
        """The item key of a bundle ("" for the reserved pointer id: no bundle is stored there)."""
        return "" if bundle_id == ACTIVE_POINTER_ID else account_key(self._account, bundle_id)

    def put_bundle(self, bundle: StoredBundle) -> None:
        item_key = self._key(bundle.bundle_id)
        if not item_key:
            raise StoreError(
                f"{bundle.bundle_id!r} cannot name a policy bundle ({ACTIVE_POINTER_ID!r} is reserved, "
                f"{ACCOUNT_SEPARATOR!r} is not allowed)"
            )
        inline, key = self._spill.store(
            f"bundles/{item_key}.json.zst", bundle.model_dump(mode="json")["document"]
        )
        with dynamodb_errors("store a policy bundle"):
            self._model(
                item_key,
                name=bundle.name,
                created_at=to_timestamp(bundle.created_at),
                updated_at=to_timestamp(bundle.updated_at),
                document=inline,
                document_key=key,
            ).save()
        if bundle.active:
            self.activate(bundle.bundle_id)

    def get_bundle(self, bundle_id: str) -> StoredBundle | None:
        with dynamodb_errors("read a policy bundle"):
            item = _get(self._model, self._key(bundle_id))
        if item is None:
            return None
        return self._bundle(item, self._active_id())

    def list_bundles(self) -> list[StoredBundle]:
        """Every bundle, sorted by id."""
        with dynamodb_errors("list policy bundles"):
            items = [
                i
                for i in self._model.scan(self._own_items(), consistent_read=True)
                if i.bundle_id != self._pointer
            ]
        active = self._active_id()
        bundles = [self._bundle(item, active) for item in items]
        return sorted(bundles, key=lambda bundle: bundle.bundle_id)

    def activate(self, bundle_id: str) -> None:
        if self.get_bundle(bundle_id) is None:
            raise NotFoundError(f"no policy bundle {bundle_id}")
        with dynamodb_errors("activate a policy bundle"):
            self._model(self._pointer, active_bundle_id=bundle_id).save()

    def active_bundle(self) -> StoredBundle | None:
        active = self._active_id()
        if active is None:
            return None
        with dynamodb_errors("read the active policy bundle"):
            item = _get(self._model, self._key(active))
        return self._bundle(item, active) if item is not None else None

    def delete_bundle(self, bundle_id: str) -> bool:
        item_key = self._key(bundle_id)
        if not item_key:
            return False
        model = self._model
        with dynamodb_errors("delete a policy bundle"):
            try:
                model(item_key).delete(condition=model.bundle_id.exists())
            except PynamoDBException as exc:
                if _condition_failed(exc):
                    return False
                raise
            try:
                # Only if it still points at this bundle: a concurrent activate of another one wins.
                model(self._pointer).delete(condition=model.active_bundle_id == bundle_id)
            except PynamoDBException as exc:
                if not _condition_failed(exc):
                    raise
        return True

    def _active_id(self) -> str | None:
        with dynamodb_errors("read the active policy pointer"):
            pointer = _get(self._model, self._pointer)
        return pointer.active_bundle_id if pointer is not None else None

    def _own_items(self) -> Any:
        """The scan filter that keeps this account's items (admin's have no account prefix)."""
        if self._account == ADMIN_ACCOUNT:
            return ~self._model.bundle_id.contains(ACCOUNT_SEPARATOR)
        return self._model.bundle_id.startswith(f"{self._account}{ACCOUNT_SEPARATOR}")

    def _bundle(self, item: BundleItem, active_id: str | None) -> StoredBundle:
        bundle_id = unscoped(self._account, item.bundle_id)
        return StoredBundle(
            bundle_id=bundle_id,
            name=item.name,
            active=bundle_id == active_id,
            document=self._spill.load(item.document, item.document_key),
            created_at=from_timestamp(item.created_at or ""),
            updated_at=from_timestamp(item.updated_at or ""),
        )


# ---- events ---------------------------------------------------------------------------------------------


class AwsEventStore:
    """The ``EventLog`` of one account on table ``events`` (partitions scoped by ``account_key``).

    * ``<day>`` (a UTC day, ``YYYY-MM-DD``): the day's events, range "<timestamp>#<event_id>";
    * ``#days``: one item per day that has events, so listing walks days newest first without
      scanning the table or guessing a time window (each container writes a day's entry once);
    * ``#ids``: one item per event, range = its id, naming its time: get and delete by id are two
      single-item reads, never a walk.

    Events come newest first (time, then id); ``since`` and ``before`` are exclusive. The type,
    level and resource filters apply to each day's items as they are read (the type filter is a
    pattern DynamoDB cannot express), so a page costs the events up to it, as Anchore's does. With a
    retention, every item carries the TTL attribute ``expires_at``. Events of account ``admin``
    written before ids were indexed have no id entry: for that account alone a missed id is
    looked for day by day.
    """

    def __init__(
        self, binding: TableBinding, retention_days: int | None = None, account: str = ADMIN_ACCOUNT
    ) -> None:
        self._model = event_model(binding)
        self._account = account
        self._days_partition = account_key(account, DAY_INDEX_PARTITION)
        self._ids_partition = account_key(account, EVENT_ID_PARTITION)
        self._indexed_days: set[str] = set()
        self._lock = threading.Lock()
        self._retention = timedelta(days=retention_days) if retention_days is not None else None

    # ---- writing ------------------------------------------------------------------------------------

    def put_event(self, event: EventRecord) -> None:
        """Store ``event``; an event stored before under the same id is replaced (as SQLite's is)."""
        timestamp = to_timestamp(event.timestamp)
        day = timestamp[:10]
        expires_at = day_expires_at = None
        if self._retention is not None:
            expires_at = _epoch_seconds(event.timestamp + self._retention)
            # A day's index entry outlives the day's last possible event.
            day_start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
            day_expires_at = _epoch_seconds(day_start + timedelta(days=1) + self._retention)
        model = self._model
        with dynamodb_errors("store an event"):
            # The day entry first, then the event, then its id: an entry without an event is
            # harmless (reads skip it), the reverse would hide the event.
            with self._lock:
                known = day in self._indexed_days
            if not known:
                model(self._days_partition, day, expires_at=day_expires_at).save()
                with self._lock:
                    self._indexed_days.add(day)
            model(
                account_key(self._account, day),
                f"{timestamp}#{event.event_id}",
                event_id=event.event_id,
                type=event.type,
                level=event.level,
                resource_type=event.resource_type,
                resource_id=event.resource_id,
                message=event.message,
                details=json.dumps(event.model_dump(mode="json")["details"], separators=(",", ":")),
                timestamp=timestamp,
                expires_at=expires_at,
            ).save()
            # Writing the id entry answers the one it replaced (PutItem alone: writers need no
            # read permission); an event stored before under this id at another time goes.
            entry: dict[str, Any] = {"timestamp": {"S": timestamp}}
            if expires_at is not None:
                entry["expires_at"] = {"N": str(expires_at)}
            replaced = model._get_connection().put_item(
                self._ids_partition, event.event_id, attributes=entry, return_values="ALL_OLD"
            )
            previous = replaced.get("Attributes", {}).get("timestamp", {}).get("S")
            if previous and previous != timestamp:
                self._delete_item(previous, event.event_id)

    def delete_event(self, event_id: str) -> bool:
        """Delete one event by id; False when the account has none with that id."""
        with dynamodb_errors("delete an event"):
            timestamp = self._timestamp_of(event_id)
            if timestamp is None:
                return False
            deleted = self._delete_item(timestamp, event_id)
            self._delete_id_entry(event_id)
        return deleted

    def delete_events(self, query: EventQuery) -> list[str]:
        """Delete every event matching the filters (paging ignored); the deleted ids."""
        deleted: list[str] = []
        with dynamodb_errors("delete events"):
            for item in list(self._matching_items(query)):
                if self._delete_item(item.timestamp or "", item.event_id or ""):
                    deleted.append(item.event_id or "")
                self._delete_id_entry(item.event_id or "")
        return deleted

    def _delete_item(self, timestamp: str, event_id: str) -> bool:
        model = self._model
        try:
            model(account_key(self._account, timestamp[:10]), f"{timestamp}#{event_id}").delete(
                condition=model.day.exists()
            )
        except PynamoDBException as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def _delete_id_entry(self, event_id: str) -> None:
        if event_id:
            self._model(self._ids_partition, event_id).delete()

    # ---- reading ------------------------------------------------------------------------------------

    def get_event(self, event_id: str) -> EventRecord | None:
        with dynamodb_errors("read an event"):
            timestamp = self._timestamp_of(event_id)
            if timestamp is None:
                return None
            item = _get_item(
                self._model, account_key(self._account, timestamp[:10]), f"{timestamp}#{event_id}"
            )
        return self._record(item) if item is not None else None

    def list_events(self, since: datetime | None = None, limit: int = 100) -> list[EventRecord]:
        if limit <= 0:
            return []
        with dynamodb_errors("list events"):
            items = list(islice(self._matching_items(EventQuery(since=since)), limit))
        return [self._record(item) for item in items]

    def query_events(self, query: EventQuery) -> EventPage:
        offset = (query.page - 1) * query.limit
        with dynamodb_errors("list events"):
            # One event more than the page shows whether there is a next page.
            items = list(islice(self._matching_items(query), offset, offset + query.limit + 1))
        records = [self._record(item) for item in items]
        return EventPage(
            events=tuple(records[: query.limit]), page=query.page, next_page=len(records) > query.limit
        )

    def _timestamp_of(self, event_id: str) -> str | None:
        if not event_id:
            return None
        entry = _get_item(self._model, self._ids_partition, event_id)
        if entry is not None:
            return entry.timestamp
        if self._account != ADMIN_ACCOUNT:
            return None
        found = next((item for item in self._matching_items(EventQuery()) if item.event_id == event_id), None)
        return found.timestamp if found is not None else None

    def _matching_items(self, query: EventQuery) -> Iterator[EventItem]:
        """The account's events matching ``query``, newest first, read lazily day by day."""
        model = self._model
        since = to_timestamp(query.since) if query.since is not None else None
        before = to_timestamp(query.before) if query.before is not None else None
        day_condition: Any = None
        if since is not None and before is not None:
            day_condition = model.event_key.between(since[:10], before[:10])
        elif since is not None:
            day_condition = model.event_key >= since[:10]
        elif before is not None:
            day_condition = model.event_key <= before[:10]
        # "$" sorts right after "#": every key of an event at exactly ``since`` is below the lower
        # bound; every key at exactly ``before`` ("<before>#<id>") is above the upper one.
        event_condition: Any = None
        if since is not None and before is not None:
            event_condition = model.event_key.between(f"{since}$", before)
        elif since is not None:
            event_condition = model.event_key > f"{since}$"
        elif before is not None:
            event_condition = model.event_key < before
        days = model.query(
            self._days_partition,
            range_key_condition=day_condition,
            scan_index_forward=False,
            consistent_read=True,
        )
        for day in days:
            for item in model.query(
                account_key(self._account, day.event_key),
                range_key_condition=event_condition,
                scan_index_forward=False,
                consistent_read=True,
            ):
                if event_matches(self._record(item), query):
                    yield item

    @staticmethod
    def _record(item: EventItem) -> EventRecord:
        return EventRecord(
            event_id=item.event_id or "",
            type=item.type or "",
            level=item.level or "INFO",
            resource_type=item.resource_type,
            resource_id=item.resource_id,
            message=item.message or "",
            details=json.loads(item.details) if item.details else {},
            timestamp=from_timestamp(item.timestamp or ""),
        )


# ---- feed metadata --------------------------------------------------------------------------------------


class AwsFeedMetadataStore:
    """Table ``feeds``: the item ``vulndb`` points at the current vulnerability database snapshot;
    ``#feed-sync`` holds the feed-sync workflow's last merge, ``#feed-sync-source|<source key>``
    each source's own database and checkpoint, and ``#feed-sync-lease`` the run that may write
    them."""

    def __init__(self, binding: TableBinding) -> None:
        self._model = feed_model(binding)
        self._state = feed_sync_state_model(binding)

    def get_working(self) -> WorkingDatabase | None:
        with dynamodb_errors("read the feed sync state"):
            item = _get(self._state, FEED_SYNC_STATE_NAME)
        if item is None or not item.working:
            return None
        return WorkingDatabase.model_validate_json(item.working)

    def put_working(self, working: WorkingDatabase) -> None:
        with dynamodb_errors("store the feed sync state"):
            self._state(
                FEED_SYNC_STATE_NAME,
                working=working.model_dump_json(),
                updated_at=to_timestamp(datetime.now(UTC)),
            ).save()

    def get_feed_settings(self) -> FeedSettings:
        with dynamodb_errors("read the feed settings"):
            item = _get(self._state, FEED_SETTINGS_NAME)
        if item is None or not item.settings:
            return FeedSettings()
        return FeedSettings.model_validate_json(item.settings)

    def put_feed_settings(self, settings: FeedSettings) -> None:
        with dynamodb_errors("store the feed settings"):
            self._state(
                FEED_SETTINGS_NAME,
                settings=settings.model_dump_json(),
                updated_at=to_timestamp(datetime.now(UTC)),
            ).save()

    def get_source_database(self, key: str) -> SourceDatabase | None:
        with dynamodb_errors("read a feed source's state"):
            item = _get(self._state, f"{FEED_SYNC_SOURCE_PREFIX}{key}")
        if item is None or not item.working:
            return None
        return SourceDatabase.model_validate_json(item.working)

    def put_source_database(self, database: SourceDatabase) -> None:
        with dynamodb_errors("store a feed source's state"):
            self._state(
                f"{FEED_SYNC_SOURCE_PREFIX}{database.key}",
                working=database.model_dump_json(),
                updated_at=to_timestamp(datetime.now(UTC)),
            ).save()

    def acquire_lease(self, owner: str, until: datetime, now: datetime) -> bool:
        """One conditional put: free, expired, or already ours."""
        model = self._state
        condition = (
            model.name.does_not_exist()
            | (model.lease_until < to_timestamp(now))
            | (model.lease_owner == owner)
        )
        with dynamodb_errors("take the feed sync lease"):
            try:
                model(FEED_SYNC_LEASE_NAME, lease_owner=owner, lease_until=to_timestamp(until)).save(
                    condition=condition
                )
            except PynamoDBException as exc:
                if _condition_failed(exc):
                    return False
                raise
        return True

    def release_lease(self, owner: str) -> None:
        model = self._state
        with dynamodb_errors("release the feed sync lease"):
            try:
                model(FEED_SYNC_LEASE_NAME).delete(condition=model.lease_owner == owner)
            except PynamoDBException as exc:
                if not _condition_failed(exc):
                    raise

    def get_db_pointer(self) -> DbPointer | None:
        with dynamodb_errors("read the database pointer"):
            item = _get(self._model, VULNDB_POINTER_NAME)
        if item is None:
            return None
        return DbPointer(
            location=item.location,
            sha256=item.sha256,
            built_at=from_timestamp(item.built_at),
            schema_version=int(item.schema_version),
            record_count=int(item.record_count),
        )

    def put_db_pointer(self, pointer: DbPointer) -> None:
        with dynamodb_errors("store the database pointer"):
            self._model(
                VULNDB_POINTER_NAME,
                location=pointer.location,
                sha256=pointer.sha256,
                built_at=to_timestamp(pointer.built_at),
                schema_version=pointer.schema_version,
                record_count=pointer.record_count,
                updated_at=to_timestamp(datetime.now(UTC)),
            ).save()


# ---- the bundle of stores -------------------------------------------------------------------------------


class AwsStores:
    """Every store port over one set of tables and one bucket.

    ``session`` (a boto3 Session) builds the S3 client, and the DynamoDB client ``create_tables`` uses;
    ``s3_client`` is used as given. pynamodb makes its own botocore client from the default credential
    chain (region and endpoint from ``settings``). Nothing connects until the first call.
    """

    def __init__(
        self,
        settings: AwsStoreSettings,
        *,
        session: Any | None = None,
        s3_client: Any | None = None,
        account: str = ADMIN_ACCOUNT,
    ) -> None:
        self.settings = settings
        self.account = account
        self._session = session
        region = settings.region or (session.region_name if session is not None else None)
        self.region: str | None = region

        def binding(purpose: str) -> TableBinding:
            return TableBinding(settings.table_name(purpose), region, settings.dynamodb_endpoint_url)

        self.documents = S3BlobStore(
            settings.bucket,
            settings.documents_prefix,
            s3_client,
            session=session,
            region=region,
            endpoint_url=settings.s3_endpoint_url,
        )
        self.blobs = S3BlobStore(
            settings.bucket,
            settings.cache_prefix,
            s3_client,
            session=session,
            region=region,
            endpoint_url=settings.s3_endpoint_url,
        )
        self._binding = binding
        self._spill = _DocumentSpill(self.documents, settings.inline_document_limit)
        self.feeds = AwsFeedMetadataStore(binding("feeds"))
        self._open_account_stores(account)

    def _open_account_stores(self, account: str) -> None:
        settings, binding, spill = self.settings, self._binding, self._spill
        self.account = account
        self.analyses = AwsAnalysisStore(self.documents, account)
        self.evaluations = AwsEvaluationStore(
            binding("evaluations"), spill, settings.superseded_evaluation_days, account
        )
        self.catalog = AwsImageCatalog(
            binding("images"), binding("tags"), self.analyses, self.evaluations, account
        )
        self.policies = AwsPolicyStore(binding("policies"), spill, account)
        self.events = AwsEventStore(binding("events"), settings.event_retention_days, account)

    def for_account(self, account: str) -> AwsStores:
        """The same tables and bucket (and clients), with the account-owned stores opened for
        ``account``."""
        scoped = copy.copy(self)
        scoped._open_account_stores(account)
        return scoped

    def boto3_client(self, service: str, endpoint_url: str | None = None) -> Any:
        session = self._session or new_boto3_session()
        return session.client(service, region_name=self.region, endpoint_url=endpoint_url)


__all__ = [
    "TABLE_PURPOSES",
    "AwsAnalysisStore",
    "AwsCatalogStore",
    "AwsEvaluationStore",
    "AwsEventStore",
    "AwsFeedMetadataStore",
    "AwsImageCatalog",
    "AwsPolicyStore",
    "AwsStoreSettings",
    "AwsStores",
    "client_error_code",
    "create_tables",
    "table_definitions",
]
