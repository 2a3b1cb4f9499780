"""``VexStore`` on DynamoDB: an account's VEX documents, on the accounts table.

The items share the accounts table's key schema (``adapters/aws/account_stores.py``) in partitions of
their own, so no query crosses accounts:

=========================  ==========================  ===========================================
item                       pk                          sk
=========================  ==========================  ===========================================
VEX document               ``VEX#<account>``           document id
the account's revision     ``VEXREV``                  account (when its documents last changed)
=========================  ==========================  ===========================================

A document item keeps its record (the document as posted and its statements) as zstd-compressed
JSON: DynamoDB items are limited to 400 KB, and a document that does not fit even compressed is
refused with a clear error (``VexDocumentError``, a 400) rather than stored in part.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache

import zstandard
from pynamodb.attributes import BinaryAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from portwarden.adapters.aws.dynamo_models import TableBinding
from portwarden.core.errors import StoreError, VexDocumentError
from portwarden.core.triage.model import StoredVexDocument

# DynamoDB's item limit is 400 KB (names and values); the keys and attribute names take well under 50 KB.
MAX_STORED_BYTES = 350 * 1024
_REVISION_PARTITION = "VEXREV"
_ZSTD_LEVEL = 10


class VexTableItem(Model):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    # Document items: the compressed record and its creation time (the listing order).
    data = BinaryAttribute(null=True, legacy_encoding=False)
    created_at = UnicodeAttribute(null=True)
    # Revision items: when the account's documents last changed.
    changed_at = UnicodeAttribute(null=True)


@lru_cache(maxsize=16)
def vex_table_model(binding: TableBinding) -> type[VexTableItem]:
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
    bound: type[VexTableItem] = type(f"VexTableItem_{binding.table_name}", (VexTableItem,), {"Meta": meta})
    return bound


@contextmanager
def _errors(action: str) -> Iterator[None]:
    try:
        yield
    except PynamoDBException as exc:
        code = exc.cause_response_code or type(exc).__name__
        raise StoreError(f"cannot {action} ({code})") from exc


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DynamoVexStore:
    """The VEX documents of ``account`` on the accounts table."""

    def __init__(self, binding: TableBinding, account: str) -> None:
        self._model = vex_table_model(binding)
        self._account = account
        self._pk = f"VEX#{account}"

    def _touch(self) -> None:
        with _errors("record the VEX revision"):
            self._model(_REVISION_PARTITION, self._account, changed_at=_stamp(datetime.now(UTC))).save()

    def put_document(self, document: StoredVexDocument) -> None:
        data = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(document.model_dump_json().encode())
        if len(data) > MAX_STORED_BYTES:
            raise VexDocumentError(
                f"the VEX document is too large to store here ({len(data)} bytes compressed, "
                f"at most {MAX_STORED_BYTES}); split it into several documents"
            )
        item = self._model(self._pk, document.id, data=data, created_at=_stamp(document.created_at))
        with _errors("store a VEX document"):
            item.save()
        self._touch()

    def get_document(self, document_id: str) -> StoredVexDocument | None:
        with _errors("read a VEX document"):
            try:
                item = self._model.get(self._pk, document_id, consistent_read=True)
            except self._model.DoesNotExist:
                return None
        return _record(item)

    def list_documents(self) -> list[StoredVexDocument]:
        with _errors("list VEX documents"):
            items = list(self._model.query(self._pk, consistent_read=True))
        items.sort(key=lambda item: (item.created_at or "", item.sk))
        return [_record(item) for item in items]

    def delete_document(self, document_id: str) -> bool:
        with _errors("delete a VEX document"):
            try:
                self._model(self._pk, document_id).delete(condition=self._model.pk.exists())
            except PynamoDBException as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    return False
                raise
        self._touch()
        return True

    def revision(self) -> datetime | None:
        with _errors("read the VEX revision"):
            try:
                item = self._model.get(_REVISION_PARTITION, self._account, consistent_read=True)
            except self._model.DoesNotExist:
                return None
        return datetime.fromisoformat(item.changed_at).astimezone(UTC) if item.changed_at else None

    def delete_all(self) -> int:
        """Every document of the account and its revision (when the account is deleted); how many."""
        count = 0
        with _errors("delete the account's VEX documents"):
            for item in self._model.query(self._pk, consistent_read=True):
                item.delete()
                count += 1
            self._model(_REVISION_PARTITION, self._account).delete()
        return count


def _record(item: VexTableItem) -> StoredVexDocument:
    if item.data is None:
        raise StoreError(f"VEX item {item.sk} has no record")
    return StoredVexDocument.model_validate_json(zstandard.ZstdDecompressor().decompress(item.data))
