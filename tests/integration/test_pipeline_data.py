"""Data survives: partial writes, bounded tag lists, record expiry, the by_status listing, snapshots.

* a tag added by another trigger while Assemble runs is kept (Assemble updates only the analysis
  attributes); the interleaving is forced at the last moment, right before Assemble's own write;
* ``repo_tags`` keeps the newest ``REPO_TAGS_KEPT`` tags (both adapters); the tags table keeps the
  digest each tag last pointed to;
* events carry a TTL, evaluations get one once superseded (the current one never);
* ``GET /images?analysis_status=`` finds an image behind more than a thousand newer ones;
* a snapshot the pointer moved away from is tagged retired, the current one never is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from pynamodb.connection.table import TableConnection

from portwarden.adapters.aws.s3 import RETIRED_TAG
from portwarden.core.model.records import REPO_TAGS_KEPT, AnalysisStatus
from portwarden.core.ports import CatalogStore
from tests.support.aws import (
    ECR_REGISTRY,
    MINIMIST_ADVISORY,
    REGION,
    MotoStack,
    ecr_push_event,
    moto_stack,
    osv_feed_zip,
    registry_environment,
)
from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file
from tests.support.registry import RunningRegistry, push_image
from tests.support.stores import BASE_TIME, digest, evaluation, event, image_record, local_stores, moto_stores

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, anonymous_registry: RunningRegistry, tmp_path: Path
) -> Iterator[MotoStack]:
    feed = osv_feed_zip(tmp_path / "feed", MINIMIST_ADVISORY)
    environment = registry_environment(
        anonymous_registry.host,
        PORTWARDEN_WORK_DIR=str(tmp_path / "work"),
        PORTWARDEN_FEED_SOURCES=f"osv={feed.as_uri()}",
    )
    with moto_stack(monkeypatch, **environment) as running:
        yield running


# ---- a tag added while Assemble runs ----------------------------------------------------------------


def test_a_tag_added_while_assemble_runs_is_kept(
    stack: MotoStack, anonymous_registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = build_image(
        [build_layer([file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\n")])], ConfigSpec()
    )
    push_image(image, anonymous_registry, "team/app", "1.0")
    hotfix = f"{ECR_REGISTRY}/team/app:hotfix"
    images_table = stack.settings.images_table
    armed = threading.Event()
    interleaved: list[str] = []

    def interleave(original: Any) -> Any:
        """Before Assemble's write to the image item, another trigger records a new tag."""

        def write(self: TableConnection, *args: Any, **kwargs: Any) -> Any:
            if armed.is_set() and self.table_name == images_table:
                armed.clear()
                stack.stores.catalog.add_repo_tag(image.digest, hotfix)
                interleaved.append(original.__name__)
            return original(self, *args, **kwargs)

        return write

    monkeypatch.setattr(TableConnection, "put_item", interleave(TableConnection.put_item))
    monkeypatch.setattr(TableConnection, "update_item", interleave(TableConnection.update_item))
    assemble = stack.handlers["AssembleFunction"]

    def assemble_with_a_racing_tag(event: dict[str, Any], context: Any) -> Any:
        armed.set()
        try:
            return assemble(event, context)
        finally:
            armed.clear()

    monkeypatch.setitem(stack.handlers, "AssembleFunction", assemble_with_a_racing_tag)

    started = stack.start_push(ecr_push_event(image.digest))
    assert stack.wait(started["execution_arn"])["status"] == "SUCCEEDED"

    assert interleaved == ["update_item"]  # the race happened, right before Assemble's own write
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
    assert record.repo_tags == (f"{ECR_REGISTRY}/team/app:1.0", hotfix)
    # The push also recorded where its tag points.
    tag = stack.stores.catalog.get_tag(f"{ECR_REGISTRY}/team/app:1.0")
    assert tag is not None and tag.image_digest == image.digest


# ---- bounded tag lists, both adapters ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "aws"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CatalogStore]:
    if request.param == "sqlite":
        with local_stores(tmp_path / "home") as local:
            yield local.catalog
    else:
        with moto_stores() as aws:
            yield aws.catalog


def test_repo_tags_keep_the_newest_tags_only(catalog: CatalogStore) -> None:
    catalog.put_image(image_record(1))
    added = [f"registry.example/app:{index}" for index in range(REPO_TAGS_KEPT + 5)]
    for tag in added:
        catalog.add_repo_tag(digest(1), tag)
    catalog.add_repo_tag(digest(1), added[-1])  # already there: nothing moves

    record = catalog.get_image(digest(1))
    assert record is not None
    assert record.repo_tags == tuple(added[-REPO_TAGS_KEPT:])


