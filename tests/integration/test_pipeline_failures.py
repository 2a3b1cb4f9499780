"""The analysis pipeline's failure paths and idempotency, through the real state machine in moto.

* an image that does not exist → ``analysis_failed`` with the registry's reason, the execution FAILED;
* a layer the registry cannot serve (503) → AnalyzeLayer retried by the state machine as the ASL
  says, then ``analysis_failed``;
* the same ECR event twice → one execution, one analysis; the same digest under a second tag → the
  tag is recorded and nothing is analyzed again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from portwarden.core.model.records import AnalysisStatus
from tests.support.aws import ECR_REGISTRY, MotoStack, ecr_push_event, moto_stack, registry_environment
from tests.support.ocibuild import ConfigSpec, Image, build_image, build_layer, file
from tests.support.registry import RunningRegistry, push_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

ASL = json.loads(
    (Path(__file__).resolve().parents[2] / "statemachine" / "analysis.asl.json")
    .read_text()
    .replace("${MaxLayerConcurrency}", "1")
    .replace("${AnalysisTimeoutSeconds}", "7200")
)
MISSING_DIGEST = "sha256:" + "0" * 63 + "1"


def two_layer_image() -> Image:
    return build_image(
        [
            build_layer([file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\n")]),
            build_layer([file("srv/app.txt", "payload")]),
        ],
        ConfigSpec(cmd=("/bin/sh",)),
    )


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, anonymous_registry: RunningRegistry, tmp_path: Path
) -> Iterator[MotoStack]:
    environment = registry_environment(anonymous_registry.host, PORTWARDEN_WORK_DIR=str(tmp_path / "work"))
    with moto_stack(monkeypatch, **environment) as running:
        yield running


def test_an_image_that_does_not_exist_is_marked_failed_with_the_reason(stack: MotoStack) -> None:
    started = stack.start_push(ecr_push_event(MISSING_DIGEST))
    execution = stack.wait(started["execution_arn"])

    assert execution["status"] == "FAILED"
    assert execution["error"] == "AnalysisFailed"
    record = stack.stores.catalog.get_image(MISSING_DIGEST)
    assert record is not None
    assert record.analysis_status is AnalysisStatus.ANALYSIS_FAILED
    assert record.last_error is not None and record.last_error.startswith("ImageNotFoundError: ")
    assert record.repo_tags == (f"{ECR_REGISTRY}/team/app:1.0",)
    # Not transient: no retry of Resolve, straight to MarkFailed.
    assert [call.error_type for call in stack.calls("ResolveFunction")] == ["ImageNotFoundError"]
    assert len(stack.calls("MarkFailedFunction")) == 1
    failures = [e for e in stack.stores.events.list_events() if e.type == "user.image.analysis.failed"]
    assert [(e.resource_id, e.level) for e in failures] == [(MISSING_DIGEST, "ERROR")]
    # And the API tells the user why.
    shown = stack.api("GET", f"/images/{MISSING_DIGEST}")["json"][0]
    assert shown["analysis_status"] == "analysis_failed"
    assert shown["last_error"] == record.last_error


# ---- a registry whose layer blob fails ----------------------------------------------------------


class FaultyRegistryProxy:
    """Forwards to a registry, answering 503 to every GET of one blob; counts those requests."""

    def __init__(self, upstream: str, failing_blob: str) -> None:
        self.upstream = upstream
        self.failing_blob = failing_blob
        self.failed_requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.handle(self)

            def do_HEAD(self) -> None:
                owner.handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        if request.path.endswith(f"/blobs/{self.failing_blob}"):
            self.failed_requests += 1
            request.send_response(503)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        headers = {name: value for name, value in request.headers.items() if name.lower() != "host"}
        upstream = requests.request(
            request.command, f"http://{self.upstream}{request.path}", headers=headers, timeout=10
        )
        request.send_response(upstream.status_code)
        for name in ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-Api-Version"):
            if name in upstream.headers:
                request.send_header(name, upstream.headers[name])
        request.send_header("Content-Length", str(len(upstream.content)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(upstream.content)

    def __enter__(self) -> FaultyRegistryProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _retrier(state: dict[str, Any], error: str) -> dict[str, Any]:
    retrier: dict[str, Any] = next(r for r in state["Retry"] if error in r["ErrorEquals"])
    return retrier


def test_a_layer_that_fails_to_download_is_retried_then_marked_failed(
    monkeypatch: pytest.MonkeyPatch, anonymous_registry: RunningRegistry, tmp_path: Path
) -> None:
    image = two_layer_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    failing_layer = json.loads(image.manifest.data)["layers"][1]["digest"]
    analyze_layer = ASL["States"]["AnalyzeLayers"]["ItemProcessor"]["States"]["AnalyzeLayer"]
    retrier = _retrier(analyze_layer, "RegistryUnavailableError")
    expected_attempts = 1 + retrier["MaxAttempts"]
    expected_wait = sum(
        retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n for n in range(retrier["MaxAttempts"])
    )

    with FaultyRegistryProxy(anonymous_registry.host, failing_layer) as proxy:
        # The client tries once per invocation: the retries under test are the state machine's.
        environment = registry_environment(
            proxy.host, PORTWARDEN_REGISTRY_MAX_ATTEMPTS="1", PORTWARDEN_WORK_DIR=str(tmp_path / "work")
        )
        with moto_stack(monkeypatch, **environment) as stack:
            began = time.monotonic()
            started = stack.start_push(ecr_push_event(image.digest))
            execution = stack.wait(started["execution_arn"])
            elapsed = time.monotonic() - began

            assert execution["status"] == "FAILED"
            attempts = [
                c for c in stack.calls("AnalyzeLayerFunction") if c.event["layer"]["digest"] == failing_layer
            ]
            assert [c.error_type for c in attempts] == ["RegistryUnavailableError"] * expected_attempts
            assert proxy.failed_requests == expected_attempts
            # The ASL's intervals were honoured; with full jitter each wait is anywhere up to its interval.
            jittered = retrier.get("JitterStrategy") == "FULL"
            assert elapsed >= (0 if jittered else expected_wait)
            assert elapsed <= expected_wait + 60
            record = stack.stores.catalog.get_image(image.digest)
            assert record is not None
            assert record.analysis_status is AnalysisStatus.ANALYSIS_FAILED
            assert record.last_error is not None and record.last_error.startswith(
                "RegistryUnavailableError: "
            )
            assert stack.calls("AssembleFunction") == []


# ---- idempotency ---------------------------------------------------------------------------------


def test_the_same_ecr_event_twice_starts_one_analysis(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    image = two_layer_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    event = ecr_push_event(image.digest)

    first = stack.start_push(event)
    second = stack.start_push(event)
    assert stack.wait(first["execution_arn"])["status"] == "SUCCEEDED"
    third = stack.start_push(event)  # redelivered after it finished

    # Step Functions answers an identical start of a running execution with that execution, and
    # refuses one whose execution has finished: either way there is one execution.
    assert (first["started"], second["started"], third["started"]) == (True, True, False)
    assert first["execution_arn"] == second["execution_arn"] == third["execution_arn"]
    assert len(stack.executions()) == 1
    assert len(stack.calls("ResolveFunction")) == 1
    assert len(stack.calls("AssembleFunction")) == 1
    completed = [e for e in stack.stores.events.list_events() if e.type == "user.image.analysis.completed"]
    assert len(completed) == 1


def test_the_same_digest_under_another_tag_records_the_tag_without_a_second_analysis(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    image = two_layer_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    push_image(image, anonymous_registry, "team/app", "latest")

    first = stack.start_push(ecr_push_event(image.digest, tag="1.0"))
    assert stack.wait(first["execution_arn"])["status"] == "SUCCEEDED"
    again = stack.start_push(ecr_push_event(image.digest, tag="latest"))
    execution = stack.wait(again["execution_arn"])

    assert again["started"] is True and again["execution_arn"] != first["execution_arn"]
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["resolved"]["skip"] is True
    assert len(stack.calls("AssembleFunction")) == 1
    assert len(stack.calls("AnalyzeLayerFunction")) == 2
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
    assert record.repo_tags == (f"{ECR_REGISTRY}/team/app:1.0", f"{ECR_REGISTRY}/team/app:latest")


def test_an_api_submission_of_an_analyzed_digest_does_not_analyze_it_again(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    image = two_layer_image()
    push_image(image, anonymous_registry, "team/app", "1.0")

    # The ECR push first, then an API submission of the same image: another trigger, one analysis.
    pushed = stack.start_push(ecr_push_event(image.digest))
    first = stack.wait(pushed["execution_arn"])
    posted = stack.api("POST", "/images", {"source": f"{ECR_REGISTRY}/team/app@{image.digest}"})
    second = stack.wait(posted["json"]["execution_arn"])

    assert posted["statusCode"] == 202
    assert [first["status"], second["status"]] == ["SUCCEEDED", "SUCCEEDED"]
    assert [json.loads(o["output"])["resolved"]["skip"] for o in (first, second)] == [False, True]
    assert len(stack.calls("AssembleFunction")) == 1
