"""The notification Outbox on DynamoDB (the Notify function's store): one table, items per notification.

Keys: ``pk`` = notification id; ``sk`` = ``notification`` (the document, written once: a conditional
put makes a redelivered notification a duplicate), ``delivery#<channel>#<target>`` (one per target,
written once: at most once per target), ``attempt#<time>#<channel>#<target>#<n>`` (the delivery log).
A delivery still due carries ``due = "due"`` and its ``next_attempt_at``: the sparse ``by_due`` index
lists exactly the due deliveries, oldest first. A claim is a conditional update (``state = due``), so
two Notify invocations never send one delivery twice. Attempt items carry ``log_account``: the sparse
``by_account`` index (``log_account``, ``sk``) lists an account's delivery log, newest first, without
reading other accounts' items.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from portwarden.adapters.aws.dynamo_models import TableBinding, bind_model, dynamodb_errors
from portwarden.core.errors import StoreError
from portwarden.core.ports import OutboxItem
from portwarden.core.watch.notifications import DeliveryAttempt, DeliveryOutcome, Notification

BY_DUE_INDEX = "by_due"
BY_ACCOUNT_INDEX = "by_account"
_DUE = "due"
_NOTIFICATION = "notification"


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable parameters (the template states the same; the tests create the table with them)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("pk", "sk", "due", "next_attempt_at", "log_account")
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": BY_DUE_INDEX,
                "KeySchema": [
                    {"AttributeName": "due", "KeyType": "HASH"},
                    {"AttributeName": "next_attempt_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": BY_ACCOUNT_INDEX,
                "KeySchema": [
                    {"AttributeName": "log_account", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    }


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class _ByDue(GlobalSecondaryIndex["_OutboxItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = BY_DUE_INDEX
        projection = AllProjection()

    due = UnicodeAttribute(hash_key=True)
    next_attempt_at = UnicodeAttribute(range_key=True)


class _ByAccount(GlobalSecondaryIndex["_OutboxItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = BY_ACCOUNT_INDEX
        projection = AllProjection()

    log_account = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class _OutboxItem(Model):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    account = UnicodeAttribute(null=True)
    document = UnicodeAttribute(null=True)
    state = UnicodeAttribute(null=True)
    attempts = NumberAttribute(null=True)
    enqueued_at = UnicodeAttribute(null=True)
    next_attempt_at = UnicodeAttribute(null=True)
    claimed_at = UnicodeAttribute(null=True)
    due = UnicodeAttribute(null=True)
    log_account = UnicodeAttribute(null=True)
    by_due = _ByDue()
    by_account = _ByAccount()


def _model(table_name: str, region: str | None, host: str | None) -> type[_OutboxItem]:
    return bind_model(_OutboxItem, TableBinding(table_name, region, host))


def _condition_failed(exc: PynamoDBException) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


def _delivery_key(channel: str, target: str) -> str:
    return f"delivery#{channel}#{target}"


class DynamoOutbox:
    def __init__(self, table_name: str, *, region: str | None = None, host: str | None = None) -> None:
        self._model = _model(table_name, region, host)

    def register(self, notification: Notification, now: datetime) -> bool:
        item = self._model(
            notification.notification_id,
            _NOTIFICATION,
            account=notification.account,
            document=notification.model_dump_json(),
            enqueued_at=_ts(now),
        )
        try:
            item.save(condition=self._model.pk.does_not_exist())
        except PynamoDBException as exc:
            if _condition_failed(exc):
                return False
            raise StoreError(f"cannot register a notification: {exc}") from exc
        return True

    def enqueue(self, notification: Notification, channel: str, target: str, now: datetime) -> bool:
        item = self._model(
            notification.notification_id,
            _delivery_key(channel, target),
            account=notification.account,
            document=notification.model_dump_json(),
            state=_DUE,
            attempts=0,
            enqueued_at=_ts(now),
            next_attempt_at=_ts(now),
            due=_DUE,
        )
        try:
            item.save(condition=self._model.pk.does_not_exist())
        except PynamoDBException as exc:
            if _condition_failed(exc):
                return False
            raise StoreError(f"cannot enqueue a delivery: {exc}") from exc
        return True

    def claim_due(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        with dynamodb_errors("list due deliveries"):
            candidates = list(
                self._model.by_due.query(_DUE, self._model.next_attempt_at <= _ts(now), limit=limit)
            )
        return self._claim(candidates, now)

    def claim_due_of(self, notification_id: str, now: datetime) -> list[OutboxItem]:
        """The due deliveries of one notification only (a test send delivers its own, nobody else's)."""
        with dynamodb_errors("list a notification's deliveries"):
            candidates = [
                item
                for item in self._model.query(notification_id, self._model.sk.startswith("delivery#"))
                if item.state == _DUE and (item.next_attempt_at or "") <= _ts(now)
            ]
        return self._claim(candidates, now)

    def _claim(self, candidates: list[_OutboxItem], now: datetime) -> list[OutboxItem]:
        claimed: list[OutboxItem] = []
        for candidate in candidates:
            try:
                candidate.update(
                    actions=[
                        self._model.state.set("claimed"),
                        self._model.claimed_at.set(_ts(now)),
                        self._model.due.remove(),
                    ],
                    condition=self._model.state == _DUE,
                )
            except PynamoDBException as exc:
                if _condition_failed(exc):
                    continue  # another invocation claimed it first
                raise StoreError(f"cannot claim a delivery: {exc}") from exc
            _, channel, target = candidate.sk.split("#", 2)
            claimed.append(
                OutboxItem(
                    notification=Notification.model_validate_json(candidate.document or "{}"),
                    channel=channel,
                    target=target,
                    attempts=int(candidate.attempts or 0),
                    enqueued_at=_from_ts(candidate.enqueued_at or _ts(now)),
                    next_attempt_at=_from_ts(candidate.next_attempt_at or _ts(now)),
                )
            )
        return claimed

    def record(self, item: OutboxItem, attempt: DeliveryAttempt) -> None:
        notification_id = item.notification.notification_id
        log = self._model(
            notification_id,
            f"attempt#{_ts(attempt.attempted_at)}#{item.channel}#{item.target}#{attempt.attempt}",
            account=attempt.account,
            log_account=attempt.account,
            document=attempt.model_dump_json(),
        )
        key = self._model(notification_id, _delivery_key(item.channel, item.target))
        with dynamodb_errors("record a delivery attempt"):
            log.save()
            if attempt.outcome is DeliveryOutcome.RETRYING:
                next_at = _ts(attempt.next_attempt_at or attempt.attempted_at)
                key.update(
                    actions=[
                        self._model.state.set(_DUE),
                        self._model.due.set(_DUE),
                        self._model.attempts.set(attempt.attempt),
                        self._model.next_attempt_at.set(next_at),
                        self._model.claimed_at.remove(),
                    ]
                )
            else:
                key.update(
                    actions=[
                        self._model.state.set(attempt.outcome.value),
                        self._model.attempts.set(attempt.attempt),
                        self._model.claimed_at.remove(),
                    ]
                )

    def release_claims(self, claimed_before: datetime) -> int:
        released = 0
        with dynamodb_errors("release stale claims"):
            for item in self._model.scan(
                (self._model.state == "claimed") & (self._model.claimed_at < _ts(claimed_before))
            ):
                try:
                    item.update(
                        actions=[
                            self._model.state.set(_DUE),
                            self._model.due.set(_DUE),
                            self._model.claimed_at.remove(),
                        ],
                        condition=self._model.state == "claimed",
                    )
                    released += 1
                except PynamoDBException as exc:
                    if not _condition_failed(exc):
                        raise
        return released

    def attempts(
        self, *, notification_id: str | None = None, account: str | None = None, limit: int = 100
    ) -> list[DeliveryAttempt]:
        """The delivery log, newest first: of one notification (its items), of one account (the
        ``by_account`` index, read only as far as ``limit``), or of everyone (a scan)."""
        with dynamodb_errors("read the delivery log"):
            if notification_id is not None:
                items = list(self._model.query(notification_id, self._model.sk.startswith("attempt#")))
            elif account is not None:
                items = list(
                    self._model.by_account.query(
                        account,
                        self._model.sk.startswith("attempt#"),
                        scan_index_forward=False,
                        limit=limit,
                    )
                )
            else:
                items = list(self._model.scan(self._model.sk.startswith("attempt#")))
        found = [DeliveryAttempt.model_validate_json(item.document or "{}") for item in items]
        if account is not None:
            found = [attempt for attempt in found if attempt.account == account]
        found.sort(key=lambda attempt: (attempt.attempted_at, attempt.attempt), reverse=True)
        return found[:limit]

    def pending(self) -> int:
        with dynamodb_errors("count pending deliveries"):
            due = sum(1 for _ in self._model.by_due.query(_DUE))
            claimed = sum(1 for _ in self._model.scan(self._model.state == "claimed"))
        return due + claimed

    def undelivered(self, notification_id: str) -> int:
        """Deliveries of one notification still due or claimed."""
        with dynamodb_errors("read deliveries"):
            items = self._model.query(notification_id, self._model.sk.startswith("delivery#"))
            return sum(1 for item in items if item.state in (_DUE, "claimed"))
