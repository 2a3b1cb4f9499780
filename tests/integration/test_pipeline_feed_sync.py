"""The feed-sync workflow under moto: the real ASL, our handlers, feeds served on 127.0.0.1.

* an NVD walk whose step is killed halfway (as a Lambda timeout would) is published as far as it
  got, and the next run resumes from its checkpoint (no page is asked twice) and publishes it all;
* the NVD API key comes from Secrets Manager and is sent, never logged;
* failing sources, and a step that dies, leave the published database as it was;
* a run that finds the sync lease taken does nothing;
* sources sync at the same time, each into a database of its own, and Publish merges them into the
  database a sequential sync of the same sources builds; a source that fails keeps its previous
  rows while another source updates.
"""

from __future__ import annotations

import copy
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3  # type: ignore[import-untyped]
import pytest

from portwarden.adapters.http.feeds import HttpFeedFetcher
from portwarden.core.services.sync_feeds import FeedSource, SyncOptions, sync_feeds
from portwarden.core.vulns.db import VulnerabilityDb
from portwarden.core.vulns.db.schema import FEED_TABLES
from tests.conftest import FIXTURES_DIR
from tests.support.aws import MINIMIST_ADVISORY, REGION, MotoStack, moto_stack, osv_feed_zip
from tests.support.scripted_server import (
    RecordedRequest,
    ScriptedHttpServer,
    ScriptedResponse,
    scripted_server,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

NVD_PATH = "/rest/json/cves/2.0"
LOG4J_ADVISORY = (
    FIXTURES_DIR
    / "feeds-sample/osv/github-advisory-database/advisories/github-reviewed/2021/12"
    / "GHSA-jfh8-c2jp-5v3q/GHSA-jfh8-c2jp-5v3q.json"
)
NVD_SAMPLE = FIXTURES_DIR / "feeds-sample/nvd/api2-pages/vulnerablecode-nvd_test.json"
CVE_COUNT = 8
PAGE_SIZE = 2  # the server's page size: four pages
API_KEY = "nvd-key-1f0a6b2c"


def nvd_cves() -> list[dict[str, Any]]:
    template = json.loads(NVD_SAMPLE.read_text())["vulnerabilities"][0]
    cves = []
    for n in range(CVE_COUNT):
        cve = copy.deepcopy(template)
        cve["cve"]["id"] = f"CVE-2026-{1000 + n}"
        cves.append(cve)
    return cves


class NvdApi:
    """The NVD CVE API's paging: ``startIndex`` honoured, at most ``PAGE_SIZE`` results a page."""

    def __init__(self, cves: list[dict[str, Any]]) -> None:
        self.cves = cves
        self.failing = False

    def __call__(self, request: RecordedRequest) -> ScriptedResponse:
        if self.failing:
            return ScriptedResponse(500, b"upstream unavailable")
        start = int(parse_qs(request.query)["startIndex"][0])
        page = self.cves[start : start + PAGE_SIZE]
        body = {
            "resultsPerPage": len(page),
            "startIndex": start,
            "totalResults": len(self.cves),
            "format": "NVD_CVE",
            "version": "2.0",
            "vulnerabilities": page,
        }
        return ScriptedResponse(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


class StepTimedOut(Exception):
    """What Step Functions reports when a task's function is killed at its timeout."""


@pytest.fixture
def nvd_api() -> NvdApi:
    return NvdApi(nvd_cves())


@pytest.fixture
def nvd_server(nvd_api: NvdApi) -> Iterator[ScriptedHttpServer]:
    with scripted_server({NVD_PATH: nvd_api}) as server:
        yield server


@pytest.fixture
def osv_zip(tmp_path: Path) -> Path:
    return osv_feed_zip(tmp_path / "feed", MINIMIST_ADVISORY)


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, nvd_server: ScriptedHttpServer, osv_zip: Path, tmp_path: Path
) -> Iterator[MotoStack]:
    sources = f"osv={osv_zip.as_uri()},nvd={nvd_server.url}{NVD_PATH}"
    environment = {
        "PORTWARDEN_FEED_SOURCES": sources,
        "PORTWARDEN_WORK_DIR": str(tmp_path / "work"),
        # Every step stops after one page: an NVD walk takes several steps, as a long one does on AWS.
        "PORTWARDEN_FEED_STEP_SECONDS": "0",
    }
    with moto_stack(monkeypatch, **environment) as running:
        yield running


def start_indexes(server: ScriptedHttpServer) -> list[int]:
    return [int(parse_qs(request.query)["startIndex"][0]) for request in server.requests_to(NVD_PATH)]


def published_database(stack: MotoStack, directory: Path) -> VulnerabilityDb:
    pointer = stack.stores.feeds.get_db_pointer()
    assert pointer is not None
    path = directory / f"{pointer.sha256[:12]}.db"
    boto3.client("s3", region_name=REGION).download_file(stack.settings.bucket, pointer.location, str(path))
    return VulnerabilityDb.open(path)


def kill_nvd_step(stack: MotoStack, monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    """The ``nth`` NVD step dies before it finishes (a Lambda timeout): nothing it did is kept."""
    original = stack.handlers["FeedSyncSourceFunction"]
    seen = {"nvd": 0}

    def handler(event: dict[str, Any], context: Any) -> Any:
        if event["source"]["kind"] == "nvd":
            seen["nvd"] += 1
            if seen["nvd"] == nth:
                raise StepTimedOut("Task timed out after 900.00 seconds")
        return original(event, context)

    monkeypatch.setitem(stack.handlers, "FeedSyncSourceFunction", handler)


def test_an_nvd_walk_killed_halfway_is_published_so_far_and_resumed_by_the_next_run(
    stack: MotoStack,
    nvd_server: ScriptedHttpServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="portwarden/nvd", SecretString=json.dumps({"apiKey": API_KEY})
    )["ARN"]
    monkeypatch.setenv("PORTWARDEN_NVD_API_KEY_SECRET", secret)
    caplog.set_level(logging.DEBUG, logger="portwarden")
    kill_nvd_step(stack, monkeypatch, nth=2)

    first = stack.sync_feeds()

    # The first page was read and checkpointed, the second step died: the run still publishes.
    assert first["status"] == "SUCCEEDED", first
    assert first["parsed_output"]["published"]["resuming"] == ["nvd|" + f"{nvd_server.url}{NVD_PATH}"]
    assert start_indexes(nvd_server) == [0]
    with published_database(stack, tmp_path) as db:
        assert set(db.nvd([f"CVE-2026-{1000 + n}" for n in range(CVE_COUNT)])) == {
            "CVE-2026-1000",
            "CVE-2026-1001",
        }
        assert db.affected("npm", ["minimist"])  # the other source is in
    nvd_database = stack.stores.feeds.get_source_database(f"nvd|{nvd_server.url}{NVD_PATH}")
    assert nvd_database is not None and nvd_database.checkpoint is not None
    assert nvd_database.checkpoint.start_index == PAGE_SIZE

    monkeypatch.setitem(stack.handlers, "FeedSyncSourceFunction", stack.handlers["FeedSyncSourceFunction"])
    kill_nvd_step(stack, monkeypatch, nth=0)  # no failure this time
    second = stack.sync_feeds()

    assert second["status"] == "SUCCEEDED", second
    # Resumed from its checkpoint: no page asked twice, the walk ran to its end.
    assert start_indexes(nvd_server) == [0, 2, 4, 6]
    assert second["parsed_output"]["published"]["resuming"] == []
    with published_database(stack, tmp_path) as db:
        cves = db.nvd([f"CVE-2026-{1000 + n}" for n in range(CVE_COUNT)])
        assert len(cves) == CVE_COUNT
        (nvd_state,) = [source for source in db.metadata().sources if source.kind.value == "nvd"]
        assert nvd_state.cursor is not None and nvd_state.record_count == CVE_COUNT
    # The key came from Secrets Manager, went to NVD, and into no log line.
    assert {request.headers.get("apiKey") for request in nvd_server.requests_to(NVD_PATH)} == {API_KEY}
    assert API_KEY not in caplog.text


def test_failing_sources_and_a_dead_step_leave_the_published_database_intact(
    stack: MotoStack,
    nvd_api: NvdApi,
    osv_zip: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PORTWARDEN_FEED_STEP_SECONDS", "600")  # whole walks in one step
    first = stack.sync_feeds()
    assert first["status"] == "SUCCEEDED", first
    published = stack.stores.feeds.get_db_pointer()
    assert published is not None
    with published_database(stack, tmp_path) as db:
        before = db.metadata().record_counts

    # Both upstreams fail (the OSV archive is gone, NVD answers 500), and one step dies outright.
    osv_zip.unlink()
    nvd_api.failing = True
    second = stack.sync_feeds()
    kill_nvd_step(stack, monkeypatch, nth=1)
    third = stack.sync_feeds()

    assert (second["status"], third["status"]) == ("SUCCEEDED", "SUCCEEDED")
    with published_database(stack, tmp_path) as db:
        assert db.metadata().record_counts == before
        assert db.affected("npm", ["minimist"])
        assert len(db.nvd([f"CVE-2026-{1000 + n}" for n in range(CVE_COUNT)])) == CVE_COUNT
        statuses = {source.kind.value: source.status.value for source in db.metadata().sources}
        assert statuses == {"osv": "failed", "nvd": "failed"}
    # The first snapshot was replaced, not lost: retired (it expires later), still readable now.
    s3 = boto3.client("s3", region_name=REGION)
    s3.head_object(Bucket=stack.settings.bucket, Key=published.location)


def test_a_run_that_finds_the_lease_taken_does_nothing(stack: MotoStack) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    assert stack.stores.feeds.acquire_lease("another-run", now + timedelta(hours=1), now)

    execution = stack.sync_feeds()

    assert execution["status"] == "SUCCEEDED"
    assert execution["parsed_output"]["plan"]["acquired"] is False
    assert stack.calls("FeedSyncSourceFunction") == [] and stack.stores.feeds.get_db_pointer() is None
    stack.stores.feeds.release_lease("another-run")
    assert stack.sync_feeds()["parsed_output"]["published"]["published"] is True


def table_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every feed table, in a stable order."""
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as connection:
        return {
            table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr)  # noqa: S608
            for table in FEED_TABLES
        }


def test_sources_sync_at_once_and_publish_merges_what_a_sequential_sync_builds(
    stack: MotoStack,
    nvd_server: ScriptedHttpServer,
    osv_zip: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Each source's first step waits for the other's: with one source at a time the wait times out.
    both_running = threading.Barrier(2, timeout=30)
    first_steps: dict[str, str] = {}
    original = stack.handlers["FeedSyncSourceFunction"]

    def handler(event: dict[str, Any], context: Any) -> Any:
        kind = event["source"]["kind"]
        if kind not in first_steps:
            first_steps[kind] = threading.current_thread().name
            try:
                both_running.wait()
            except threading.BrokenBarrierError:
                first_steps[kind] = "waited alone"
        return original(event, context)

    monkeypatch.setitem(stack.handlers, "FeedSyncSourceFunction", handler)

    execution = stack.sync_feeds()

    assert execution["status"] == "SUCCEEDED", execution
    assert "waited alone" not in first_steps.values() and len(set(first_steps.values())) == 2
    published = execution["parsed_output"]["published"]
    assert published["published"] is True and published["resuming"] == []
    nvd_key, osv_key = f"nvd|{nvd_server.url}{NVD_PATH}", f"osv|{osv_zip.as_uri()}"
    assert published["merged"] == sorted([nvd_key, osv_key]) and published["carried_over"] == []
    # Each source's database holds that source alone.
    for key in (nvd_key, osv_key):
        own = stack.stores.feeds.get_source_database(key)
        assert own is not None and own.checkpoint is None
        path = tmp_path / f"{own.sha256[:12]}.db"
        boto3.client("s3", region_name=REGION).download_file(stack.settings.bucket, own.location, str(path))
        with VulnerabilityDb.open(path) as db:
            assert [source.key for source in db.metadata().sources] == [key]

    # The same sources synced one after another into one database, locally.
    sequential = tmp_path / "sequential" / "vulnerabilities.db"
    sources = [
        FeedSource.parse(f"osv={osv_zip.as_uri()}"),
        FeedSource.parse(f"nvd={nvd_server.url}{NVD_PATH}"),
    ]
    sync_feeds(
        sources, HttpFeedFetcher(tmp_path / "downloads"), sequential, options=SyncOptions(nvd_page_delay=0)
    )
    with published_database(stack, tmp_path) as merged, VulnerabilityDb.open(sequential) as local:
        merged_path, merged_metadata, local_metadata = merged.path, merged.metadata(), local.metadata()
    assert table_rows(merged_path) == table_rows(sequential)
    assert merged_metadata.record_counts == local_metadata.record_counts
    assert merged_metadata.namespace_fingerprints == local_metadata.namespace_fingerprints
    assert {(state.key, state.status, state.record_count) for state in merged_metadata.sources} == {
        (state.key, state.status, state.record_count) for state in local_metadata.sources
    }


def test_a_failing_source_keeps_its_rows_while_another_updates(
    stack: MotoStack, nvd_api: NvdApi, osv_zip: Path, tmp_path: Path
) -> None:
    assert stack.sync_feeds()["status"] == "SUCCEEDED"

    nvd_api.failing = True
    osv_feed_zip(osv_zip.parent, MINIMIST_ADVISORY, LOG4J_ADVISORY)  # a new advisory upstream
    execution = stack.sync_feeds()

    assert execution["status"] == "SUCCEEDED", execution
    assert execution["parsed_output"]["published"]["published"] is True
    with published_database(stack, tmp_path) as db:
        statuses = {source.kind.value: source.status.value for source in db.metadata().sources}
        assert statuses == {"osv": "updated", "nvd": "failed"}
        assert db.records("GHSA-jfh8-c2jp-5v3q") and db.affected("npm", ["minimist"])
        assert len(db.nvd([f"CVE-2026-{1000 + n}" for n in range(CVE_COUNT)])) == CVE_COUNT
