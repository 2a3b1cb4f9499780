"""The ``VexStore`` port on SQLite and on DynamoDB (moto): the same contract on both — documents per
account, oldest first, a revision that moves on every change, and nothing left when the account goes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.errors import VexDocumentError
from portwarden.core.ports import VexStore
from portwarden.core.services.accounts import new_account
from portwarden.core.triage.model import StoredVexDocument
from portwarden.core.triage.stored import accept_vex_document, stored_triage_inputs
from tests.support.stores import BASE_TIME

pytestmark = pytest.mark.integration


def openvex(vulnerability: str, product: str, *, padding: str = "") -> bytes:
    statement: dict[str, Any] = {
        "vulnerability": {"name": vulnerability},
        "products": [{"@id": product}],
        "status": "not_affected",
        "justification": "component_not_present",
    }
    if padding:
        statement["impact_statement"] = padding
    return json.dumps(
        {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": f"https://example.test/vex/{vulnerability}",
            "author": "security@example.test",
            "timestamp": "2026-11-01T00:00:00Z",
            "version": 1,
            "statements": [statement],
        }
    ).encode()


def document(vulnerability: str, minutes: int, document_id: str) -> StoredVexDocument:
    return accept_vex_document(
        openvex(vulnerability, "pkg:deb/debian/zlib1g"),
        now=BASE_TIME + timedelta(minutes=minutes),
        document_id=document_id,
    )


class Stores:
    """Two accounts' views of one backend, and a way to delete an account."""

    def __init__(self, of: Any, delete_account: Any) -> None:
        self.of = of
        self.delete_account = delete_account


@pytest.fixture(params=["sqlite", "dynamodb"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "sqlite":
        from portwarden.adapters.local.sqlite import LocalStore

        with LocalStore(tmp_path / "home") as local:
            local.accounts.add_account(new_account("alice"))
            yield Stores(lambda account: local.for_account(account).vex, local.accounts.delete_account)
        return
    import boto3
    from moto import mock_aws

    from portwarden.adapters.aws.account_stores import DynamoAccountStore, accounts_table_definition
    from portwarden.adapters.aws.dynamo_models import TableBinding
    from portwarden.adapters.aws.vex_store import DynamoVexStore

    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            **accounts_table_definition("pw-accounts")
        )
        binding = TableBinding("pw-accounts", "us-east-1")
        accounts = DynamoAccountStore(binding)
        accounts.add_account(new_account("alice"))
        yield Stores(lambda account: DynamoVexStore(binding, account), accounts.delete_account)


def test_documents_are_per_account_oldest_first_and_the_revision_moves(stores: Stores) -> None:
    alice: VexStore = stores.of("alice")
    bob: VexStore = stores.of("bob")
    assert alice.list_documents() == [] and alice.revision() is None

    # Stored out of order: listed by creation time (the order their statements are given in)
    alice.put_document(document("CVE-2099-0002", 5, "b-second"))
    alice.put_document(document("CVE-2099-0001", 1, "z-first"))
    first_revision = alice.revision()
    assert first_revision is not None
    assert [d.id for d in alice.list_documents()] == ["z-first", "b-second"]
    fetched = alice.get_document("z-first")
    assert fetched is not None and fetched == document("CVE-2099-0001", 1, "z-first")
    assert fetched.statements[0].document == "vex:z-first"
    inputs = stored_triage_inputs(alice.list_documents())
    assert [s.vulnerability for s in inputs.statements] == ["CVE-2099-0001", "CVE-2099-0002"]

    # Another account sees none of them and cannot delete them
    assert bob.list_documents() == [] and bob.get_document("z-first") is None
    assert not bob.delete_document("z-first") and bob.revision() is None

    assert alice.delete_document("z-first")
    assert not alice.delete_document("z-first")
    second_revision = alice.revision()
    assert second_revision is not None and second_revision >= first_revision
    assert [d.id for d in alice.list_documents()] == ["b-second"]


def test_deleting_the_account_deletes_its_documents(stores: Stores) -> None:
    stores.of("alice").put_document(document("CVE-2099-0001", 1, "doc"))
    stores.of("bob").put_document(document("CVE-2099-0001", 1, "doc"))
    assert stores.delete_account("alice")
    assert stores.of("alice").list_documents() == []
    assert [d.id for d in stores.of("bob").list_documents()] == ["doc"]


def test_dynamodb_refuses_a_document_too_large_for_an_item_and_keeps_the_rest() -> None:
    import os

    import boto3
    from moto import mock_aws

    from portwarden.adapters.aws.account_stores import accounts_table_definition
    from portwarden.adapters.aws.dynamo_models import TableBinding
    from portwarden.adapters.aws.vex_store import MAX_STORED_BYTES, DynamoVexStore

    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            **accounts_table_definition("pw-accounts")
        )
        store = DynamoVexStore(TableBinding("pw-accounts", "us-east-1"), "alice")
        store.put_document(document("CVE-2099-0001", 1, "small"))
        # Random text does not compress: larger than an item can hold
        noise = os.urandom(MAX_STORED_BYTES).hex()
        large = accept_vex_document(openvex("CVE-2099-0002", "x", padding=noise), now=BASE_TIME)
        with pytest.raises(VexDocumentError, match="too large to store"):
            store.put_document(large)
        assert [d.id for d in store.list_documents()] == ["small"]


def test_concurrent_writers_of_two_accounts_keep_their_documents_apart(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from portwarden.adapters.local.sqlite import LocalStore

    per_account = 40
    with LocalStore(tmp_path / "home") as local:

        def write(job: tuple[str, int]) -> None:
            account, index = job
            # Each thread opens its account's view of the one database (its own connection).
            store = local.for_account(account).vex
            store.put_document(document(f"CVE-2099-{index:04d}", index, f"{account}-{index}"))
            if index % 4 == 0:
                assert store.delete_document(f"{account}-{index}")

        jobs = [(account, index) for index in range(per_account) for account in ("alice", "bob")]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, jobs))

        for account in ("alice", "bob"):
            listed = local.for_account(account).vex.list_documents()
            expected = [f"{account}-{i}" for i in range(per_account) if i % 4 != 0]
            assert [d.id for d in listed] == expected
            assert all(d.statements[0].document == f"vex:{d.id}" for d in listed)
