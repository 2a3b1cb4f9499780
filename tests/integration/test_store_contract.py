"""One contract for every store port, held by both adapters: SQLite (local) and DynamoDB + S3 (moto).

Each test runs once per adapter. Behaviour the ports leave open is fixed here, so both adapters agree:
listings are newest first with a deterministic tie-break, ``since`` is exclusive, a missing record is
None (NotFoundError where a port says so), datetimes come back timezone-aware in UTC.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from portwarden.adapters.aws.dynamo_models import (
    TableBinding,
    bundle_model,
    evaluation_model,
    event_model,
    feed_model,
    image_model,
    tag_model,
)
from portwarden.adapters.aws.s3 import S3BlobStore
from portwarden.adapters.aws.stores import TABLE_PURPOSES, AwsStores, AwsStoreSettings, table_definitions
from portwarden.adapters.local.blobs import FilesystemBlobStore
from portwarden.adapters.local.sqlite import SCHEMA_VERSION, LocalStore
from portwarden.core.errors import NotFoundError, StoreError
from portwarden.core.model.accounts import EventQuery
from portwarden.core.model.match import MatchCounts, MatchFix
from portwarden.core.model.records import AnalysisStatus, DbPointer, TagRecord
from portwarden.core.model.vulnerability import FixState, Severity
from portwarden.core.ports import (
    AnalysisStore,
    BlobStore,
    CatalogStore,
    EvaluationStore,
    EventLog,
    EventStore,
    FeedMetadataStore,
    ImageRemoval,
    PolicyStore,
)
from tests.support.stores import (
    BASE_TIME,
    StoreSet,
    analysis_document,
    bundle,
    digest,
    evaluation,
    event,
    image_record,
    local_stores,
    moto_stores,
    vulnerability_match,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "aws"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreSet]:
    if request.param == "sqlite":
        with local_stores(tmp_path / "home") as local:
            yield local
    else:
        with moto_stores() as aws:
            yield aws


def race(callers: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` on ``callers`` threads released together; results in caller order."""
    barrier = threading.Barrier(callers)
    results: list[Any] = [None] * callers
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_every_attribute_implements_its_port(stores: StoreSet) -> None:
    # Given a store set  /  Then each attribute is an instance of the port it stands for
    expected: dict[str, type[Any]] = {
        "catalog": CatalogStore,
        "analyses": AnalysisStore,
        "evaluations": EvaluationStore,
        "policies": PolicyStore,
        "events": EventStore,
        "feeds": FeedMetadataStore,
        "blobs": BlobStore,
    }
    for attribute, port in expected.items():
        implementation = getattr(stores, attribute)
        missing = [
            name
            for name in dir(port)
            if not name.startswith("_") and not callable(getattr(implementation, name, None))
        ]
        assert not missing, f"{attribute} lacks {missing}"


# ---- catalog: images ------------------------------------------------------------------------------------


def test_image_round_trip_and_missing(stores: StoreSet) -> None:
    # Given an image with every field set
    image = image_record(1, tags=("example.test/app:1", "example.test/app:latest")).model_copy(
        update={
            "analysis_status": AnalysisStatus.ANALYZED,
            "analyzed_at": BASE_TIME + timedelta(seconds=1, microseconds=123456),
            "last_error": None,
        }
    )
    # When it is stored  /  Then it reads back equal, and an unknown digest reads as None
    stores.catalog.put_image(image)
    assert stores.catalog.get_image(image.image_digest) == image
    assert stores.catalog.get_image(digest(999)) is None
    assert stores.catalog.get_image("") is None


def test_put_image_replaces_the_record(stores: StoreSet) -> None:
    stores.catalog.put_image(image_record(1))
    changed = image_record(1, tags=("x:1",)).model_copy(update={"package_count": 7, "distro": None})
    stores.catalog.put_image(changed)
    assert stores.catalog.get_image(digest(1)) == changed
    assert len(stores.catalog.list_images()) == 1


def test_naive_datetimes_are_taken_as_utc(stores: StoreSet) -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5, 678901)
    stores.catalog.put_image(image_record(1, created_at=naive))
    stored = stores.catalog.get_image(digest(1))
    assert stored is not None
    assert stored.created_at == naive.replace(tzinfo=UTC)
    assert stored.created_at.tzinfo is not None


def test_other_timezones_are_kept_as_the_same_instant(stores: StoreSet) -> None:
    plus_two = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    stores.catalog.put_image(image_record(1, created_at=plus_two))
    stored = stores.catalog.get_image(digest(1))
    assert (
        stored is not None and stored.created_at == plus_two and stored.created_at.utcoffset() == timedelta(0)
    )


def test_list_images_newest_first_with_limit(stores: StoreSet) -> None:
    # Given images created out of order, two of them at the same instant
    same = BASE_TIME + timedelta(hours=5)
    for n, created in ((1, BASE_TIME), (2, BASE_TIME + timedelta(hours=9)), (3, same), (4, same)):
        stores.catalog.put_image(image_record(n, created_at=created))
    # Then the listing is newest first; equal times are ordered by digest, descending
    listed = [image.image_digest for image in stores.catalog.list_images()]
    assert listed == [digest(2), digest(4), digest(3), digest(1)]
    assert [i.image_digest for i in stores.catalog.list_images(limit=2)] == [digest(2), digest(4)]
    assert stores.catalog.list_images(limit=0) == []


def test_list_images_by_status(stores: StoreSet) -> None:
    for n in range(1, 6):
        stores.catalog.put_image(image_record(n))
    stores.catalog.set_status(digest(2), AnalysisStatus.ANALYZED)
    stores.catalog.set_status(digest(4), AnalysisStatus.ANALYZED)
    analyzed = stores.catalog.list_images_by_status(AnalysisStatus.ANALYZED)
    assert [i.image_digest for i in analyzed] == [digest(4), digest(2)]
    assert all(i.analysis_status == AnalysisStatus.ANALYZED for i in analyzed)
    waiting = stores.catalog.list_images_by_status(AnalysisStatus.NOT_ANALYZED, limit=2)
    assert [i.image_digest for i in waiting] == [digest(5), digest(3)]
    assert stores.catalog.list_images_by_status(AnalysisStatus.ANALYSIS_FAILED) == []


