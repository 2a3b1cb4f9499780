"""Feed sync over real HTTP: a local server serves the shared feed samples (and crafted failures).

Every download goes through ``requests`` to 127.0.0.1: conditional GET (ETag and Last-Modified), a
source answering 500, a truncated archive, malformed records, OSV incremental updates, NVD paging.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
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
REPO_ROOT = Path(__file__).resolve().parents[2]
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
            if path == "endless":
                # No Content-Length: a body that only ends when the client hangs up (bounded here so
                # that a client without a limit still ends the test).
                self.send_response(200)
                self.end_headers()
                with contextlib.suppress(OSError):
                    for _ in range(256):
                        self.wfile.write(bytes(1024 * 1024))
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


# ---- the OSV incremental cursor -----------------------------------------------------------------------


def _osv_mirror(directory: Path, documents: list[dict[str, object]]) -> None:
    """An OSV mirror as ``gsutil rsync`` of one ecosystem leaves it when only ``all.zip`` and
    ``modified_id.csv`` are kept (no per-id files)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "all.zip").write_bytes(
        _zip({f"{document['id']}.json": json.dumps(document).encode() for document in documents})
    )
    newest_first = sorted(documents, key=lambda document: str(document["modified"]), reverse=True)
    (directory / "modified_id.csv").write_text(
        "".join(f"{document['modified']},{document['id']}\n" for document in newest_first)
    )


def test_second_sync_of_an_unchanged_osv_mirror_is_unchanged(
    fetcher: HttpFeedFetcher, tmp_path: Path
) -> None:
    database = tmp_path / "vulnerability.db"
    mirror = tmp_path / "mirror" / "npm"
    _osv_mirror(mirror, [json.loads(MINIMIST.read_text()), json.loads(EXPRESS.read_text())])
    source = FeedSource(kind=FeedKind.OSV, url=(mirror / "all.zip").as_uri())
    first = sync_feeds([source], fetcher, database, options=OPTIONS)
    assert first.outcomes[0].status is SourceStatus.UPDATED and first.outcomes[0].record_count == 2

    # The cursor is the newest advisory's modification time; the mirror has no per-id files, so an
    # inclusive cursor asked for that advisory's own file and failed the whole source.
    (second,) = sync_feeds([source], fetcher, database, options=OPTIONS).outcomes
    assert second.error is None and second.status is SourceStatus.UNCHANGED
    assert second.record_count == 2
    with VulnerabilityDb.open(database) as db:
        assert db.affected("npm", ["express"]) and db.affected("npm", ["minimist"])


def test_missing_per_id_file_falls_back_to_all_zip(
    feed_server: FeedServer, fetcher: HttpFeedFetcher, tmp_path: Path
) -> None:
    database = tmp_path / "vulnerability.db"
    minimist = json.loads(MINIMIST.read_text())
    express = json.loads(EXPRESS.read_text())
    mirror = feed_server.overlay / "npm"
    _osv_mirror(mirror, [minimist])
    source = osv(feed_server, "npm/all.zip")
    assert sync_feeds([source], fetcher, database, options=OPTIONS).outcomes[0].record_count == 1

    # Two advisories changed upstream; the server has the per-id file of one of them only.
    minimist["affected"][0]["ranges"][0]["events"][1]["fixed"] = "1.2.7"
    minimist["modified"] = "2030-01-01T00:00:00Z"
    express["modified"] = "2030-01-02T00:00:00Z"
    _osv_mirror(mirror, [minimist, express])
    (mirror / "GHSA-xvch-5gv4-984h.json").write_text(json.dumps(minimist))
    feed_server.requests.clear()
    (outcome,) = sync_feeds([source], fetcher, database, options=OPTIONS).outcomes
    assert outcome.status is SourceStatus.UPDATED and outcome.error is None
    assert not outcome.incremental and outcome.record_count == 2
    assert feed_server.hits("npm/GHSA-rv95-896h-c2vc.json") and feed_server.hits("npm/all.zip")
    with VulnerabilityDb.open(database) as db:
        (row,) = db.affected("npm", ["minimist"])
        assert "1.2.7" in row.fix_versions  # applied once, from all.zip: no duplicate rows
        assert db.affected("npm", ["express"])
        assert db.metadata().sources[0].cursor.startswith("2030-01-02")  # type: ignore[union-attr]


# ---- two syncs at once, a killed sync, a damaged database (real processes) ---------------------------


