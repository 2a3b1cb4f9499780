"""The serve host's analysis workers (real threads), its queue recovery after a stop, and the WSGI
layer's authentication: cached logins, throttled failures, request limits."""

from __future__ import annotations

import base64
import io
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.model.accounts import QueuedAnalysis
from portwarden.core.model.records import AnalysisClaim, AnalysisStatus, ImageRecord
from portwarden.serve.workers import run_owner
from portwarden.serve.wsgi import MAX_BODY_BYTES, FailureThrottle, parse_basic, to_proxy_event
from tests.unit.api.support import REGISTRY, serve_harness

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_worker_threads_analyze_each_image_once_with_its_own_content(tmp_path: Path) -> None:
    # Given 12 distinct images, each added twice, and three worker threads running
    with serve_harness(tmp_path / "home") as harness:
        harness.host.workers._workers = 3
        markers = [f"image{n}" for n in range(12)]
        digests = {marker: harness.push(f"team/{marker}", "1", marker=marker) for marker in markers}
        harness.host.workers.start()
        for _ in range(2):
            for marker in markers:
                answer = harness.admin.post("/v1/images", {"tag": f"{REGISTRY}/team/{marker}:1"})
                assert answer.status == 200
        # When the workers have drained the queue
        catalog = harness.host.store.catalog
        wait_for(
            lambda: all(
                (record := catalog.get_image(d)) is not None
                and record.analysis_status is AnalysisStatus.ANALYZED
                for d in digests.values()
            )
        )
        wait_for(lambda: harness.host.store.queue.pending() == 0)
        # Then every image was analyzed exactly once, and its analysis holds its own files only
        events = harness.host.store.events.list_events(limit=1000)
        completed = [e.resource_id for e in events if e.type == "user.image.analysis.completed"]
        assert sorted(completed) == sorted(digests.values())
        for marker, digest in digests.items():
            analysis = harness.host.store.analyses.get_analysis(digest)
            assert analysis is not None
            own = {f.path for f in analysis.files if f.path.startswith("/srv/")}
            assert own == {f"/srv/{marker}.txt"}
        # And the registry was asked for each digest's manifest by one worker only
        for marker, digest in digests.items():
            assert harness.registry.manifest_fetches[f"{REGISTRY}/team/{marker}@{digest}"] == 1
        # And the server keeps its catalogers' results (the functions do not: S3 round trips)
        assert list((tmp_path / "home" / "cache" / "catalogers").glob("*.json.zst"))