def test_add_image_only_when_absent(stores: StoreSet) -> None:
    first = image_record(1)
    assert stores.catalog.add_image(first) is True
    stores.catalog.set_status(digest(1), AnalysisStatus.ANALYZING)
    # A second trigger for the same digest must not reset the image it finds
    assert stores.catalog.add_image(first) is False
    stored = stores.catalog.get_image(digest(1))
    assert stored is not None and stored.analysis_status == AnalysisStatus.ANALYZING


def test_set_status_unconditional_sets_and_clears_error(stores: StoreSet) -> None:
    stores.catalog.put_image(image_record(1))
    assert stores.catalog.set_status(digest(1), AnalysisStatus.ANALYSIS_FAILED, error="layer 3: bad gzip")
    failed = stores.catalog.get_image(digest(1))
    assert failed is not None
    assert (
        failed.analysis_status == AnalysisStatus.ANALYSIS_FAILED and failed.last_error == "layer 3: bad gzip"
    )
    assert stores.catalog.set_status(digest(1), AnalysisStatus.ANALYZING)
    retried = stores.catalog.get_image(digest(1))
    assert retried is not None
    assert retried.analysis_status == AnalysisStatus.ANALYZING and retried.last_error is None
    # Everything else is untouched
    assert retried.model_copy(update={"analysis_status": AnalysisStatus.NOT_ANALYZED}) == image_record(1)


def test_set_status_conditional(stores: StoreSet) -> None:
    stores.catalog.put_image(image_record(1))
    assert stores.catalog.set_status(
        digest(1), AnalysisStatus.ANALYZING, expected=AnalysisStatus.NOT_ANALYZED
    )
    # The same transition again finds the wrong status: refused, record unchanged
    assert not stores.catalog.set_status(
        digest(1), AnalysisStatus.ANALYZING, error="dup", expected=AnalysisStatus.NOT_ANALYZED
    )
    stored = stores.catalog.get_image(digest(1))
    assert stored is not None
    assert stored.analysis_status == AnalysisStatus.ANALYZING and stored.last_error is None
    assert stores.catalog.set_status(digest(1), AnalysisStatus.ANALYZED, expected=AnalysisStatus.ANALYZING)
    assert stores.catalog.list_images_by_status(AnalysisStatus.ANALYZED)[0].image_digest == digest(1)


def test_set_status_of_unknown_image_is_not_found(stores: StoreSet) -> None:
    with pytest.raises(NotFoundError):
        stores.catalog.set_status(digest(7), AnalysisStatus.ANALYZING)
    with pytest.raises(NotFoundError):
        stores.catalog.set_status(digest(7), AnalysisStatus.ANALYZING, expected=AnalysisStatus.NOT_ANALYZED)
    assert stores.catalog.get_image(digest(7)) is None


def test_concurrent_starts_one_wins(stores: StoreSet) -> None:
    # Given one image not yet analyzed, and eight triggers for it released at once
    stores.catalog.put_image(image_record(1))

    def start(_: int) -> bool:
        return stores.catalog.set_status(
            digest(1), AnalysisStatus.ANALYZING, expected=AnalysisStatus.NOT_ANALYZED
        )

    # Then exactly one starts the analysis
    for _round in range(3):
        stores.catalog.set_status(digest(1), AnalysisStatus.NOT_ANALYZED)
        results = race(8, start)
        assert results.count(True) == 1, results
        stored = stores.catalog.get_image(digest(1))
        assert stored is not None and stored.analysis_status == AnalysisStatus.ANALYZING


def test_concurrent_adds_one_wins(stores: StoreSet) -> None:
    results = race(6, lambda _: stores.catalog.add_image(image_record(1)))
    assert results.count(True) == 1, results


def test_add_repo_tag_keeps_the_status_and_is_idempotent(stores: StoreSet) -> None:
    stores.catalog.put_image(image_record(1))
    stores.catalog.set_status(digest(1), AnalysisStatus.ANALYZED)
    stores.catalog.add_repo_tag(digest(1), "registry.example/app:2")
    stores.catalog.add_repo_tag(digest(1), "registry.example/app:2")
    stored = stores.catalog.get_image(digest(1))
    assert stored is not None
    assert stored.analysis_status == AnalysisStatus.ANALYZED
    assert stored.repo_tags.count("registry.example/app:2") == 1
    assert set(image_record(1).repo_tags) < set(stored.repo_tags)
    with pytest.raises(NotFoundError):
        stores.catalog.add_repo_tag(digest(9), "registry.example/app:2")


def test_concurrent_tag_additions_are_all_kept(stores: StoreSet) -> None:
    stores.catalog.put_image(image_record(1))
    race(6, lambda index: stores.catalog.add_repo_tag(digest(1), f"registry.example/app:{index}"))
    stored = stores.catalog.get_image(digest(1))
    assert stored is not None
    assert {f"registry.example/app:{index}" for index in range(6)} <= set(stored.repo_tags)


# ---- catalog: tags --------------------------------------------------------------------------------------


def test_tags_round_trip_overwrite_and_listing(stores: StoreSet) -> None:
    tags = [
        TagRecord(repo_tag="example.test/b:1", image_digest=digest(1), updated_at=BASE_TIME),
        TagRecord(repo_tag="docker.io/library/a:latest", image_digest=digest(2), updated_at=BASE_TIME),
        TagRecord(repo_tag="example.test/b:2", image_digest=digest(3), updated_at=BASE_TIME),
    ]
    for tag in tags:
        stores.catalog.put_tag(tag)
    assert stores.catalog.get_tag("example.test/b:1") == tags[0]
    assert stores.catalog.get_tag("example.test/b:9") is None
    moved = TagRecord(
        repo_tag="example.test/b:1", image_digest=digest(9), updated_at=BASE_TIME + timedelta(1)
    )
    stores.catalog.put_tag(moved)
    assert stores.catalog.get_tag("example.test/b:1") == moved
    assert stores.catalog.list_tags() == [tags[1], moved, tags[2]]


# ---- analyses and matches -------------------------------------------------------------------------------


