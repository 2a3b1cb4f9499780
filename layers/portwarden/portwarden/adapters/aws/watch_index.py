"""The watch table on DynamoDB: which vulnerability namespaces each analyzed image has packages in, and
the small state the watchers keep between rounds (the ``ImageNamespaceIndex`` port).

Keys (``pk``, ``sk``):

* ``ns#<account>#<namespace>``, ``<digest>``: the image has packages looked up in that namespace. A
  feed change in namespace N reads one partition per changed namespace, never every analysis.
* ``image#<account>``, ``<digest>``: the image is indexed (with its namespaces and whether it has
  matches: NVD and KEV changes only alter existing matches).
* ``state``, ``<key>``: a JSON value (the database the last rematch ran against, the analysis
  statuses last reported for subscribed tags).

Re-indexing writes the new namespace items first and removes the stale ones last: a crash in between
leaves an image under a namespace it no longer has, which costs one needless rematch, never a missed one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pynamodb.attributes import BooleanAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.models import Model

from portwarden.adapters.aws.dynamo_models import TableBinding, bind_model, dynamodb_errors

_STATE = "state"


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable parameters (the template states the same; the tests create the table with them)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    }


class _WatchItem(Model):
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    namespaces = UnicodeSetAttribute(null=True)
    has_matches = BooleanAttribute(null=True)
    value = UnicodeAttribute(null=True)


def _model(table_name: str, region: str | None, host: str | None) -> type[_WatchItem]:
    return bind_model(_WatchItem, TableBinding(table_name, region, host))


def _namespace_key(account: str, namespace: str) -> str:
    return f"ns#{account}#{namespace}"


def _image_key(account: str) -> str:
    return f"image#{account}"


class DynamoImageNamespaceIndex:
    def __init__(self, table_name: str, *, region: str | None = None, host: str | None = None) -> None:
        self._model = _model(table_name, region, host)

    def set_image_namespaces(
        self, account: str, image_digest: str, namespaces: Iterable[str], *, has_matches: bool
    ) -> None:
        wanted = set(namespaces)
        with dynamodb_errors(f"index the namespaces of {image_digest}"):
            previous = self._get(_image_key(account), image_digest)
            before = set(previous.namespaces or ()) if previous is not None else set()
            with self._model.batch_write() as batch:
                for namespace in sorted(wanted - before):
                    batch.save(self._model(_namespace_key(account, namespace), image_digest))
            self._model(
                _image_key(account), image_digest, namespaces=wanted or None, has_matches=has_matches
            ).save()
            with self._model.batch_write() as batch:
                for namespace in sorted(before - wanted):
                    batch.delete(self._model(_namespace_key(account, namespace), image_digest))

    def indexed_images(self, account: str) -> set[str]:
        with dynamodb_errors("list the indexed images"):
            return {item.sk for item in self._model.query(_image_key(account))}

    def images_in_namespaces(self, account: str, namespaces: Iterable[str]) -> set[str]:
        found: set[str] = set()
        with dynamodb_errors("list the images of changed namespaces"):
            for namespace in set(namespaces):
                found.update(item.sk for item in self._model.query(_namespace_key(account, namespace)))
        return found

    def images_with_matches(self, account: str) -> set[str]:
        with dynamodb_errors("list the images with matches"):
            return {item.sk for item in self._model.query(_image_key(account)) if item.has_matches}

    def get_state(self, key: str) -> Any:
        with dynamodb_errors(f"read the watch state {key}"):
            item = self._get(_STATE, key)
        if item is None or item.value is None:
            return None
        return json.loads(item.value)

    def put_state(self, key: str, value: Any) -> None:
        with dynamodb_errors(f"write the watch state {key}"):
            self._model(_STATE, key, value=json.dumps(value, sort_keys=True)).save()

    def _get(self, pk: str, sk: str) -> _WatchItem | None:
        try:
            return self._model.get(pk, sk)
        except self._model.DoesNotExist:
            return None