def test_a_stopped_server_resumes_interrupted_analyses_and_gives_up_after_max_attempts(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with serve_harness(home) as harness:
        digest = harness.push("team/app", "1")
        assert harness.admin.post("/v1/images", {"tag": f"{REGISTRY}/team/app:1"}).status == 200
        # A worker claimed it and the image went to analyzing, then the server stopped
        item = harness.host.store.queue.claim()
        assert item is not None
        harness.host.store.catalog.set_status(digest, AnalysisStatus.ANALYZING)
    with serve_harness(home) as restarted:
        # On restart it is queued again with its image back to not_analyzed, and then analyzed
        record = restarted.host.store.catalog.get_image(digest)
        assert record is not None and record.analysis_status is AnalysisStatus.NOT_ANALYZED
        assert restarted.push("team/app", "1") == digest  # the new process's registry
        assert restarted.run_queued() == 1
        record = restarted.host.store.catalog.get_image(digest)
        assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED

    # An item interrupted as many times as allowed is marked failed, not retried forever
    with serve_harness(home) as harness:
        store = harness.host.store
        stuck = "sha256:" + "ee" * 32
        store.catalog.put_image(
            ImageRecord(
                image_digest=stuck, analysis_status=AnalysisStatus.ANALYZING, created_at=record.created_at
            )
        )
        store.queue.enqueue(
            QueuedAnalysis(
                account="admin",
                image_digest=stuck,
                source=f"registry:{REGISTRY}/team/stuck@{stuck}",
                platform="linux/amd64",
                enqueued_at=record.created_at,
                attempts=2,
            )
        )
        assert store.queue.claim() is not None  # third attempt, interrupted
        requeued, given_up = harness.host.workers.recover()
        assert (requeued, given_up) == (0, 1)
        failed = store.catalog.get_image(stuck)
        assert failed is not None and failed.analysis_status is AnalysisStatus.ANALYSIS_FAILED
        assert "interrupted" in (failed.last_error or "")


def test_runs_claim_their_image_and_leave_another_runs_live_claim_alone_until_it_expires(
    tmp_path: Path,
) -> None:
    with serve_harness(tmp_path / "home") as harness:
        digest = harness.push("team/app", "1")
        catalog = harness.host.store.catalog
        assert harness.admin.post("/v1/images", {"tag": f"{REGISTRY}/team/app:1"}).status == 200
        # Another run (another server on the same store) holds a live claim on the image
        now = datetime.now(UTC)
        live = AnalysisClaim(owner="serve/elsewhere", deadline=now + timedelta(hours=1))
        assert catalog.claim_analysis(digest, live, now=now)
        # A queued run then neither analyzes it again nor fails the other run's analysis
        assert harness.run_queued() == 1
        record = catalog.get_image(digest)
        assert record is not None and record.analysis_status is AnalysisStatus.ANALYZING
        assert (record.claim_owner, record.last_error) == ("serve/elsewhere", None)
        # Once that claim is past its deadline (its holder died), the next run takes the analysis over
        catalog.put_image(record.model_copy(update={"claim_deadline": now - timedelta(minutes=1)}))
        item = QueuedAnalysis(
            account="admin",
            image_digest=digest,
            source=f"registry:{REGISTRY}/team/app@{digest}",
            platform="linux/amd64",
            repo_tag=f"{REGISTRY}/team/app:1",
            enqueued_at=now,
        )
        assert harness.host.store.queue.enqueue(item)
        claimed = harness.host.store.queue.claim()
        assert claimed is not None
        seen: list[tuple[str | None, str | None]] = []
        original = harness.host.workers._database

        def database_during_match() -> Any:
            # Match runs after Assemble: by then the claim is released with the image analyzed
            current = catalog.get_image(digest)
            assert current is not None
            seen.append((current.analysis_status.value, current.claim_owner))
            return original()

        harness.host.workers._database = database_during_match
        harness.host.workers.run(claimed)
        record = catalog.get_image(digest)
        assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
        assert seen == [("analyzed", None)]


def test_a_failed_run_ends_only_its_own_claim(tmp_path: Path) -> None:
    with serve_harness(tmp_path / "home") as harness:
        digest = harness.push("team/app", "1")
        catalog = harness.host.store.catalog
        assert harness.admin.post("/v1/images", {"tag": f"{REGISTRY}/team/app:1"}).status == 200
        item = harness.host.store.queue.claim()
        assert item is not None
        owner = run_owner(item)
        assert owner != run_owner(item.model_copy(update={"attempts": item.attempts + 1}))
        # The run's access fails after another run took the image over: that run's claim stands
        now = datetime.now(UTC)
        taker = AnalysisClaim(owner="serve/taker", deadline=now + timedelta(hours=1))
        assert catalog.claim_analysis(digest, taker, now=now)

        def failing_access(_account: str) -> Any:
            raise RuntimeError("registry unreachable")

        harness.host.workers._access = failing_access
        harness.host.workers.run(item)
        record = catalog.get_image(digest)
        assert record is not None and record.analysis_status is AnalysisStatus.ANALYZING
        assert (record.claim_owner, record.last_error) == ("serve/taker", None)


def test_a_restart_releases_the_interrupted_runs_claim_and_no_other(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with serve_harness(home) as harness:
        digest = harness.push("team/app", "1")
        assert harness.admin.post("/v1/images", {"tag": f"{REGISTRY}/team/app:1"}).status == 200
        item = harness.host.store.queue.claim()
        assert item is not None
        # The run claimed the image for two hours, then the server stopped
        now = datetime.now(UTC)
        claim = AnalysisClaim(owner=run_owner(item), deadline=now + timedelta(hours=2))
        assert harness.host.store.catalog.claim_analysis(digest, claim, now=now)
        other = "sha256:" + "dd" * 32
        harness.host.store.catalog.put_image(
            ImageRecord(
                image_digest=other,
                analysis_status=AnalysisStatus.ANALYZING,
                created_at=now,
                claim_owner="serve/elsewhere",
                claim_deadline=now + timedelta(hours=2),
            )
        )
    with serve_harness(home) as restarted:
        # The interrupted run's claim is gone at once (not in two hours) and the image is queued again
        record = restarted.host.store.catalog.get_image(digest)
        assert record is not None and record.analysis_status is AnalysisStatus.NOT_ANALYZED
        assert (record.claim_owner, record.claim_deadline) == (None, None)
        untouched = restarted.host.store.catalog.get_image(other)
        assert untouched is not None and untouched.claim_owner == "serve/elsewhere"
        assert restarted.push("team/app", "1") == digest
        assert restarted.run_queued() == 1
        record = restarted.host.store.catalog.get_image(digest)
        assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED


def test_stop_waits_for_running_workers_and_leaves_the_rest_queued(tmp_path: Path) -> None:
    with serve_harness(tmp_path / "home") as harness:
        started = threading.Event()
        release = threading.Event()
        original = harness.host.workers.run

        def slow_run(item: QueuedAnalysis) -> None:
            started.set()
            release.wait(10)
            original(item)

        harness.host.workers.run = slow_run  # type: ignore[method-assign]
        harness.push("team/a", "1", marker="a")
        harness.push("team/b", "1", marker="b")
        harness.host.workers.start()
        harness.admin.post("/v1/images", {"tag": f"{REGISTRY}/team/a:1"})
        assert started.wait(10)
        harness.admin.post("/v1/images", {"tag": f"{REGISTRY}/team/b:1"})
        # A stop with a short grace leaves the running one unfinished (it resumes on restart)
        assert harness.host.workers.stop(0.2) is False
        release.set()
        assert harness.host.workers.stop(10) is True
        # The second image was never taken: still queued for the next start
        assert harness.host.store.queue.pending() == 1


def test_failed_logins_are_slowed_down_and_reset_by_a_success() -> None:
    throttle = FailureThrottle(base_delay=0.1, max_delay=0.4, window=60)
    delays = [throttle.record_failure("10.0.0.1") for _ in range(5)]
    assert delays == [0.1, 0.2, 0.4, 0.4, 0.4]
    assert throttle.record_failure("10.0.0.2") == 0.1  # per client
    throttle.reset("10.0.0.1")
    assert throttle.record_failure("10.0.0.1") == 0.1


def test_wsgi_layer_sleeps_on_failures_caches_logins_and_caps_bodies(tmp_path: Path) -> None:
    from portwarden.serve.wsgi import CredentialCache, WsgiHost

    with serve_harness(tmp_path / "home") as harness:
        slept: list[float] = []
        app = WsgiHost(
            harness.host.app,
            harness.host.store.accounts,
            cache=CredentialCache(),
            throttle=FailureThrottle(0.5, 2.0),
            sleep=slept.append,
        )

        def call(password: str, length: int = 0) -> int:
            token = base64.b64encode(f"admin:{password}".encode()).decode()
            environ = {
                "REQUEST_METHOD": "POST" if length else "GET",
                "PATH_INFO": "/v1/policies" if length else "/v1",
                "QUERY_STRING": "",
                "CONTENT_LENGTH": str(length),
                "HTTP_AUTHORIZATION": f"Basic {token}",
                "wsgi.input": io.BytesIO(b""),
            }
            status: list[int] = []
            app(environ, lambda s, _h: status.append(int(s.split()[0])))
            return status[0]

        assert [call("wrong") for _ in range(3)] == [401, 401, 401]
        assert slept == [0.5, 1.0, 2.0]
        assert call("admin-secret-1") == 200
        # The second success is served from the login cache: no hash computed
        from portwarden.serve import wsgi

        calls: list[str] = []
        original = wsgi.authenticate
        wsgi.authenticate = lambda *args: calls.append("hash") or original(*args)  # type: ignore[assignment]
        try:
            assert call("admin-secret-1") == 200
        finally:
            wsgi.authenticate = original
        assert calls == []
        assert call("admin-secret-1", length=MAX_BODY_BYTES + 1) == 413


def test_basic_header_parsing_and_proxy_events() -> None:
    assert parse_basic("Basic " + base64.b64encode(b"u:p:with:colons").decode()) == ("u", "p:with:colons")
    for bad in (None, "", "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()):
        assert parse_basic(bad) is None
    event = to_proxy_event(
        {"QUERY_STRING": "a=1&a=2&b=", "HTTP_X_ANCHORE_ACCOUNT": "team", "CONTENT_TYPE": "application/json"},
        "GET",
        "/v1/images",
        b"\xff\xfe",
        None,
        "rid",
    )
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["headers"]["X-Anchore-Account"] == "team"
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\xfe"
    assert event["requestContext"]["authorizer"] is None


def test_concurrent_requests_each_get_their_own_answer(tmp_path: Path) -> None:
    # Given 40 stored images, and 8 threads requesting them through one WSGI host
    from concurrent.futures import ThreadPoolExecutor

    with serve_harness(tmp_path / "home") as harness:
        store = harness.host.store
        digests = ["sha256:" + f"{n:064x}" for n in range(1, 41)]
        for n, image_digest in enumerate(digests):
            store.catalog.put_image(
                ImageRecord(
                    image_digest=image_digest, repo_tags=(f"{REGISTRY}/r/{n}:1",), created_at=record_time(n)
                )
            )
        harness.admin.get("/v1")  # the login is cached before the threads start

        def fetch(index: int) -> tuple[str, str, int]:
            wanted = digests[index % len(digests)]
            kind = ("", "/vuln", "/content")[index % 3]
            answer = harness.admin.get(f"/v1/images/{wanted}{kind}")
            if kind:
                return wanted, wanted, answer.status
            return wanted, answer.body[0]["imageDigest"], answer.status

        # When 2,000 requests run at once, threads switching as often as the interpreter allows
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(fetch, range(2000)))
        finally:
            sys.setswitchinterval(interval)

    # Then every answer is the one asked for: no request saw another's path
    assert all(status == 200 for _, _, status in answers), {s for _, _, s in answers}
    assert all(wanted == got for wanted, got, _ in answers)


def record_time(n: int) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)


def test_an_image_deleted_with_force_while_analyzed_is_not_written_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``portwarden serve``: a forced delete while a worker reads the image's layers; the worker's
    Assemble then finds the claim gone and records nothing (the run ends as a failure event)."""
    from portwarden.core.errors import ClaimLostError
    from portwarden.serve import workers as serve_workers
    from tests.unit.api.support import encoded, serve_harness
    from tests.unit.api.test_api_contract import add_image

    with serve_harness(tmp_path / "home") as harness:
        harness.push("acme/app", "1.0")
        digest: str = add_image(harness)["imageDigest"]
        original = serve_workers.assemble_phase
        raised: list[str] = []

        def deleted_first(*args: Any, **kwargs: Any) -> Any:
            record = harness.host.store.catalog.get_image(digest)
            assert record is not None and record.analysis_status.value == "analyzing"
            assert harness.admin.delete(f"/v1/images/{encoded(digest)}").status == 409
            assert harness.admin.delete(f"/v1/images/{encoded(digest)}?force=true").status == 200
            try:
                return original(*args, **kwargs)
            except ClaimLostError as exc:
                raised.append(type(exc).__name__)
                raise

        monkeypatch.setattr(serve_workers, "assemble_phase", deleted_first)
        assert harness.run_queued() == 1
        assert raised == ["ClaimLostError"]
        assert harness.host.store.catalog.get_image(digest) is None
        assert harness.host.store.analyses.get_analysis(digest) is None
        assert harness.admin.get(f"/v1/images/{encoded(digest)}").status == 404