def test_analysis_round_trip_and_missing(stores: StoreSet) -> None:
    analysis = analysis_document(file_count=10)
    stores.analyses.put_analysis(digest(1), analysis)
    assert stores.analyses.get_analysis(digest(1)) == analysis
    assert stores.analyses.get_analysis(digest(2)) is None
    replaced = analysis_document(file_count=3)
    stores.analyses.put_analysis(digest(1), replaced)
    assert stores.analyses.get_analysis(digest(1)) == replaced


def test_large_analysis_round_trip(stores: StoreSet) -> None:
    # Given an analysis of an image with 20,000 files and 2,000 packages
    analysis = analysis_document(file_count=20_000, package_count=2_000)
    assert len(analysis.model_dump_json()) > 4_000_000
    # When stored and read back  /  Then nothing is lost
    stores.analyses.put_analysis(digest(1), analysis)
    loaded = stores.analyses.get_analysis(digest(1))
    assert loaded is not None
    assert len(loaded.files) == 20_000 and len(loaded.packages) == 2_000
    assert loaded == analysis


def test_matches_round_trip_empty_and_missing(stores: StoreSet) -> None:
    matches = [vulnerability_match(i) for i in range(25)]
    stores.analyses.put_matches(digest(1), matches, BASE_TIME)
    assert stores.analyses.get_matches(digest(1)) == matches
    # An image matched with no findings is not the same as an image never matched
    stores.analyses.put_matches(digest(2), [], None)
    assert stores.analyses.get_matches(digest(2)) == []
    assert stores.analyses.get_matches(digest(3)) is None
    stores.analyses.put_matches(digest(1), matches[:2], BASE_TIME + timedelta(days=1))
    assert stores.analyses.get_matches(digest(1)) == matches[:2]


def _severity_counts(**given: int) -> dict[str, int]:
    return {
        name: given.get(name, 0) for name in ("unknown", "negligible", "low", "medium", "high", "critical")
    }


def test_match_counts_are_stored_with_the_matches_and_follow_a_rematch(stores: StoreSet) -> None:
    # Given 25 matches (odd i High, even i Low; every one fixed; i == 0 KEV-listed) and one unfixed
    unfixed = vulnerability_match(25).model_copy(
        update={"fix": MatchFix(state=FixState.NOT_FIXED), "severity": Severity.CRITICAL}
    )
    stores.analyses.put_matches(digest(1), [*(vulnerability_match(i) for i in range(25)), unfixed], BASE_TIME)
    # Then the counts say so, per severity, without the matches being read
    counts = stores.analyses.get_match_counts(digest(1))
    assert counts == MatchCounts(
        by_severity=_severity_counts(high=12, low=13, critical=1),
        fixable=_severity_counts(high=12, low=13),
        kev=1,
    )
    # And a rematch replaces them with the new list's
    stores.analyses.put_matches(digest(1), [vulnerability_match(i) for i in range(1, 4)], BASE_TIME)
    assert stores.analyses.get_match_counts(digest(1)) == MatchCounts(
        by_severity=_severity_counts(high=2, low=1), fixable=_severity_counts(high=2, low=1), kev=0
    )
    # An image matched with no findings has zero counts; one never matched has none
    stores.analyses.put_matches(digest(2), [], None)
    assert stores.analyses.get_match_counts(digest(2)) == MatchCounts(
        by_severity=_severity_counts(), fixable=_severity_counts(), kev=0
    )
    assert stores.analyses.get_match_counts(digest(3)) is None


def test_aws_matches_stored_without_counts_are_counted_when_first_read() -> None:
    with moto_stores() as aws:
        analyses = aws.analyses
        # Given a match list stored before counts were kept beside it
        analyses.put_matches(digest(1), [vulnerability_match(i) for i in range(5)], BASE_TIME)
        documents = aws.documents
        key = documents.object_key(analyses.match_counts_key(digest(1)))
        documents.client.delete_object(Bucket=documents.bucket, Key=key)
        assert documents.get(analyses.match_counts_key(digest(1))) is None
        # When its counts are read  /  Then they are counted from the matches, and kept
        expected = MatchCounts(
            by_severity=_severity_counts(high=2, low=3), fixable=_severity_counts(high=2, low=3), kev=1
        )
        assert analyses.get_match_counts(digest(1)) == expected
        kept = documents.get(analyses.match_counts_key(digest(1)))
        assert kept is not None and MatchCounts.model_validate_json(kept) == expected


# ---- evaluations ----------------------------------------------------------------------------------------


def test_latest_evaluation_is_by_time_not_insertion(stores: StoreSet) -> None:
    # Given evaluations stored out of time order, for two tags and two images
    records = [
        evaluation("e-b", 1, BASE_TIME + timedelta(hours=2), repo_tag="app:1"),
        evaluation("e-c", 1, BASE_TIME + timedelta(hours=3), repo_tag="app:latest"),
        evaluation("e-a", 1, BASE_TIME + timedelta(hours=1), repo_tag="app:1"),
        evaluation("e-z", 2, BASE_TIME + timedelta(hours=9), repo_tag="app:1"),
    ]
    for record in records:
        stores.evaluations.put_evaluation(record)
    # Then the latest is the newest by time, optionally for one tag
    assert stores.evaluations.latest_evaluation(digest(1)) == records[1]
    assert stores.evaluations.latest_evaluation(digest(1), "app:1") == records[0]
    assert stores.evaluations.latest_evaluation(digest(1), "app:none") is None
    assert stores.evaluations.latest_evaluation(digest(3)) is None
    assert stores.evaluations.list_evaluations(digest(1)) == [records[1], records[0], records[2]]
    assert stores.evaluations.list_evaluations(digest(3)) == []


def test_evaluation_same_instant_orders_by_id(stores: StoreSet) -> None:
    for evaluation_id in ("e-1", "e-3", "e-2"):
        stores.evaluations.put_evaluation(evaluation(evaluation_id, 1, BASE_TIME))
    assert [e.evaluation_id for e in stores.evaluations.list_evaluations(digest(1))] == ["e-3", "e-2", "e-1"]
    latest = stores.evaluations.latest_evaluation(digest(1))
    assert latest is not None and latest.evaluation_id == "e-3"


