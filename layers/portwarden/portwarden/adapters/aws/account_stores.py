"""DynamoDB stores for accounts, users, IAM principals, registries and subscriptions (one table).

One table, keyed ``(pk, sk)``, holds every kind; the partition says which kind (and which account)
an item belongs to, so no query crosses accounts:

=========================  ==========================  =================================
item                       pk                          sk
=========================  ==========================  =================================
account                    ``ACCOUNT``                 account name
deleted account's name     ``RETIRED``                 account name (never reused, below)
user                       ``USER``                    username (unique across accounts)
IAM principal → account    ``PRINCIPAL``               principal ARN
registry                   ``REGISTRY#<account>``      registry
subscription               ``SUBSCRIPTION#<account>``  subscription id
subscription (key, type)   ``SUBKEY#<account>``        ``<type>#<key>`` (uniqueness guard)
=========================  ==========================  =================================

A deleted account's name is retired: its images, evaluations, policies and events stay in their
own tables under its key (docs/dynamodb.md), so an account created later under the same name would
see them; ``add_account`` refuses a retired name instead.

Each item keeps its record as JSON in ``record``. Inserts that must not overwrite are conditional
puts (``attribute_not_exists``), so two racing writers cannot both win.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from portwarden.adapters.aws.dynamo_models import TableBinding
from portwarden.core.errors import ConflictError, StoreError
from portwarden.core.model.accounts import (
    AccountRecord,
    RegistryRecord,
    SubscriptionRecord,
    SubscriptionType,
    UserRecord,
)

ACCOUNTS_PURPOSE = "accounts"
_CONDITION_FAILED = "ConditionalCheckFailedException"


class AccountTableItem(Model):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    record = UnicodeAttribute()
    # Users only: the account, so that an account's users can be listed.
    account = UnicodeAttribute(null=True)


def accounts_table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable parameters (also valid ``AWS::DynamoDB::Table`` properties), on-demand billing."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    }


@lru_cache(maxsize=16)
def account_table_model(binding: TableBinding) -> type[AccountTableItem]:
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
    bound: type[AccountTableItem] = type(
        f"AccountTableItem_{binding.table_name}", (AccountTableItem,), {"Meta": meta}
    )
    return bound


@contextmanager
def _errors(action: str) -> Iterator[None]:
    try:
        yield
    except PynamoDBException as exc:
        code = exc.cause_response_code or type(exc).__name__
        raise StoreError(f"cannot {action} ({code})") from exc


class _Table:
    def __init__(self, binding: TableBinding) -> None:
        self._model = account_table_model(binding)

    def put(self, pk: str, sk: str, record: str, *, account: str | None = None, new: bool = False) -> bool:
        """Write the item; with ``new``, only if absent (False when it exists)."""
        item = self._model(pk, sk, record=record, account=account)
        try:
            if new:
                item.save(condition=self._model.pk.does_not_exist())
            else:
                item.save()
        except PynamoDBException as exc:
            if new and exc.cause_response_code == _CONDITION_FAILED:
                return False
            raise StoreError(f"cannot store {pk} ({exc.cause_response_code or type(exc).__name__})") from exc
        return True

    def get(self, pk: str, sk: str) -> str | None:
        with _errors(f"read {pk}"):
            try:
                return str(self._model.get(pk, sk, consistent_read=True).record)
            except self._model.DoesNotExist:
                return None

    def query(self, pk: str) -> list[AccountTableItem]:
        with _errors(f"list {pk}"):
            return list(self._model.query(pk, consistent_read=True))

    def delete(self, pk: str, sk: str) -> bool:
        with _errors(f"delete an item of {pk}"):
            try:
                self._model(pk, sk).delete(condition=self._model.pk.exists())
            except PynamoDBException as exc:
                if exc.cause_response_code == _CONDITION_FAILED:
                    return False
                raise
        return True


class DynamoAccountStore:
    """``AccountStore`` (and the principal map) on the accounts table."""

    def __init__(self, binding: TableBinding) -> None:
        self._binding = binding
        self._table = _Table(binding)

    def add_account(self, account: AccountRecord) -> bool:
        if self._table.get("RETIRED", account.name) is not None:
            raise ConflictError(
                f"the name {account.name} belonged to a deleted account, whose records are kept; "
                "choose another name"
            )
        return self._table.put("ACCOUNT", account.name, account.model_dump_json(), new=True)

    def get_account(self, name: str) -> AccountRecord | None:
        record = self._table.get("ACCOUNT", name)
        return AccountRecord.model_validate_json(record) if record is not None else None

    def list_accounts(self) -> list[AccountRecord]:
        return [AccountRecord.model_validate_json(item.record) for item in self._table.query("ACCOUNT")]

    def put_account(self, account: AccountRecord) -> None:
        self._table.put("ACCOUNT", account.name, account.model_dump_json())

    def delete_account(self, name: str) -> bool:
        """The account, its users, registries, subscriptions and VEX documents; its name is retired
        first (images, evaluations, policies and events live in their own tables and stay)."""
        from portwarden.adapters.aws.vex_store import DynamoVexStore

        if self.get_account(name) is None:
            return False
        self._table.put("RETIRED", name, datetime.now(UTC).isoformat())

        DynamoVexStore(self._binding, name).delete_all()
        for user in self.list_users(name):
            self._table.delete("USER", user.username)
        for partition in (f"REGISTRY#{name}", f"SUBSCRIPTION#{name}", f"SUBKEY#{name}"):
            for item in self._table.query(partition):
                self._table.delete(partition, item.sk)
        return self._table.delete("ACCOUNT", name)

    def add_user(self, user: UserRecord) -> bool:
        return self._table.put("USER", user.username, user.model_dump_json(), account=user.account, new=True)

    def get_user(self, username: str) -> UserRecord | None:
        record = self._table.get("USER", username)
        return UserRecord.model_validate_json(record) if record is not None else None

    def list_users(self, account: str) -> list[UserRecord]:
        return [
            UserRecord.model_validate_json(item.record)
            for item in self._table.query("USER")
            if item.account == account
        ]

    def put_user(self, user: UserRecord) -> None:
        self._table.put("USER", user.username, user.model_dump_json(), account=user.account)

    def delete_user(self, username: str) -> bool:
        return self._table.delete("USER", username)

    # ---- IAM principals (API Gateway's caller) ------------------------------------------------------

    def principal_account(self, principal_arn: str) -> str | None:
        return self._table.get("PRINCIPAL", principal_arn)

    def put_principal(self, principal_arn: str, account: str) -> None:
        self._table.put("PRINCIPAL", principal_arn, account)

    def delete_principal(self, principal_arn: str) -> bool:
        return self._table.delete("PRINCIPAL", principal_arn)


class DynamoRegistryStore:
    def __init__(self, binding: TableBinding, account: str) -> None:
        self._table = _Table(binding)
        self._pk = f"REGISTRY#{account}"

    def put_registry(self, registry: RegistryRecord) -> None:
        self._table.put(self._pk, registry.registry, registry.model_dump_json())

    def get_registry(self, registry: str) -> RegistryRecord | None:
        record = self._table.get(self._pk, registry)
        return RegistryRecord.model_validate_json(record) if record is not None else None

    def list_registries(self) -> list[RegistryRecord]:
        return [RegistryRecord.model_validate_json(item.record) for item in self._table.query(self._pk)]

    def delete_registry(self, registry: str) -> bool:
        return self._table.delete(self._pk, registry)


class DynamoSubscriptionStore:
    """Subscriptions by id; (key, type) unique per account through a guard item written first."""

    def __init__(self, binding: TableBinding, account: str) -> None:
        self._table = _Table(binding)
        self._pk = f"SUBSCRIPTION#{account}"
        self._guard = f"SUBKEY#{account}"

    def add_subscription(self, subscription: SubscriptionRecord) -> SubscriptionRecord:
        guard = f"{subscription.subscription_type.value}#{subscription.subscription_key}"
        if not self._table.put(self._guard, guard, subscription.subscription_id, new=True):
            existing_id = self._table.get(self._guard, guard)
            existing = self.get_subscription(existing_id) if existing_id else None
            if existing is not None:
                return existing
            # The guard's subscription is being written by the winner: it will be there.
            raise StoreError(f"subscription {guard} is being created concurrently; try again")
        self._table.put(self._pk, subscription.subscription_id, subscription.model_dump_json())
        return subscription

    def put_subscription(self, subscription: SubscriptionRecord) -> None:
        self._table.put(self._pk, subscription.subscription_id, subscription.model_dump_json())

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        record = self._table.get(self._pk, subscription_id)
        return SubscriptionRecord.model_validate_json(record) if record is not None else None

    def list_subscriptions(
        self, subscription_key: str | None = None, subscription_type: str | None = None
    ) -> list[SubscriptionRecord]:
        if subscription_key is not None:
            records = self._of_key(subscription_key, subscription_type)
        else:
            records = [
                SubscriptionRecord.model_validate_json(item.record) for item in self._table.query(self._pk)
            ]
        return sorted(
            (
                r
                for r in records
                if (subscription_key is None or r.subscription_key == subscription_key)
                and (subscription_type is None or r.subscription_type.value == subscription_type)
            ),
            key=lambda r: (r.subscription_key, r.subscription_type.value),
        )

    def _of_key(self, subscription_key: str, subscription_type: str | None) -> list[SubscriptionRecord]:
        """One key's subscriptions through their guard items (one per type): a few reads whatever the
        account holds, where the rematch of one image would otherwise read every subscription."""
        kinds = [subscription_type] if subscription_type is not None else [k.value for k in SubscriptionType]
        found = []
        for kind in kinds:
            subscription_id = self._table.get(self._guard, f"{kind}#{subscription_key}")
            record = self.get_subscription(subscription_id) if subscription_id else None
            if record is not None:
                found.append(record)
        return found

    def delete_subscription(self, subscription_id: str) -> bool:
        existing = self.get_subscription(subscription_id)
        if existing is None:
            return False
        self._table.delete(self._guard, f"{existing.subscription_type.value}#{existing.subscription_key}")
        return self._table.delete(self._pk, subscription_id)