def test_concurrent_additions_to_a_full_tag_list_are_all_kept(catalog: CatalogStore) -> None:
    catalog.put_image(image_record(1))
    for index in range(REPO_TAGS_KEPT):
        catalog.add_repo_tag(digest(1), f"registry.example/old:{index}")
    racing = [f"registry.example/new:{index}" for index in range(6)]
    barrier = threading.Barrier(len(racing))
    errors: list[BaseException] = []

    def add(tag: str) -> None:
        barrier.wait()
        try:
            catalog.add_repo_tag(digest(1), tag)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(tag,)) for tag in racing]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    record = catalog.get_image(digest(1))
    assert record is not None and len(record.repo_tags) == REPO_TAGS_KEPT
    assert set(racing) <= set(record.repo_tags)
    assert record.repo_tags[: REPO_TAGS_KEPT - len(racing)] == tuple(
        f"registry.example/old:{index}" for index in range(len(racing), REPO_TAGS_KEPT)
    )


# ---- TTLs -----------------------------------------------------------------------------------------------


def test_events_expire_and_superseded_evaluations_expire_but_never_the_current_one() -> None:
    with moto_stores(event_retention_days=30, superseded_evaluation_days=7) as stores:
        stores.events.put_event(event("e1", BASE_TIME))
        for n, (tag, minutes) in enumerate(
            [("r/app:1", 0), ("r/app:1", 1), ("r/app:2", 2), ("r/app:1", 3)], start=1
        ):
            at = BASE_TIME + timedelta(minutes=minutes)
            stores.evaluations.put_evaluation(evaluation(f"ev-{n}", 1, at, repo_tag=tag))

        dynamodb = boto3.client("dynamodb", region_name=REGION)
        items = dynamodb.scan(TableName=stores.settings.events_table)["Items"]
        expiry = {item["event_key"]["S"].split("#")[0]: int(item["expires_at"]["N"]) for item in items}
        assert expiry[BASE_TIME.strftime("%Y-%m-%dT%H:%M:%S.%fZ")] == int(
            (BASE_TIME + timedelta(days=30)).timestamp()
        )
        assert len(expiry) == 3  # the event, its day's index entry and its id entry, all expiring
        evaluations = dynamodb.scan(TableName=stores.settings.evaluations_table)["Items"]
        expiring = {item["evaluation_id"]["S"]: "expires_at" in item for item in evaluations}
        # ev-1 and ev-2 (r/app:1) were superseded by ev-4; ev-3 is r/app:2's current evaluation.
        assert expiring == {"ev-1": True, "ev-2": True, "ev-3": False, "ev-4": False}
        latest = stores.evaluations.latest_evaluation(digest(1), "r/app:1")
        assert latest is not None and latest.evaluation_id == "ev-4"


# ---- the by_status listing -------------------------------------------------------------------------------


def test_the_status_listing_finds_an_image_behind_a_thousand_newer_ones(stack: MotoStack) -> None:
    catalog = stack.stores.catalog
    catalog.put_image(image_record(1, status=AnalysisStatus.ANALYSIS_FAILED))
    for n in range(2, 1_003):
        catalog.put_image(image_record(n, status=AnalysisStatus.ANALYZED))

    failed = stack.api("GET", "/images", query={"analysis_status": "analysis_failed"})

    assert failed["statusCode"] == 200
    assert [image["imageDigest"] for image in failed["json"]] == [digest(1)]


# ---- snapshots the pointer no longer names --------------------------------------------------------------


def test_a_superseded_snapshot_is_retired_and_the_current_one_never(stack: MotoStack) -> None:
    s3 = boto3.client("s3", region_name=REGION)

    def tags(key: str) -> list[dict[str, str]]:
        tag_set: list[dict[str, str]] = s3.get_object_tagging(Bucket=stack.settings.bucket, Key=key)["TagSet"]
        return tag_set

    first = stack.sync_feeds()["parsed_output"]["published"]["pointer"]["location"]
    assert tags(first) == []
    second = stack.sync_feeds()["parsed_output"]["published"]["pointer"]["location"]

    assert second != first
    assert tags(first) == [{"Key": RETIRED_TAG, "Value": "true"}]
    assert tags(second) == []
    pointer = stack.stores.feeds.get_db_pointer()
    assert pointer is not None and pointer.location == second