def test_evaluation_document_round_trip_small_and_large(stores: StoreSet) -> None:
    # A result document far beyond a DynamoDB item (400 KB) even compressed: random-looking content
    rows = [[f"{i:08x}" * 8, i, {"trigger": f"t{i * 7919 % 104729:x}"}] for i in range(40_000)]
    big = evaluation("e-big", 1, BASE_TIME, document={"rows": rows, "final_action": "stop"})
    small = evaluation("e-small", 1, BASE_TIME + timedelta(seconds=1))
    stores.evaluations.put_evaluation(big)
    stores.evaluations.put_evaluation(small)
    assert stores.evaluations.list_evaluations(digest(1)) == [small, big]


def test_list_evaluations_tolerates_repo_tag_less_records(stores: StoreSet) -> None:
    record = evaluation("e-1", 1, BASE_TIME, repo_tag=None)
    stores.evaluations.put_evaluation(record)
    assert stores.evaluations.latest_evaluation(digest(1)) == record
    assert stores.evaluations.latest_evaluation(digest(1), "app:1") is None


# ---- policy bundles -------------------------------------------------------------------------------------


def test_bundles_round_trip_listing_and_missing(stores: StoreSet) -> None:
    for bundle_id in ("zeta", "alpha", "mid"):
        stores.policies.put_bundle(bundle(bundle_id))
    assert stores.policies.get_bundle("alpha") == bundle("alpha")
    assert stores.policies.get_bundle("nope") is None
    assert [b.bundle_id for b in stores.policies.list_bundles()] == ["alpha", "mid", "zeta"]
    assert stores.policies.active_bundle() is None
    updated = bundle("alpha", document={"id": "alpha", "version": "1_0", "policies": [{"id": "p"}]})
    stores.policies.put_bundle(updated)
    assert stores.policies.get_bundle("alpha") == updated


def test_exactly_one_bundle_is_active(stores: StoreSet) -> None:
    for bundle_id in ("a", "b", "c"):
        stores.policies.put_bundle(bundle(bundle_id))
    stores.policies.activate("a")
    stores.policies.activate("b")
    active = stores.policies.active_bundle()
    assert active is not None and active.bundle_id == "b" and active.active
    assert [b.bundle_id for b in stores.policies.list_bundles() if b.active] == ["b"]
    a = stores.policies.get_bundle("a")
    assert a is not None and not a.active
    # Activating an unknown bundle fails and changes nothing
    with pytest.raises(NotFoundError):
        stores.policies.activate("missing")
    active = stores.policies.active_bundle()
    assert active is not None and active.bundle_id == "b"


def test_put_bundle_active_flag(stores: StoreSet) -> None:
    stores.policies.put_bundle(bundle("a", active=True))
    stores.policies.put_bundle(bundle("b", active=True))
    assert [b.bundle_id for b in stores.policies.list_bundles() if b.active] == ["b"]
    # Re-storing the active bundle with active=False keeps it active (only another activation changes it)
    stores.policies.put_bundle(bundle("b", active=False))
    active = stores.policies.active_bundle()
    assert active is not None and active.bundle_id == "b"


def test_concurrent_activations_leave_one_active(stores: StoreSet) -> None:
    ids = [f"bundle-{i}" for i in range(6)]
    for bundle_id in ids:
        stores.policies.put_bundle(bundle(bundle_id))
    race(len(ids), lambda i: stores.policies.activate(ids[i]))
    listed = stores.policies.list_bundles()
    assert sum(1 for b in listed if b.active) == 1
    active = stores.policies.active_bundle()
    assert active is not None and active.bundle_id in ids and active.active


def test_delete_bundle(stores: StoreSet) -> None:
    stores.policies.put_bundle(bundle("a"))
    stores.policies.put_bundle(bundle("b"))
    stores.policies.activate("b")
    assert stores.policies.delete_bundle("a") is True
    assert stores.policies.delete_bundle("a") is False
    assert stores.policies.get_bundle("a") is None
    active = stores.policies.active_bundle()
    assert active is not None and active.bundle_id == "b"
    # Deleting the active bundle leaves no bundle active
    assert stores.policies.delete_bundle("b") is True
    assert stores.policies.active_bundle() is None
    assert stores.policies.list_bundles() == []
    # A bundle stored again under the old id is not active by inheritance
    stores.policies.put_bundle(bundle("b"))
    assert stores.policies.active_bundle() is None


def test_large_bundle_round_trip(stores: StoreSet) -> None:
    # Digests do not compress: this allowlist stays far above a DynamoDB item even compressed
    allowlist = [
        {
            "id": f"rule-{i}",
            "gate": "vulnerabilities",
            "trigger_id": hashlib.sha256(str(i).encode()).hexdigest(),
        }
        for i in range(30_000)
    ]
    big = bundle("big", document={"id": "big", "version": "1_0", "whitelists": [{"items": allowlist}]})
    stores.policies.put_bundle(big)
    stores.policies.activate("big")
    assert stores.policies.get_bundle("big") == big.model_copy(update={"active": True})
    assert stores.policies.active_bundle() == big.model_copy(update={"active": True})


# ---- events ---------------------------------------------------------------------------------------------


def test_events_newest_first_since_and_limit(stores: StoreSet) -> None:
    # Given events over three days, stored out of order, two at the same instant
    day = timedelta(days=1)
    stamps = {
        "e1": BASE_TIME - 2 * day,
        "e2": BASE_TIME - day,
        "e3": BASE_TIME - day + timedelta(hours=3),
        "e4": BASE_TIME,
        "e5": BASE_TIME,
        "e6": BASE_TIME + timedelta(minutes=1),
    }
    for event_id in ("e4", "e1", "e6", "e3", "e2", "e5"):
        stores.events.put_event(event(event_id, stamps[event_id]))
    newest_first = ["e6", "e5", "e4", "e3", "e2", "e1"]
    assert [e.event_id for e in stores.events.list_events()] == newest_first
    assert stores.events.list_events()[0] == event("e6", stamps["e6"])
    assert [e.event_id for e in stores.events.list_events(limit=4)] == newest_first[:4]
    # since is exclusive: events at exactly that instant are not repeated
    assert [e.event_id for e in stores.events.list_events(since=stamps["e2"])] == ["e6", "e5", "e4", "e3"]
    assert [e.event_id for e in stores.events.list_events(since=stamps["e4"])] == ["e6"]
    assert [e.event_id for e in stores.events.list_events(since=stamps["e1"], limit=2)] == ["e6", "e5"]
    assert stores.events.list_events(since=stamps["e6"]) == []
    assert stores.events.list_events(limit=0) == []


