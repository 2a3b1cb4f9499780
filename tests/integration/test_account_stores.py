"""Account-scoped SQLite stores: isolation, the migrations (v1→v2 accounts, every earlier version→the
analysis claims), accounts/users, registries, subscriptions, the event log and the durable analysis
queue."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import zstandard

from portwarden.adapters.local.sqlite import _MIGRATIONS, SCHEMA_VERSION, LocalStore
from portwarden.core.errors import ConflictError, NotFoundError
from portwarden.core.model.accounts import (
    AccountState,
    EventQuery,
    QueuedAnalysis,
    RegistryRecord,
    SubscriptionRecord,
    SubscriptionType,
)
from portwarden.core.model.match import MatchCounts
from portwarden.core.model.records import (
    AnalysisClaim,
    AnalysisStatus,
    AnalyzedSummary,
    StoredBundle,
    TagRecord,
)
from portwarden.core.services.accounts import (
    authenticate,
    ensure_admin,
    hash_password,
    new_account,
    new_user,
    verify_password,
)
from tests.support.stores import BASE_TIME, digest, evaluation, event, image_record, vulnerability_match

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    with LocalStore(tmp_path / "home") as local:
        yield local


def bundle(bundle_id: str, *, active: bool = False) -> StoredBundle:
    return StoredBundle(
        bundle_id=bundle_id,
        active=active,
        document={"id": bundle_id},
        created_at=BASE_TIME,
        updated_at=BASE_TIME,
    )


def test_every_account_owned_record_is_invisible_to_another_account(store: LocalStore) -> None:
    # Given the same digest in two accounts, with different data in each
    alice, bob = store.for_account("alice"), store.for_account("bob")
    alice.catalog.put_image(image_record(1, tags=("r/a:1",)))
    bob.catalog.put_image(image_record(1, tags=("r/b:1",), status=AnalysisStatus.ANALYZED))
    alice.catalog.put_tag(TagRecord(repo_tag="r/a:1", image_digest=digest(1), updated_at=BASE_TIME))
    alice.analyses.put_matches(digest(1), [vulnerability_match(1)], None)
    alice.evaluations.put_evaluation(evaluation("ev-a", 1, BASE_TIME))
    alice.policies.put_bundle(bundle("p1", active=True))
    alice.events.put_event(event("e-a", BASE_TIME))
    alice.registries.put_registry(registry("reg.example:5000"))
    alice.subscriptions.add_subscription(subscription("s1", "r/a:1"))

    # Then each account sees its own image, and nothing else of the other's
    assert alice.catalog.get_image(digest(1)).repo_tags == ("r/a:1",)  # type: ignore[union-attr]
    assert bob.catalog.get_image(digest(1)).analysis_status is AnalysisStatus.ANALYZED  # type: ignore[union-attr]
    assert bob.catalog.get_tag("r/a:1") is None
    assert bob.analyses.get_matches(digest(1)) is None
    assert bob.analyses.get_match_counts(digest(1)) is None
    assert alice.analyses.get_match_counts(digest(1)) == MatchCounts.of([vulnerability_match(1)])
    assert bob.evaluations.latest_evaluation(digest(1)) is None
    assert bob.policies.list_bundles() == [] and bob.policies.active_bundle() is None
    assert bob.events.list_events() == [] and bob.events.get_event("e-a") is None
    assert bob.registries.list_registries() == []
    assert bob.subscriptions.list_subscriptions() == []
    assert bob.subscriptions.get_subscription("s1") is None
    # And deleting in one account leaves the other's record alone
    assert bob.catalog.delete_image(digest(1))
    assert alice.catalog.get_image(digest(1)) is not None
    assert alice.analyses.get_matches(digest(1)) is not None
    assert not bob.events.delete_event("e-a")
    assert alice.events.get_event("e-a") is not None


def test_delete_image_removes_what_hangs_off_it(store: LocalStore) -> None:
    store.catalog.put_image(image_record(1))
    store.catalog.put_tag(TagRecord(repo_tag="r/a:1", image_digest=digest(1), updated_at=BASE_TIME))
    store.analyses.put_matches(digest(1), [vulnerability_match(1)], None)
    store.evaluations.put_evaluation(evaluation("ev", 1, BASE_TIME))

    assert store.catalog.delete_image(digest(1)) is True

    assert store.catalog.get_image(digest(1)) is None
    assert store.catalog.get_tag("r/a:1") is None
    assert store.analyses.get_matches(digest(1)) is None
    assert store.evaluations.list_evaluations(digest(1)) == []
    assert store.catalog.delete_image(digest(1)) is False


def test_a_version_1_database_migrates_into_the_admin_account_with_nothing_lost(tmp_path: Path) -> None:
    # Given a database written before accounts existed
    home = tmp_path / "home"
    home.mkdir()
    path = home / "portwarden.db"
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for statement in _MIGRATIONS[0][1]:
            raw.execute(statement)
        raw.execute("INSERT INTO schema_version VALUES (1, '2026-01-01')")
        raw.execute(
            "INSERT INTO images VALUES (?, 'sha256:id', 'analyzed', '[\"r/a:1\"]', 'registry:r/a:1', "
            "'linux/amd64', 'debian:12', 7, '2026-03-01T12:00:00.000000Z', NULL, NULL)",
            (digest(1),),
        )
        raw.execute("INSERT INTO tags VALUES ('r/a:1', ?, '2026-03-01T12:00:00.000000Z')", (digest(1),))
        raw.execute(
            "INSERT INTO events VALUES ('e1', '2026-03-01T12:00:00.000000Z', ?)",
            (event("e1", BASE_TIME).model_dump_json(),),
        )
        raw.commit()
    with LocalStore(home) as migrated:
        migrated.policies.put_bundle(bundle("p1", active=True))
    # When it is opened by this version
    with LocalStore(home) as store:
        # Then every record is in account admin
        image = store.catalog.get_image(digest(1))
        assert image is not None and image.package_count == 7 and image.repo_tags == ("r/a:1",)
        assert store.catalog.get_tag("r/a:1") is not None
        assert [e.event_id for e in store.events.list_events()] == ["e1"]
        assert store.policies.active_bundle() is not None
        assert store.for_account("other").catalog.get_image(digest(1)) is None


def _database_at(path: Path, version: int) -> None:
    """A database as a release with schema ``version`` left it, holding one image being analyzed."""
    with closing(sqlite3.connect(path)) as raw:
        raw.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for number, statements in _MIGRATIONS:
            if number > version:
                break
            for statement in statements:
                raw.execute(statement)
            raw.execute("INSERT INTO schema_version VALUES (?, '2026-01-01')", (number,))
        if version == 1:
            raw.execute(
                "INSERT INTO images VALUES (?, 'sha256:id', 'analyzing', '[\"r/a:1\"]', 'registry:r/a:1', "
                "'linux/amd64', NULL, 0, '2026-03-01T12:00:00.000000Z', NULL, NULL)",
                (digest(1),),
            )
        else:
            raw.execute(
                "INSERT INTO images (account, image_digest, image_id, analysis_status, repo_tags, source, "
                "platform, package_count, created_at) VALUES ('admin', ?, 'sha256:id', 'analyzing', "
                "'[\"r/a:1\"]', 'registry:r/a:1', 'linux/amd64', 0, '2026-03-01T12:00:00.000000Z')",
                (digest(1),),
            )
        raw.commit()


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_a_database_from_before_claims_migrates_and_its_unclaimed_analysis_can_be_taken_over(
    tmp_path: Path, version: int
) -> None:
    # Given a database written by a release before claims existed, with an image left analyzing
    home = tmp_path / "home"
    home.mkdir()
    _database_at(home / "portwarden.db", version)
    # When this version opens it
    with LocalStore(home) as store:
        # Then every later migration was applied once, in order, and the image is intact and unclaimed
        assert store.schema_version == SCHEMA_VERSION
        record = store.catalog.get_image(digest(1))
        assert record is not None and record.repo_tags == ("r/a:1",)
        assert record.analysis_status is AnalysisStatus.ANALYZING
        assert (record.claim_owner, record.claim_deadline) == (None, None)
        # And a claim without a deadline counts as expired: a new run takes the analysis over
        claim = AnalysisClaim(owner="run-1", deadline=BASE_TIME + timedelta(hours=1))
        assert store.catalog.claim_analysis(digest(1), claim, now=BASE_TIME)
        assert not store.catalog.claim_analysis(
            digest(1), AnalysisClaim(owner="run-2", deadline=BASE_TIME + timedelta(hours=2)), now=BASE_TIME
        )
    with closing(sqlite3.connect(home / "portwarden.db")) as raw:
        versions = [row[0] for row in raw.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    with LocalStore(home) as reopened:
        record = reopened.catalog.get_image(digest(1))
        assert record is not None
        assert (record.claim_owner, record.claim_deadline) == ("run-1", BASE_TIME + timedelta(hours=1))


def test_matches_stored_before_counts_migrate_and_are_counted_once_in_their_account(tmp_path: Path) -> None:
    # Given a database from before match counts, holding one image's matches in two accounts
    home = tmp_path / "home"
    home.mkdir()
    _database_at(home / "portwarden.db", 5)
    alice_matches = [vulnerability_match(i) for i in range(5)]
    with closing(sqlite3.connect(home / "portwarden.db")) as raw:
        for account, matches in (("alice", alice_matches), ("bob", alice_matches[:1])):
            document = json.dumps(
                {"db_built_at": None, "matches": [m.model_dump(mode="json") for m in matches]}
            )
            raw.execute(
                "INSERT INTO matches (account, image_digest, db_built_at, document, stored_at) "
                "VALUES (?, ?, NULL, ?, '2026-03-01T12:00:00.000000Z')",
                (account, digest(1), zstandard.ZstdCompressor().compress(document.encode())),
            )
        raw.commit()
    # When this version opens it
    with LocalStore(home) as store:
        assert store.schema_version == SCHEMA_VERSION
        alice, bob = store.for_account("alice"), store.for_account("bob")
        # Then each account's counts are its own matches' (high: odd i; low: even i; KEV: i == 0)
        counts = alice.analyses.get_match_counts(digest(1))
        assert counts is not None and counts == MatchCounts.of(alice_matches)
        assert (counts.by_severity["high"], counts.by_severity["low"], counts.kev) == (2, 3, 1)
        assert bob.analyses.get_match_counts(digest(1)) == MatchCounts.of(alice_matches[:1])
        assert store.for_account("carol").analyses.get_match_counts(digest(1)) is None
        assert alice.analyses.get_matches(digest(1)) == alice_matches
    # And the counts were written beside the matches, so the next read decodes nothing
    with closing(sqlite3.connect(home / "portwarden.db")) as raw:
        stored = dict(raw.execute("SELECT account, counts FROM matches ORDER BY account").fetchall())
    assert MatchCounts.model_validate_json(stored["alice"]) == MatchCounts.of(alice_matches)
    assert MatchCounts.model_validate_json(stored["bob"]) == MatchCounts.of(alice_matches[:1])


def test_claims_stay_in_their_account(store: LocalStore) -> None:
    alice, bob = store.for_account("alice"), store.for_account("bob")
    alice.catalog.put_image(image_record(1))
    bob.catalog.put_image(image_record(1))
    in_an_hour = BASE_TIME + timedelta(hours=1)

    assert alice.catalog.claim_analysis(
        digest(1), AnalysisClaim(owner="run-a", deadline=in_an_hour), now=BASE_TIME
    )
    # The same digest in another account is another image: its own claim, untouched by alice's
    assert bob.catalog.get_image(digest(1)).analysis_status is AnalysisStatus.NOT_ANALYZED  # type: ignore[union-attr]
    assert bob.catalog.claim_analysis(
        digest(1), AnalysisClaim(owner="run-b", deadline=in_an_hour), now=BASE_TIME
    )
    assert not bob.catalog.release_claim(digest(1), "run-a", "not bob's claim")
    bob.catalog.mark_analyzed(digest(1), AnalyzedSummary(analyzed_at=BASE_TIME, package_count=2))
    alice_image = alice.catalog.get_image(digest(1))
    assert alice_image is not None and alice_image.analysis_status is AnalysisStatus.ANALYZING
    assert alice_image.claim_owner == "run-a"
    assert alice.catalog.release_claim(digest(1), "run-a", "failed")
    assert bob.catalog.get_image(digest(1)).analysis_status is AnalysisStatus.ANALYZED  # type: ignore[union-attr]
    # An account without the image has nothing to claim
    with pytest.raises(NotFoundError):
        store.for_account("carol").catalog.claim_analysis(
            digest(1), AnalysisClaim(owner="run-c", deadline=in_an_hour), now=BASE_TIME
        )
    with pytest.raises(NotFoundError):
        store.for_account("carol").catalog.mark_analyzed(
            digest(1), AnalyzedSummary(analyzed_at=BASE_TIME, package_count=0)
        )


def test_passwords_are_stored_as_scrypt_hashes_and_verified(store: LocalStore) -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("scrypt$") and "correct horse" not in hashed
    assert hash_password("correct horse") != hashed  # salted
    assert verify_password("correct horse", hashed)
    assert not verify_password("wrong horse", hashed)
    assert not verify_password("correct horse", "md5$abc")


def test_first_start_creates_admin_and_authentication_checks_account_state(store: LocalStore) -> None:
    generated = ensure_admin(store.accounts, None)
    assert generated is not None and len(generated) >= 16
    # The stored user holds only a hash of it
    admin = store.accounts.get_user("admin")
    assert admin is not None and generated not in admin.model_dump_json()
    assert ensure_admin(store.accounts, "ignored-now") is None
    assert authenticate(store.accounts, "admin", generated) is not None
    assert authenticate(store.accounts, "admin", "ignored-now") is None
    assert authenticate(store.accounts, "nobody", generated) is None

    store.accounts.add_account(new_account("team"))
    assert store.accounts.add_user(new_user("team", "dev", "s3cret!"))
    assert not store.accounts.add_user(new_user("admin", "dev", "other1"))  # usernames span accounts
    assert authenticate(store.accounts, "dev", "s3cret!") is not None
    team = store.accounts.get_account("team")
    assert team is not None
    store.accounts.put_account(team.model_copy(update={"state": AccountState.DISABLED}))
    assert authenticate(store.accounts, "dev", "s3cret!") is None


def test_deleting_an_account_removes_its_users_and_records(store: LocalStore) -> None:
    store.accounts.add_account(new_account("team"))
    store.accounts.add_user(new_user("team", "dev", "s3cret!"))
    team = store.for_account("team")
    team.catalog.put_image(image_record(1))
    store.catalog.put_image(image_record(1))

    assert store.accounts.delete_account("team")

    assert store.accounts.get_user("dev") is None
    assert team.catalog.get_image(digest(1)) is None
    assert store.catalog.get_image(digest(1)) is not None


def registry(name: str) -> RegistryRecord:
    return RegistryRecord(
        registry=name, registry_user="u", registry_pass="p", created_at=BASE_TIME, last_updated=BASE_TIME
    )


def subscription(
    subscription_id: str, key: str, kind: SubscriptionType = SubscriptionType.TAG_UPDATE
) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=subscription_id,
        subscription_key=key,
        subscription_type=kind,
        created_at=BASE_TIME,
        last_updated=BASE_TIME,
    )


def test_registries_round_trip_and_delete(store: LocalStore) -> None:
    store.registries.put_registry(registry("b.example"))
    store.registries.put_registry(registry("a.example:5000"))
    store.registries.put_registry(registry("a.example:5000").model_copy(update={"registry_user": "v"}))
    assert [r.registry for r in store.registries.list_registries()] == ["a.example:5000", "b.example"]
    assert store.registries.get_registry("a.example:5000").registry_user == "v"  # type: ignore[union-attr]
    assert store.registries.delete_registry("b.example")
    assert not store.registries.delete_registry("b.example")


def test_subscriptions_are_unique_per_key_and_type_and_filtered_on_both(store: LocalStore) -> None:
    first = store.subscriptions.add_subscription(subscription("s1", "r/a:1"))
    again = store.subscriptions.add_subscription(subscription("s2", "r/a:1"))
    store.subscriptions.add_subscription(subscription("s3", "r/a:1", SubscriptionType.VULN_UPDATE))
    store.subscriptions.add_subscription(subscription("s4", "r/b:1"))

    assert first.subscription_id == again.subscription_id == "s1"
    listed = store.subscriptions.list_subscriptions("r/a:1", "vuln_update")
    assert [s.subscription_id for s in listed] == ["s3"]
    assert len(store.subscriptions.list_subscriptions(subscription_key="r/a:1")) == 2
    assert len(store.subscriptions.list_subscriptions(subscription_type="tag_update")) == 2
    store.subscriptions.put_subscription(first.model_copy(update={"active": True}))
    assert store.subscriptions.get_subscription("s1").active  # type: ignore[union-attr]
    assert store.subscriptions.delete_subscription("s1")
    assert store.subscriptions.get_subscription("s1") is None


def test_event_queries_filter_page_and_delete(store: LocalStore) -> None:
    for i in range(7):
        kind = "user.image.analysis.completed" if i % 2 else "system.feeds.sync.completed"
        record = event(f"e{i}", BASE_TIME + timedelta(minutes=i)).model_copy(
            update={"type": kind, "level": "ERROR" if i == 3 else "INFO", "resource_id": f"r{i % 3}"}
        )
        store.events.put_event(record)

    first = store.events.query_events(EventQuery(limit=3))
    assert [e.event_id for e in first.events] == ["e6", "e5", "e4"] and first.next_page is True
    last = store.events.query_events(EventQuery(limit=3, page=3))
    assert [e.event_id for e in last.events] == ["e0"] and last.next_page is False
    assert [e.event_id for e in store.events.query_events(EventQuery(event_type="user.image")).events] == [
        "e5",
        "e3",
        "e1",
    ]
    assert len(store.events.query_events(EventQuery(event_type="user.image.anal")).events) == 0
    assert len(store.events.query_events(EventQuery(event_type="*.completed")).events) == 7
    assert [e.event_id for e in store.events.query_events(EventQuery(level="error")).events] == ["e3"]
    assert [e.event_id for e in store.events.query_events(EventQuery(resource_id="r0")).events] == [
        "e6",
        "e3",
        "e0",
    ]
    window = EventQuery(since=BASE_TIME + timedelta(minutes=1), before=BASE_TIME + timedelta(minutes=4))
    assert [e.event_id for e in store.events.query_events(window).events] == ["e3", "e2"]

    assert sorted(store.events.delete_events(window)) == ["e2", "e3"]
    assert store.events.get_event("e3") is None
    assert len(store.events.list_events()) == 5


def queued(n: int, account: str = "admin") -> QueuedAnalysis:
    return QueuedAnalysis(
        account=account,
        image_digest=digest(n),
        source=f"registry:r/a@{digest(n)}",
        platform="linux/amd64",
        enqueued_at=BASE_TIME + timedelta(seconds=n),
    )


def test_queue_takes_one_entry_per_digest_and_hands_items_out_oldest_first(store: LocalStore) -> None:
    assert store.queue.enqueue(queued(2))
    assert store.queue.enqueue(queued(1))
    assert not store.queue.enqueue(queued(1))  # same digest queued twice: once
    assert store.queue.enqueue(queued(1, "other"))  # another account's is its own item

    claimed = store.queue.claim()
    assert claimed is not None and claimed.image_digest == digest(1) and claimed.attempts == 1
    assert not store.queue.enqueue(queued(1))  # running counts too
    store.queue.finish(claimed.account, claimed.image_digest)
    assert store.queue.pending() == 2


def test_queue_after_a_restart_requeues_running_items_and_gives_up_after_max_attempts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with LocalStore(home) as store:
        store.queue.enqueue(queued(1))
        store.queue.enqueue(queued(2))
        assert store.queue.claim() is not None  # digest 1 running when the "server stops"
    with LocalStore(home) as store:
        requeued, given_up = store.queue.requeue_running(max_attempts=2)
        assert [i.image_digest for i in requeued] == [digest(1)] and given_up == []
        again = store.queue.claim()
        assert again is not None and again.image_digest == digest(1) and again.attempts == 2
    with LocalStore(home) as store:
        requeued, given_up = store.queue.requeue_running(max_attempts=2)
        assert requeued == [] and [i.image_digest for i in given_up] == [digest(1)]
        assert store.queue.pending() == 1


def test_concurrent_workers_never_claim_the_same_item(store: LocalStore) -> None:
    for n in range(200):
        store.queue.enqueue(queued(n))
    claimed: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        while (item := store.queue.claim()) is not None:
            with lock:
                claimed.append(item.image_digest)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(claimed) == 200 and len(set(claimed)) == 200


# ---- the DynamoDB adapters (moto) ------------------------------------------------------------------


@pytest.fixture
def dynamo_table() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    from portwarden.adapters.aws.account_stores import accounts_table_definition
    from portwarden.adapters.aws.dynamo_models import TableBinding

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**accounts_table_definition("pw-accounts"))
        yield TableBinding("pw-accounts", "us-east-1")


def test_dynamo_accounts_users_and_principals(dynamo_table: Any) -> None:
    from portwarden.adapters.aws.account_stores import DynamoAccountStore

    store = DynamoAccountStore(dynamo_table)
    assert ensure_admin(store, "admin-pass-1") is None  # a password given: nothing to print
    assert store.add_account(new_account("team"))
    assert not store.add_account(new_account("team"))
    assert store.add_user(new_user("team", "dev", "s3cret!"))
    assert not store.add_user(new_user("admin", "dev", "other1"))
    assert [u.username for u in store.list_users("team")] == ["dev"]
    assert authenticate(store, "admin", "admin-pass-1") is not None
    assert {a.name for a in store.list_accounts()} == {"admin", "team"}
    store.put_principal("arn:aws:iam::123456789012:role/ci", "team")
    assert store.principal_account("arn:aws:iam::123456789012:role/ci") == "team"
    assert store.principal_account("arn:aws:iam::123456789012:role/other") is None
    assert store.delete_account("team")
    assert store.get_user("dev") is None and store.get_account("team") is None
    assert not store.delete_account("team")
    # The deleted account's images and events stay under its key: its name is never given out again
    with pytest.raises(ConflictError, match="belonged to a deleted account"):
        store.add_account(new_account("team"))
    assert store.get_account("team") is None
    assert store.add_account(new_account("team-2"))


def test_dynamo_registries_and_subscriptions_per_account(dynamo_table: Any) -> None:
    from portwarden.adapters.aws.account_stores import DynamoRegistryStore, DynamoSubscriptionStore

    alice_registries = DynamoRegistryStore(dynamo_table, "alice")
    alice_registries.put_registry(registry("reg.example:5000"))
    assert [r.registry for r in alice_registries.list_registries()] == ["reg.example:5000"]
    assert DynamoRegistryStore(dynamo_table, "bob").list_registries() == []
    assert alice_registries.delete_registry("reg.example:5000")
    assert not alice_registries.delete_registry("reg.example:5000")

    alice = DynamoSubscriptionStore(dynamo_table, "alice")
    first = alice.add_subscription(subscription("s1", "r/a:1"))
    again = alice.add_subscription(subscription("s2", "r/a:1"))
    alice.add_subscription(subscription("s3", "r/a:1", SubscriptionType.VULN_UPDATE))
    assert first.subscription_id == again.subscription_id == "s1"
    assert [s.subscription_id for s in alice.list_subscriptions("r/a:1", "vuln_update")] == ["s3"]
    assert DynamoSubscriptionStore(dynamo_table, "bob").list_subscriptions() == []
    assert DynamoSubscriptionStore(dynamo_table, "bob").get_subscription("s1") is None
    assert alice.delete_subscription("s1")
    # Once deleted, the (key, type) pair is free again
    assert alice.add_subscription(subscription("s4", "r/a:1")).subscription_id == "s4"


def test_the_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "portwarden.db").touch(mode=0o644)  # as an earlier version left it
    with LocalStore(home) as store:
        ensure_admin(store.accounts, "admin-pass-1")
        store.registries.put_registry(registry("reg.example:5000"))
    for name in ("portwarden.db", "portwarden.db-wal"):
        path = home / name
        if path.exists():
            assert path.stat().st_mode & 0o777 == 0o600, name


def test_dynamo_subscriptions_of_one_key_are_read_without_the_whole_account(
    dynamo_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rematch item asks for its image's tags only: those reads never query the account's whole
    subscription list (thousands of items, read by each of thousands of items)."""
    from portwarden.adapters.aws import account_stores
    from portwarden.adapters.aws.account_stores import DynamoSubscriptionStore

    alice = DynamoSubscriptionStore(dynamo_table, "alice")
    for n in range(30):
        for kind in (SubscriptionType.VULN_UPDATE, SubscriptionType.POLICY_EVAL):
            alice.add_subscription(subscription(f"{kind.value}-{n}", f"r/a:{n}", kind))
    alice.add_subscription(subscription("bob-s", "r/a:7", SubscriptionType.TAG_UPDATE))
    DynamoSubscriptionStore(dynamo_table, "bob").add_subscription(subscription("other", "r/a:7"))
    whole = alice.list_subscriptions()
    assert len(whole) == 61
    alice.delete_subscription("policy_eval-3")

    def no_query(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the whole partition was queried")

    monkeypatch.setattr(account_stores._Table, "query", no_query)
    assert [(s.subscription_type.value, s.subscription_id) for s in alice.list_subscriptions("r/a:7")] == [
        ("policy_eval", "policy_eval-7"),
        ("tag_update", "bob-s"),
        ("vuln_update", "vuln_update-7"),
    ]
    assert [s.subscription_id for s in alice.list_subscriptions("r/a:3")] == ["vuln_update-3"]
    assert [s.subscription_id for s in alice.list_subscriptions("r/a:7", "vuln_update")] == ["vuln_update-7"]
    assert alice.list_subscriptions("r/a:99") == []
    # Keyed results are the whole list's, filtered.
    monkeypatch.undo()
    assert [s for s in whole if s.subscription_key == "r/a:7"] == alice.list_subscriptions("r/a:7")
