"""Feed sync over real HTTP: a local server serves the shared feed samples (and crafted failures).

Every download goes through ``requests`` to 127.0.0.1: conditional GET (ETag and Last-Modified), a
source answering 500, a truncated archive, malformed records, OSV incremental updates, NVD paging.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from portwarden.adapters.http.feeds import FeedRetryPolicy, HttpFeedFetcher
from portwarden.core.errors import FeedUnavailableError
from portwarden.core.model.package import Package, PackageType
from portwarden.core.services.sync_feeds import FeedSource, SyncOptions, sync_feeds
from portwarden.core.vulns.db import FeedKind, SourceStatus, VulnerabilityDb
from portwarden.core.vulns.matcher import Matcher
from tests.conftest import FIXTURES_DIR

pytestmark = pytest.mark.integration

FEEDS_SAMPLE = FIXTURES_DIR / "feeds-sample"
GHSA_DIR = FEEDS_SAMPLE / "osv" / "github-advisory-database" / "advisories" / "github-reviewed"
MINIMIST = GHSA_DIR / "2022/03/GHSA-xvch-5gv4-984h/GHSA-xvch-5gv4-984h.json"
EXPRESS = GHSA_DIR / "2024/03/GHSA-rv95-896h-c2vc/GHSA-rv95-896h-c2vc.json"


@dataclass
class FeedServer:
    """Serves ``overlay`` (crafted files) over the shared samples; records every request."""

    root: Path
    overlay: Path
    base_url: str = ""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)  # path -> status to answer with

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def hits(self, path: str) -> list[dict[str, str]]:
        return [
            headers
            for requested, headers in self.requests
            if requested.split("?")[0] == "/" + path.lstrip("/")
        ]


def _handler(server_state: FeedServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            server_state.requests.append((self.path, dict(self.headers.items())))
            path = self.path.split("?", 1)[0].lstrip("/")
            if path in server_state.failing:
                self.send_error(server_state.failing[path])
                return
            for base in (server_state.overlay, server_state.root):
                candidate = (base / path).resolve()
                if candidate.is_file() and candidate.is_relative_to(base.resolve()):
                    break
            else:
                self.send_error(404)
                return
            body = candidate.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[FeedServer]:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    state = FeedServer(root=FEEDS_SAMPLE, overlay=overlay)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fetcher(tmp_path: Path) -> HttpFeedFetcher:
    # No real waiting between retries in tests.
    return HttpFeedFetcher(
        tmp_path / "work", retry=FeedRetryPolicy(attempts=3, base_delay=0.0), sleep=lambda _: None
    )


OPTIONS = SyncOptions(nvd_page_delay=0)


def osv(server: FeedServer, path: str) -> FeedSource:
    return FeedSource(kind=FeedKind.OSV, url=server.url(path))


def test_sync_then_not_modified(feed_server: FeedServer, fetcher: HttpFeedFetcher, tmp_path: Path) -> None:
    database = tmp_path / "db" / "vulnerability.db"
    sources = [
        osv(feed_server, "osv/PyPI/all.zip"),
        FeedSource(kind=FeedKind.DEBIAN, url=feed_server.url("debian/vunnel-fixtures/debian.json")),
        FeedSource(kind=FeedKind.ALPINE, url=feed_server.url("alpine/secdb-json-derived/v3.11/main.json")),
        FeedSource(kind=FeedKind.KEV, url=feed_server.url("kev/known_exploited_vulnerabilities.json")),
        FeedSource(kind=FeedKind.EPSS, url=feed_server.url("epss/vulnerablecode-epss_scores-2025-x-x.csv")),
    ]
    first = sync_feeds(sources, fetcher, database, options=OPTIONS)
    assert [o.status for o in first.outcomes] == [SourceStatus.UPDATED] * 5
    counts = {o.source.kind: o.record_count for o in first.outcomes}
    assert counts[FeedKind.OSV] > 2500 and counts[FeedKind.KEV] == 1404 and counts[FeedKind.EPSS] == 27
    assert counts[FeedKind.DEBIAN] > 0 and counts[FeedKind.ALPINE] > 100
    groups = {g.name for g in first.metadata.groups}
    assert {"pypi", "alpine:3.11", "kev", "epss"} <= groups and any(g.startswith("debian:") for g in groups)
    assert not list((tmp_path / "work").iterdir())  # downloads are cleaned up

    second = sync_feeds(sources, fetcher, database, options=OPTIONS)
    assert [o.status for o in second.outcomes] == [SourceStatus.UNCHANGED] * 5
    assert {o.source.kind: o.record_count for o in second.outcomes} == counts
    # The second request carried the ETag of the first answer.
    zip_requests = feed_server.hits("osv/PyPI/all.zip")
    assert "If-None-Match" not in zip_requests[0] and zip_requests[-1]["If-None-Match"].startswith('"')
    with VulnerabilityDb.open(database) as db:
        requests_pkg = Package(name="requests", version="2.3.0", type=PackageType.PYTHON, found_by="t")
        assert "PYSEC-2023-74" in {m.id for m in Matcher(db).match([requests_pkg], None)}
        state = {s.kind: s for s in db.metadata().sources}[FeedKind.OSV]
        assert state.status is SourceStatus.UNCHANGED and state.etag and state.last_success is not None


def test_failing_source_keeps_previous_data_and_others_succeed(
    feed_server: FeedServer, fetcher: HttpFeedFetcher, tmp_path: Path
) -> None:
    database = tmp_path / "vulnerability.db"
    pypi = osv(feed_server, "osv/PyPI/all.zip")
    kev = FeedSource(kind=FeedKind.KEV, url=feed_server.url("kev/vunnel-valid-catalog-1.json"))
    first = sync_feeds([pypi, kev], fetcher, database, options=OPTIONS)
    pypi_count = first.outcomes[0].record_count

    feed_server.failing["osv/PyPI/all.zip"] = 500
    feed_server.requests.clear()
    go = osv(feed_server, "osv/Go/all.zip")
    result = sync_feeds([pypi, go], fetcher, database, options=OPTIONS)
    failed, updated = result.outcomes
    assert failed.status is SourceStatus.FAILED and "HTTP 500" in (failed.error or "")
    assert failed.record_count == pypi_count  # the previous rows were carried over
    assert len(feed_server.hits("osv/PyPI/all.zip")) == 3  # bounded retries
    assert updated.status is SourceStatus.UPDATED and updated.record_count > 4000
    with VulnerabilityDb.open(database) as db:
        metadata = db.metadata()
        by_key = {s.key: s for s in metadata.sources}
        assert (
            by_key[pypi.key].last_error
            and by_key[pypi.key].last_success == first.metadata.sources[1].last_success
        )
        assert by_key[kev.key].status is SourceStatus.KEPT  # not given this time: kept as it was
        assert {g.name for g in metadata.groups} >= {"pypi", "go", "kev"}
        assert next(g for g in metadata.groups if g.name == "pypi").last_error


def test_first_sync_failure_is_recorded_without_data(
    feed_server: FeedServer, fetcher: HttpFeedFetcher, tmp_path: Path
) -> None:
    database = tmp_path / "vulnerability.db"
    missing = FeedSource(kind=FeedKind.DEBIAN, url=feed_server.url("no/such/file.json"))
    result = sync_feeds([missing], fetcher, database, options=OPTIONS)
    (outcome,) = result.outcomes
    assert outcome.status is SourceStatus.FAILED and "404" in (outcome.error or "")
    assert len(feed_server.hits("no/such/file.json")) == 1  # a 404 is not retried
    assert result.metadata.vulnerability_count == 0
    assert result.metadata.groups[0].last_error == outcome.error


def test_truncated_zip_is_a_clear_error_and_keeps_previous_data(
    feed_server: FeedServer, fetcher: HttpFeedFetcher, tmp_path: Path
) -> None:
    database = tmp_path / "vulnerability.db"
    whole = (FEEDS_SAMPLE / "osv/Go/all.zip").read_bytes()
    target = feed_server.overlay / "mirror" / "Go" / "all.zip"
    target.parent.mkdir(parents=True)
    target.write_bytes(whole)
    source = osv(feed_server, "mirror/Go/all.zip")
    first = sync_feeds([source], fetcher, database, options=OPTIONS)
    count = first.outcomes[0].record_count

    target.write_bytes(whole[: len(whole) // 2])
    (outcome,) = sync_feeds([source], fetcher, database, options=OPTIONS).outcomes
    assert outcome.status is SourceStatus.FAILED
    assert "truncated or not a zip" in (outcome.error or "")
    assert outcome.record_count == count
    with VulnerabilityDb.open(database) as db:
        assert db.metadata().record_counts["vulnerabilities"] == count


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_malformed_records_are_counted_and_skipped(
    feed_server: FeedServer, fetcher: HttpFeedFetcher, tmp_path: Path
) -> None:
    good = MINIMIST.read_bytes()
    archive = _zip(
        {
            "GHSA-xvch-5gv4-984h.json": good,
            "BROKEN-1.json": b"{not json",
            "BROKEN-2.json": json.dumps({"id": "BROKEN-2", "affected": "not a list"}).encode(),
        }
    )
    (feed_server.overlay / "npm").mkdir()
    (feed_server.overlay / "npm" / "all.zip").write_bytes(archive)
    (outcome,) = sync_feeds(
        [osv(feed_server, "npm/all.zip")], fetcher, tmp_path / "v.db", options=OPTIONS
    ).outcomes
    assert outcome.status is SourceStatus.UPDATED
    assert outcome.record_count == 1 and outcome.parse_errors == 2
    with VulnerabilityDb.open(tmp_path / "v.db") as db:
        assert db.metadata().sources[0].parse_errors == 2


def test_osv_incremental_update_through_modified_id_csv(
    feed_server: FeedServer, fetcher: HttpFeedFetcher, tmp_path: Path
) -> None:
    database = tmp_path / "vulnerability.db"
    minimist = json.loads(MINIMIST.read_text())
    express = json.loads(EXPRESS.read_text())
    mirror = feed_server.overlay / "npm"
    mirror.mkdir()
    (mirror / "all.zip").write_bytes(_zip({"GHSA-xvch-5gv4-984h.json": json.dumps(minimist).encode()}))
    source = osv(feed_server, "npm/all.zip")
    first = sync_feeds([source], fetcher, database, options=OPTIONS)
    cursor = first.metadata.sources[0].cursor
    assert cursor is not None and cursor.startswith(minimist["modified"][:10])

    # Upstream changes: express is new and minimist is restated with a new fix; all.zip now answers 500
    # so only the incremental path can succeed.
    minimist["affected"][0]["ranges"][0]["events"][1]["fixed"] = "1.2.7"
    minimist["modified"] = "2030-01-01T00:00:00Z"
    express["modified"] = "2030-01-02T00:00:00Z"
    (mirror / "GHSA-xvch-5gv4-984h.json").write_text(json.dumps(minimist))
    (mirror / "GHSA-rv95-896h-c2vc.json").write_text(json.dumps(express))
    (mirror / "modified_id.csv").write_text(
        "2030-01-02T00:00:00Z,GHSA-rv95-896h-c2vc\n2030-01-01T00:00:00Z,GHSA-xvch-5gv4-984h\n"
        "2020-01-01T00:00:00Z,GHSA-old-one\n"
    )
    feed_server.failing["npm/all.zip"] = 500
    (outcome,) = sync_feeds([source], fetcher, database, options=OPTIONS).outcomes
    assert outcome.status is SourceStatus.UPDATED and outcome.incremental
    assert outcome.record_count == 2
    assert not feed_server.hits("npm/GHSA-old-one.json")
    with VulnerabilityDb.open(database) as db:
        (row,) = db.affected("npm", ["minimist"])
        assert "1.2.7" in row.fix_versions
        assert db.affected("npm", ["express"])
        assert db.metadata().sources[0].cursor.startswith("2030-01-02")  # type: ignore[union-attr]


def test_nvd_paging_does_not_trust_total_results(
    feed_server: FeedServer, fetcher: HttpFeedFetcher, tmp_path: Path
) -> None:
    database = tmp_path / "vulnerability.db"
    # 3 records announcing 38,743: the server ignores startIndex, so the walk must stop after page one.
    trimmed = FeedSource(
        kind=FeedKind.NVD, url=feed_server.url("nvd/api2-pages/vulnerablecode-nvd_test.json")
    )
    options = SyncOptions(nvd_page_delay=0, nvd_api_key="secret-key")
    (outcome,) = sync_feeds([trimmed], fetcher, database, options=options).outcomes
    assert outcome.status is SourceStatus.UPDATED and outcome.record_count == 3
    hits = feed_server.hits("nvd/api2-pages/vulnerablecode-nvd_test.json")
    assert len(hits) == 2 and hits[0]["apiKey"] == "secret-key"
    assert (
        "startIndex=0" in feed_server.requests[0][0] and "resultsPerPage=2000" in feed_server.requests[0][0]
    )

    # The next sync is incremental: a lastModStartDate window from the cursor.
    feed_server.requests.clear()
    (again,) = sync_feeds([trimmed], fetcher, database, options=options).outcomes
    assert again.incremental and again.record_count == 3
    assert (
        "lastModStartDate=" in feed_server.requests[0][0] and "lastModEndDate=" in feed_server.requests[0][0]
    )


def test_feed_fetcher_reads_file_urls_with_validators(tmp_path: Path, fetcher: HttpFeedFetcher) -> None:
    document = tmp_path / "main.json"
    shutil.copy(FEEDS_SAMPLE / "alpine/secdb-json/v3.11/main.json", document)
    first = fetcher.fetch(document.as_uri())
    assert first.path is not None and Path(first.path).read_bytes() == document.read_bytes()
    again = fetcher.fetch(document.as_uri(), etag=first.etag)
    assert again.not_modified
    with pytest.raises(FeedUnavailableError):
        fetcher.fetch((tmp_path / "absent.json").as_uri())
    with pytest.raises(FeedUnavailableError, match="unsupported URL scheme"):
        fetcher.fetch("ftp://example.invalid/x")


def test_cli_feeds_sync_and_list(feed_server: FeedServer, tmp_path: Path) -> None:
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "portwarden.cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    feed_server.failing["broken/all.zip"] = 404
    result = run(
        "feeds",
        "sync",
        "--source",
        f"osv={feed_server.url('osv/PyPI/all.zip')}",
        "--source",
        f"alpine={feed_server.url('alpine/secdb-json-derived/v3.10/main.json')}",
        "--source",
        f"osv={feed_server.url('broken/all.zip')}",
    )
    assert result.returncode == 2, result.stderr  # one source failed: reported, the others published
    assert "1 of 3 source(s) failed" in result.stderr
    listing = run("feeds", "list", "-o", "json")
    assert listing.returncode == 0, listing.stderr
    document = json.loads(listing.stdout)
    groups = {g["name"]: g for g in document["groups"]}
    assert groups["pypi"]["record_count"] > 2500 and groups["pypi"]["last_sync"]
    assert groups["alpine:3.10"]["record_count"] > 0
    assert "404" in groups["osv"]["last_error"]
    assert (tmp_path / "home" / "db" / "vulnerability.db").is_file()

    table = run("feeds", "list")
    assert table.returncode == 0 and "pypi" in table.stdout and "alpine:3.10" in table.stdout

    bad = run("feeds", "sync", "--source", "rpm=http://127.0.0.1:1/x")
    assert bad.returncode == 2 and "unknown feed kind" in bad.stderr