def test_events_across_many_days_respect_limit(stores: StoreSet) -> None:
    for i in range(40):
        stores.events.put_event(event(f"ev-{i:02d}", BASE_TIME + timedelta(hours=7 * i)))
    listed = stores.events.list_events(limit=15)
    assert [e.event_id for e in listed] == [f"ev-{i:02d}" for i in range(39, 24, -1)]
    since = BASE_TIME + timedelta(hours=7 * 30)
    assert [e.event_id for e in stores.events.list_events(since=since, limit=100)] == [
        f"ev-{i:02d}" for i in range(39, 30, -1)
    ]


def _logged(stores: StoreSet) -> EventLog:
    log: EventLog = stores.events
    return log


def test_event_log_filters_pages_and_bulk_deletes(stores: StoreSet) -> None:
    # Given seven events over two days, of two types, one an error, three resources
    log = _logged(stores)
    for i in range(7):
        kind = "user.image.analysis.completed" if i % 2 else "system.feeds.sync.completed"
        record = event(f"e{i}", BASE_TIME + timedelta(hours=5 * i)).model_copy(
            update={
                "type": kind,
                "level": "ERROR" if i == 3 else "INFO",
                "resource_id": f"r{i % 3}",
                "resource_type": "image" if i % 2 else "feed",
            }
        )
        log.put_event(record)

    def ids(query: EventQuery) -> list[str]:
        return [e.event_id for e in log.query_events(query).events]

    # Pages of three, newest first; next_page is a real boolean
    first = log.query_events(EventQuery(limit=3))
    assert [e.event_id for e in first.events] == ["e6", "e5", "e4"]
    assert first.next_page is True and first.page == 1
    second = log.query_events(EventQuery(limit=3, page=2))
    assert [e.event_id for e in second.events] == ["e3", "e2", "e1"] and second.next_page is True
    last = log.query_events(EventQuery(limit=3, page=3))
    assert [e.event_id for e in last.events] == ["e0"] and last.next_page is False
    exact = log.query_events(EventQuery(limit=7))
    assert len(exact.events) == 7 and exact.next_page is False
    assert log.query_events(EventQuery(limit=3, page=9)).events == ()
    # Type prefix (whole dotted components only) and wildcard
    assert ids(EventQuery(event_type="user.image")) == ["e5", "e3", "e1"]
    assert ids(EventQuery(event_type="user.image.")) == ["e5", "e3", "e1"]
    assert ids(EventQuery(event_type="user.image.anal")) == []
    assert len(ids(EventQuery(event_type="*.completed"))) == 7
    assert ids(EventQuery(event_type="system.*.sync.*")) == ["e6", "e4", "e2", "e0"]
    # Level (case-insensitive), resource type and id
    assert ids(EventQuery(level="error")) == ["e3"]
    assert ids(EventQuery(resource_id="r0")) == ["e6", "e3", "e0"]
    assert ids(EventQuery(resource_type="image", resource_id="r0")) == ["e3"]
    # Filters and pages together: the page counts matching events only
    filtered = log.query_events(EventQuery(event_type="system", limit=3, page=2))
    assert [e.event_id for e in filtered.events] == ["e0"] and filtered.next_page is False
    # Time window: both bounds exclusive, across days
    window = EventQuery(since=BASE_TIME + timedelta(hours=5), before=BASE_TIME + timedelta(hours=20))
    assert ids(window) == ["e3", "e2"]
    assert ids(EventQuery(before=BASE_TIME + timedelta(hours=10))) == ["e1", "e0"]
    assert ids(EventQuery(since=BASE_TIME + timedelta(hours=25))) == ["e6"]

    # Bulk delete by the same filters, paging ignored
    assert sorted(log.delete_events(window.model_copy(update={"limit": 1}))) == ["e2", "e3"]
    assert log.get_event("e3") is None and log.get_event("e2") is None
    assert [e.event_id for e in log.list_events()] == ["e6", "e5", "e4", "e1", "e0"]
    assert log.delete_events(window) == []


def test_event_log_get_delete_and_replace_by_id(stores: StoreSet) -> None:
    log = _logged(stores)
    first = event("e1", BASE_TIME)
    log.put_event(first)
    log.put_event(event("e2", BASE_TIME + timedelta(days=1)))
    assert log.get_event("e1") == first
    assert log.get_event("missing") is None and log.get_event("") is None
    # The same id stored again (at another time) replaces the event: it is listed once
    moved = first.model_copy(update={"timestamp": BASE_TIME + timedelta(days=3), "message": "again"})
    log.put_event(moved)
    assert log.get_event("e1") == moved
    assert [e.event_id for e in log.list_events()] == ["e1", "e2"]
    # Delete by id: once
    assert log.delete_event("e1") is True
    assert log.delete_event("e1") is False
    assert log.delete_event("missing") is False
    assert log.get_event("e1") is None
    assert [e.event_id for e in log.list_events()] == ["e2"]


def test_event_logs_of_two_accounts_are_apart(stores: StoreSet) -> None:
    # Given events of account admin and of account alice, on the same day
    alice = stores.for_account("alice")
    stores.events.put_event(event("admin-1", BASE_TIME))
    stores.events.put_event(event("admin-2", BASE_TIME + timedelta(minutes=1)))
    alice.events.put_event(event("alice-1", BASE_TIME + timedelta(minutes=2)))
    # Then each sees its own only, by listing, query, id and deletion
    assert [e.event_id for e in stores.events.list_events()] == ["admin-2", "admin-1"]
    assert [e.event_id for e in alice.events.list_events()] == ["alice-1"]
    assert [e.event_id for e in _logged(alice).query_events(EventQuery()).events] == ["alice-1"]
    assert _logged(alice).get_event("admin-1") is None
    assert _logged(stores).get_event("alice-1") is None
    assert _logged(alice).delete_event("admin-1") is False
    assert _logged(alice).delete_events(EventQuery()) == ["alice-1"]
    assert [e.event_id for e in stores.events.list_events()] == ["admin-2", "admin-1"]
    assert stores.for_account("bob").events.list_events() == []