def _cli(home: Path, *args: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "portwarden.cli.main", *args],
        env={**os.environ, "PORTWARDEN_HOME": str(home)},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,  # type: ignore[call-overload]
    )


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _holding_sync(home: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """A ``feeds sync`` process that holds the build lock, stuck reading a FIFO until it is fed."""
    fifo = tmp_path / "debian.fifo"
    os.mkfifo(fifo)
    process = _cli(home, "feeds", "sync", "--source", f"debian={fifo.as_uri()}")
    lock = home / "db" / "vulnerability.db.lock"
    _wait_for(
        lambda: lock.is_file() and lock.read_text().startswith(f"{process.pid} "), "the first sync to lock"
    )
    # Past the lock: building, its download started (the FIFO open blocks until a writer comes).
    _wait_for(lambda: bool(list((home / "tmp" / "feeds").glob("feed-*"))), "the first sync's download")
    return process, fifo


def _build_files(home: Path) -> list[Path]:
    return sorted((home / "db").glob("vulnerability.db.build-*")) + sorted(
        (home / "tmp" / "feeds").glob("feed-*")
    )


def test_two_cli_syncs_at_once_take_turns_and_keep_both(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first, fifo = _holding_sync(home, tmp_path)
    in_progress = _build_files(home)
    assert len(in_progress) == 2  # its build file and its download

    alpine = FEEDS_SAMPLE / "alpine" / "secdb-json" / "v3.11" / "main.json"
    second = _cli(home, "feeds", "sync", "--source", f"alpine={alpine.as_uri()}")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(second.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    _wait_for(
        lambda: any("another feeds sync is running" in line for line in lines), "the second sync to wait"
    )
    assert f"process {first.pid}" in next(line for line in lines if "another feeds sync" in line)
    assert second.poll() is None  # it waits rather than building beside the first
    assert _build_files(home) == in_progress  # and it deleted none of the running sync's files

    with fifo.open("wb") as feed:
        feed.write((FEEDS_SAMPLE / "debian" / "vunnel-fixtures" / "debian.json").read_bytes())
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert second.wait(timeout=120) == 0, "".join(lines)
    reader.join(timeout=10)
    assert any("published" in line for line in lines)

    listing = subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", "feeds", "list", "-o", "json"],
        env={**os.environ, "PORTWARDEN_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    groups = {group["name"] for group in json.loads(listing.stdout)["groups"]}
    assert "alpine:3.11" in groups and any(name.startswith("debian:") for name in groups)
    assert _build_files(home) == []


def test_killed_sync_leftovers_are_removed_by_the_next_sync(tmp_path: Path) -> None:
    home = tmp_path / "home"
    killed, _ = _holding_sync(home, tmp_path)
    leftovers = _build_files(home)
    assert len(leftovers) == 2
    killed.kill()
    killed.communicate(timeout=30)
    assert all(path.exists() for path in leftovers)  # a killed process cleans nothing up

    alpine = FEEDS_SAMPLE / "alpine" / "secdb-json" / "v3.11" / "main.json"
    after = _cli(home, "feeds", "sync", "--source", f"alpine={alpine.as_uri()}", "--lock-wait", "0")
    _, err = after.communicate(timeout=120)
    assert after.returncode == 0, err  # the kernel released the dead process's lock
    assert not any(path.exists() for path in leftovers)
    assert _build_files(home) == []


def test_cli_sync_rebuilds_a_damaged_database_and_scan_names_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pypi = (FEEDS_SAMPLE / "osv" / "PyPI" / "all.zip").as_uri()
    sync = subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", "feeds", "sync", "--source", f"osv={pypi}"],
        env={**os.environ, "PORTWARDEN_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert sync.returncode == 0, sync.stderr
    database = home / "db" / "vulnerability.db"
    page = 16384
    with database.open("r+b") as handle:
        for number in range(1, database.stat().st_size // page):
            handle.seek(number * page)
            handle.write(b"\xa5" * page)

    image = tmp_path / "image"
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "build_example.py"), str(image)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    env = {**os.environ, "PORTWARDEN_HOME": str(home)}
    scan = subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", "scan", f"oci-dir:{image}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert scan.returncode == 2
    assert "unexpected error" not in scan.stderr
    assert str(database) in scan.stderr and "damaged" in scan.stderr

    again = subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", "feeds", "sync", "--source", f"osv={pypi}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "damaged" in again.stderr and "rebuilt" in again.stderr
    with VulnerabilityDb.open(database) as db:
        assert db.metadata().vulnerability_count > 2500


def test_http_downloads_are_capped(feed_server: FeedServer, fetcher: HttpFeedFetcher) -> None:
    mib = 1024 * 1024
    (feed_server.overlay / "big.json").write_bytes(b" " * (3 * mib))
    # Announced larger than the cap: refused on the header, the body is never read into a file.
    with pytest.raises(FeedUnavailableError, match=r"3\.0 MiB is larger than the download limit of 1\.0 MiB"):
        fetcher.fetch(feed_server.url("big.json"), max_bytes=mib)
    assert len(feed_server.hits("big.json")) == 1  # not retried
    # No length announced: the copy stops at the cap.
    with pytest.raises(FeedUnavailableError, match=r"larger than the download limit of 2\.0 MiB") as caught:
        fetcher.fetch(feed_server.url("endless"), max_bytes=2 * mib)
    assert str(caught.value).startswith(feed_server.url("endless"))
    assert list(fetcher.work_dir.iterdir()) == []
    assert fetcher.fetch(feed_server.url("big.json"), max_bytes=3 * mib).path is not None


def test_cli_sync_of_an_endless_source_stops_at_its_limit(tmp_path: Path) -> None:
    home = tmp_path / "home"
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "portwarden.cli.main",
            "feeds",
            "sync",
            "--source",
            "debian=file:///dev/zero",
            "--max-download",
            "debian=4mb",
        ],
        env={**os.environ, "PORTWARDEN_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "failed  debian file:///dev/zero" in result.stderr
    assert "larger than the download limit of 4.0 MiB" in result.stderr
    assert time.monotonic() - started < 60
    assert _build_files(home) == []