# ---- accounts: every account-owned store keeps each account's records apart ------------------------


def test_account_owned_records_are_invisible_to_another_account(stores: StoreSet) -> None:
    # Given the same digest, tag and bundle id in accounts admin and alice, with different data
    admin, alice, bob = stores, stores.for_account("alice"), stores.for_account("bob")
    admin.catalog.put_image(image_record(1, tags=("r/admin:1",)))
    alice.catalog.put_image(image_record(1, tags=("r/alice:1",), status=AnalysisStatus.ANALYZED))
    alice.catalog.put_image(image_record(2))
    admin.catalog.put_tag(TagRecord(repo_tag="r/app:1", image_digest=digest(1), updated_at=BASE_TIME))
    alice.catalog.put_tag(TagRecord(repo_tag="r/app:1", image_digest=digest(2), updated_at=BASE_TIME))
    alice.analyses.put_analysis(digest(1), analysis_document(file_count=3))
    alice.analyses.put_matches(digest(1), [vulnerability_match(1)], None)
    alice.evaluations.put_evaluation(evaluation("ev-alice", 1, BASE_TIME))
    admin.policies.put_bundle(bundle("p1", active=True, document={"owner": "admin"}))
    alice.policies.put_bundle(bundle("p1", document={"owner": "alice"}))
    alice.policies.put_bundle(bundle("p2", active=True))

    # Then each account reads its own image under the shared digest
    assert admin.catalog.get_image(digest(1)).repo_tags == ("r/admin:1",)  # type: ignore[union-attr]
    assert alice.catalog.get_image(digest(1)).analysis_status is AnalysisStatus.ANALYZED  # type: ignore[union-attr]
    assert admin.catalog.get_image(digest(2)) is None and bob.catalog.get_image(digest(1)) is None
    assert [i.image_digest for i in admin.catalog.list_images()] == [digest(1)]
    assert [i.image_digest for i in alice.catalog.list_images()] == [digest(2), digest(1)]
    assert [i.image_digest for i in alice.catalog.list_images_by_status(AnalysisStatus.ANALYZED)] == [
        digest(1)
    ]
    assert admin.catalog.list_images_by_status(AnalysisStatus.ANALYZED) == []
    assert bob.catalog.list_images() == []
    # Tags
    assert admin.catalog.get_tag("r/app:1").image_digest == digest(1)  # type: ignore[union-attr]
    assert alice.catalog.get_tag("r/app:1").image_digest == digest(2)  # type: ignore[union-attr]
    assert [t.repo_tag for t in alice.catalog.list_tags()] == ["r/app:1"]
    assert [t.image_digest for t in admin.catalog.list_tags()] == [digest(1)]
    assert bob.catalog.list_tags() == [] and bob.catalog.get_tag("r/app:1") is None
    # Analyses, matches and evaluations
    assert alice.analyses.get_analysis(digest(1)) is not None
    assert admin.analyses.get_analysis(digest(1)) is None
    assert (
        admin.analyses.get_matches(digest(1)) is None and admin.analyses.get_match_counts(digest(1)) is None
    )
    assert alice.evaluations.latest_evaluation(digest(1)).evaluation_id == "ev-alice"  # type: ignore[union-attr]
    assert admin.evaluations.latest_evaluation(digest(1)) is None
    assert admin.evaluations.list_evaluations(digest(1)) == []
    # Bundles: one active per account, each its own
    assert admin.policies.active_bundle().document == {"owner": "admin"}  # type: ignore[union-attr]
    assert alice.policies.active_bundle().bundle_id == "p2"  # type: ignore[union-attr]
    assert alice.policies.get_bundle("p1").document == {"owner": "alice"}  # type: ignore[union-attr]
    assert [(b.bundle_id, b.active) for b in alice.policies.list_bundles()] == [("p1", False), ("p2", True)]
    assert [(b.bundle_id, b.active) for b in admin.policies.list_bundles()] == [("p1", True)]
    alice.policies.activate("p1")
    assert admin.policies.active_bundle().document == {"owner": "admin"}  # type: ignore[union-attr]
    with pytest.raises(NotFoundError):
        admin.policies.activate("p2")
    assert bob.policies.list_bundles() == [] and bob.policies.active_bundle() is None
    assert not bob.policies.delete_bundle("p1")
    assert alice.policies.delete_bundle("p1") and admin.policies.get_bundle("p1") is not None
    # Status changes reach only the account's own image
    with pytest.raises(NotFoundError):
        bob.catalog.set_status(digest(1), AnalysisStatus.ANALYZING)
    assert admin.catalog.set_status(digest(1), AnalysisStatus.ANALYSIS_FAILED, error="x")
    assert alice.catalog.get_image(digest(1)).analysis_status is AnalysisStatus.ANALYZED  # type: ignore[union-attr]


def test_deleting_an_image_removes_what_hangs_off_it_in_its_account_only(stores: StoreSet) -> None:
    # Given the same digest in accounts admin and alice, each with a tag, analysis, matches and
    # evaluations; and admin's tag r/moved:1 that now points at another image
    admin, alice = stores, stores.for_account("alice")
    for account in (admin, alice):
        account.catalog.put_image(image_record(1, tags=("r/app:1",)))
        account.catalog.put_tag(TagRecord(repo_tag="r/app:1", image_digest=digest(1), updated_at=BASE_TIME))
        account.analyses.put_analysis(digest(1), analysis_document(file_count=3))
        account.analyses.put_matches(digest(1), [vulnerability_match(1)], None)
        account.evaluations.put_evaluation(evaluation("ev-1", 1, BASE_TIME))
        account.evaluations.put_evaluation(evaluation("ev-2", 1, BASE_TIME + timedelta(minutes=1)))
    admin.catalog.put_image(image_record(2))
    admin.catalog.put_tag(TagRecord(repo_tag="r/moved:1", image_digest=digest(2), updated_at=BASE_TIME))
    stores.blobs.put("shared/fragment", b"content-addressed")
    removal: ImageRemoval = admin.catalog  # type: ignore[assignment]

    # When admin deletes the image (twice), and a digest it never had
    assert removal.delete_image(digest(1)) is True
    assert removal.delete_image(digest(1)) is False
    assert removal.delete_image(digest(9)) is False

    # Then admin's image and its records are gone; its other image and that image's tag stay
    assert admin.catalog.get_image(digest(1)) is None
    assert admin.catalog.get_tag("r/app:1") is None
    assert admin.analyses.get_analysis(digest(1)) is None
    assert (
        admin.analyses.get_matches(digest(1)) is None and admin.analyses.get_match_counts(digest(1)) is None
    )
    assert admin.evaluations.list_evaluations(digest(1)) == []
    assert [i.image_digest for i in admin.catalog.list_images()] == [digest(2)]
    assert [t.repo_tag for t in admin.catalog.list_tags()] == ["r/moved:1"]
    assert stores.blobs.get("shared/fragment") == b"content-addressed"
    # And alice's image with the same digest keeps everything
    assert alice.catalog.get_image(digest(1)) is not None
    assert alice.catalog.get_tag("r/app:1") is not None
    assert alice.analyses.get_analysis(digest(1)) is not None and alice.analyses.get_matches(digest(1))
    assert [e.evaluation_id for e in alice.evaluations.list_evaluations(digest(1))] == ["ev-2", "ev-1"]


# ---- feed metadata --------------------------------------------------------------------------------------


def test_db_pointer_round_trip(stores: StoreSet) -> None:
    assert stores.feeds.get_db_pointer() is None
    first = DbPointer(location="vulndb/2026-03-01.db", sha256="a" * 64, built_at=BASE_TIME, schema_version=1)
    stores.feeds.put_db_pointer(first)
    assert stores.feeds.get_db_pointer() == first
    second = DbPointer(
        location="vulndb/2026-03-02.db",
        sha256="b" * 64,
        built_at=BASE_TIME + timedelta(days=1),
        schema_version=2,
        record_count=123_456,
    )
    stores.feeds.put_db_pointer(second)
    assert stores.feeds.get_db_pointer() == second


# ---- blobs ----------------------------------------------------------------------------------------------


@pytest.fixture(params=["filesystem", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "filesystem":
        yield FilesystemBlobStore(tmp_path / "blobs")
    else:
        with mock_aws():
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="pw-blobs")
            yield S3BlobStore("pw-blobs", "cache", client)


def check_blob_store(blobs: BlobStore) -> None:
    key = "fragments/sha256:" + "ab" * 32 + "/v3.json.zst"
    assert blobs.get(key) is None
    assert blobs.exists(key) is False
    payload = bytes(range(256)) * 1000
    blobs.put(key, payload)
    assert blobs.exists(key) is True
    assert blobs.get(key) == payload
    blobs.put(key, b"replaced")
    assert blobs.get(key) == b"replaced"
    blobs.put("empty", b"")
    assert blobs.get("empty") == b"" and blobs.exists("empty")
    with pytest.raises(StoreError):
        blobs.put("../escape", b"x")


def test_blob_store_contract(blob_store: BlobStore) -> None:
    check_blob_store(blob_store)


def test_store_set_blobs(stores: StoreSet) -> None:
    # The layer-fragment cache of each store set is a BlobStore with the same contract
    check_blob_store(stores.blobs)


def test_events_details_survive_as_json(stores: StoreSet) -> None:
    details = {"unicode": "é✓", "numbers": [1, 2.5, None], "nested": {"deep": {"x": True}}}
    record = event("e1", BASE_TIME).model_copy(update={"details": details})
    stores.events.put_event(record)
    listed = stores.events.list_events()
    assert listed == [record]
    assert json.dumps(listed[0].details, sort_keys=True) == json.dumps(details, sort_keys=True)


# ---- adapter specifics: what the contract above relies on ----------------------------------------------


def test_aws_table_definitions_match_the_item_models() -> None:
    # The template and the fixtures create tables from table_definitions(); pynamodb reads and writes
    # through the models. A key or index that differs would fail only against real tables.
    settings = AwsStoreSettings(bucket="pw-bucket")
    definitions = table_definitions(settings)
    bindings = {
        "images": image_model,
        "tags": tag_model,
        "evaluations": evaluation_model,
        "policies": bundle_model,
        "events": event_model,
        "feeds": feed_model,
    }
    assert set(definitions) == set(bindings) == set(TABLE_PURPOSES)
    for purpose, factory in bindings.items():
        model = factory(TableBinding(settings.table_name(purpose)))
        schema = model._get_schema()
        definition = definitions[purpose]
        assert definition["TableName"] == settings.table_name(purpose)
        assert sorted((k["AttributeName"], k["KeyType"]) for k in definition["KeySchema"]) == sorted(
            (k["AttributeName"], k["KeyType"]) for k in schema["key_schema"]
        )
        declared = {(a["AttributeName"], a["AttributeType"]) for a in definition["AttributeDefinitions"]}
        assert declared == {(a["AttributeName"], a["AttributeType"]) for a in schema["attribute_definitions"]}
        indexes = {
            i["IndexName"]: sorted((k["AttributeName"], k["KeyType"]) for k in i["KeySchema"])
            for i in definition.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == {
            i["index_name"]: sorted((k["AttributeName"], k["KeyType"]) for k in i["key_schema"])
            for i in schema["global_secondary_indexes"]
        }


def test_aws_large_documents_spill_to_s3() -> None:
    with moto_stores() as aws:
        rows = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20_000)]
        aws.evaluations.put_evaluation(evaluation("e-big", 1, BASE_TIME, document={"rows": rows}))
        aws.evaluations.put_evaluation(evaluation("e-small", 1, BASE_TIME))
        aws.policies.put_bundle(bundle("big", document={"rows": rows}))
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        items = dynamodb.query(
            TableName=aws.settings.evaluations_table,
            KeyConditionExpression="image_digest = :d",
            ExpressionAttributeValues={":d": {"S": digest(1)}},
        )["Items"]
        by_id = {item["evaluation_id"]["S"]: item for item in items}
        spilled_key = by_id["e-big"]["document_key"]["S"]
        assert "document" not in by_id["e-big"]
        assert "document" in by_id["e-small"] and "document_key" not in by_id["e-small"]
        assert aws.documents.exists(spilled_key)
        assert spilled_key == f"evaluations/{digest(1)}/e-big.json.zst"
        assert aws.documents.exists("bundles/big.json.zst")
        analysis = analysis_document(file_count=5)
        aws.analyses.put_analysis(digest(1), analysis)
        listing = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=aws.settings.bucket)
        keys = {entry["Key"] for entry in listing["Contents"]}
        assert f"documents/analyses/{digest(1)}.json.zst" in keys


def test_aws_image_item_shape() -> None:
    with moto_stores() as aws:
        aws.catalog.put_image(image_record(1, tags=("app:1",)))
        item = boto3.client("dynamodb", region_name="us-east-1").get_item(
            TableName=aws.settings.images_table, Key={"image_digest": {"S": digest(1)}}
        )["Item"]
        assert item["listing"] == {"S": "image"}
        assert item["created_key"]["S"] == f"2026-03-01T12:01:00.000000Z#{digest(1)}"
        assert item["analysis_status"] == {"S": "not_analyzed"}
        assert item["repo_tags"] == {"L": [{"S": "app:1"}]}
        assert "last_error" not in item


def test_aws_event_items_carry_the_account_and_the_retention() -> None:
    with moto_stores(event_retention_days=30) as aws:
        aws.for_account("alice").events.put_event(event("a1", BASE_TIME))
        aws.events.put_event(event("x1", BASE_TIME))
        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=aws.settings.events_table)[
            "Items"
        ]
        keys = {(item["day"]["S"], item["event_key"]["S"]): item for item in items}
        stamp = "2026-03-01T12:00:00.000000Z"
        expected = {
            ("alice|2026-03-01", f"{stamp}#a1"),
            ("alice|#days", "2026-03-01"),
            ("alice|#ids", "a1"),
            ("2026-03-01", f"{stamp}#x1"),
            ("#days", "2026-03-01"),
            ("#ids", "x1"),
        }
        assert set(keys) == expected
        event_expiry = int((BASE_TIME + timedelta(days=30)).timestamp())
        assert int(keys[("alice|2026-03-01", f"{stamp}#a1")]["expires_at"]["N"]) == event_expiry
        assert int(keys[("alice|#ids", "a1")]["expires_at"]["N"]) == event_expiry
        # A day's entry outlives the day's last event
        day_end = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(days=30)
        assert int(keys[("alice|#days", "2026-03-01")]["expires_at"]["N"]) == int(day_end.timestamp())


def test_aws_admin_events_written_before_accounts_are_admins() -> None:
    # Given an event item as earlier versions wrote it: no account in its keys, no id entry
    with moto_stores() as aws:
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        table = aws.settings.events_table
        record = event("old", BASE_TIME)
        stamp = "2026-03-01T12:00:00.000000Z"
        dynamodb.put_item(TableName=table, Item={"day": {"S": "#days"}, "event_key": {"S": "2026-03-01"}})
        dynamodb.put_item(
            TableName=table,
            Item={
                "day": {"S": "2026-03-01"},
                "event_key": {"S": f"{stamp}#old"},
                "event_id": {"S": "old"},
                "type": {"S": record.type},
                "level": {"S": "INFO"},
                "resource_type": {"S": "image"},
                "resource_id": {"S": digest(1)},
                "message": {"S": record.message},
                "details": {"S": json.dumps(record.details)},
                "timestamp": {"S": stamp},
            },
        )
        # Then account admin lists it, reads it by id and deletes it; another account never sees it
        assert aws.events.list_events() == [record]
        assert aws.events.get_event("old") == record
        assert aws.for_account("alice").events.get_event("old") is None
        assert aws.events.delete_event("old") is True
        assert aws.events.list_events() == []


def test_aws_errors_become_store_errors() -> None:
    # Given stores whose tables and bucket were never created
    settings = AwsStoreSettings.with_table_prefix("pw-missing", "pw-missing-bucket", region="us-east-1")
    with mock_aws():
        aws = AwsStores(settings)
        failures: list[Callable[[], object]] = [
            lambda: aws.catalog.get_image(digest(1)),
            lambda: aws.catalog.put_image(image_record(1)),
            lambda: aws.catalog.list_images(),
            lambda: aws.catalog.set_status(digest(1), AnalysisStatus.ANALYZING),
            lambda: aws.policies.activate("a"),
            lambda: aws.events.list_events(),
            lambda: aws.feeds.get_db_pointer(),
            lambda: aws.analyses.put_analysis(digest(1), analysis_document(file_count=1)),
            lambda: aws.blobs.get("x"),
        ]
        for call in failures:
            with pytest.raises(StoreError) as caught:
                call()
            # Translated at the boundary, with the library error kept as the cause
            assert not isinstance(caught.value, NotFoundError)
            assert caught.value.__cause__ is not None


def test_sqlite_schema_versioned_wal_and_persistent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with local_stores(home) as local:
        assert local.schema_version == SCHEMA_VERSION
        local.catalog.put_image(image_record(1))
        with closing(sqlite3.connect(local.database_path)) as raw:
            journal = raw.execute("PRAGMA journal_mode").fetchone()[0]
        assert journal == "wal"
    # Reopening applies no migration twice and keeps the data
    with local_stores(home) as reopened:
        assert reopened.catalog.get_image(digest(1)) == image_record(1)
        with closing(sqlite3.connect(reopened.database_path)) as raw:
            versions = [row[0] for row in raw.execute("SELECT version FROM schema_version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    home = tmp_path / "home"
    LocalStore(home).close()
    with closing(sqlite3.connect(home / "portwarden.db")) as connection, connection:
        connection.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer"):
        LocalStore(home)


def test_sqlite_concurrent_writers_from_many_threads(tmp_path: Path) -> None:
    with local_stores(tmp_path / "home") as local:

        def write_twenty(i: int) -> None:
            for j in range(20):
                local.events.put_event(event(f"t{i}-{j}", BASE_TIME))

        race(16, write_twenty)
        assert len(local.events.list_events(limit=1000)) == 16 * 20


def test_sqlite_closed_store_raises_store_error(tmp_path: Path) -> None:
    local = LocalStore(tmp_path / "home")
    local.close()
    with pytest.raises(StoreError):
        local.catalog.list_images()
