"""The pipeline's handlers one by one, driven with the sample events in ``events/``, and the edges
around them: settings from the environment, the ECR event model, the starter, API validation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from portwarden.adapters.aws.sfn import StepFunctionsStarter, execution_name
from portwarden.core.errors import ConfigurationError, NotFoundError
from portwarden.core.image.reference import ImageReference
from portwarden.core.model.records import AnalysisStatus
from portwarden.core.ports import FetchedManifest
from portwarden.core.services.pipeline import AnalysisRequest, LayerTask, ResolvedPointer
from portwarden.runtime.events import (
    CaughtError,
    EcrImageActionEvent,
    ExecutionEndedEvent,
    FailedAnalysis,
    ImagePointer,
    LayerJob,
    ResolveInput,
)
from portwarden.runtime.settings import FeedSyncSettings, PipelineSettings, StorageSettings
from portwarden.runtime.wiring import MirroredRegistryClient
from tests.support.aws import ECR_REGISTRY, MotoStack, load_event, moto_stack
from tests.support.scripted_server import ScriptedHttpServer, scripted_server
from tests.support.stores import empty_bundle_document

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

SAMPLE_DIGEST = load_event("ecr/push.json")["detail"]["image-digest"]


@pytest.fixture
def empty_registry() -> Iterator[ScriptedHttpServer]:
    """A registry that knows no image: executions started here end quickly in MarkFailed."""
    with scripted_server() as server:
        yield server


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, empty_registry: ScriptedHttpServer
) -> Iterator[MotoStack]:
    environment = {
        "PORTWARDEN_WORK_DIR": str(tmp_path / "work"),
        "PORTWARDEN_INSECURE_REGISTRIES": empty_registry.host,
    }
    with moto_stack(monkeypatch, **environment) as running:
        yield running


# ---- the sample events parse into the handlers' models ------------------------------------------


@pytest.mark.parametrize(
    ("event", "model"),
    [
        ("sfn/resolve.json", ResolveInput),
        ("sfn/analyze-layer.json", LayerJob),
        ("sfn/assemble.json", ResolvedPointer),
        ("sfn/match.json", ImagePointer),
        ("sfn/evaluate.json", ImagePointer),
        ("sfn/mark-failed.json", FailedAnalysis),
        ("ecr/push.json", EcrImageActionEvent),
        ("ecr/push-untagged.json", EcrImageActionEvent),
        ("stepfunctions/execution-timed-out.json", ExecutionEndedEvent),
    ],
)
def test_sample_events_parse_into_their_handler_models(event: str, model: Any) -> None:
    parsed = model.model_validate(load_event(event))

    assert parsed is not None


def test_the_ecr_event_becomes_a_request_by_digest_with_its_tag() -> None:
    push = EcrImageActionEvent.model_validate(load_event("ecr/push.json"))
    untagged = EcrImageActionEvent.model_validate(load_event("ecr/push-untagged.json"))

    assert push.analysis_request() == AnalysisRequest(
        source=f"registry:{ECR_REGISTRY}/team/app@{SAMPLE_DIGEST}", repo_tag=f"{ECR_REGISTRY}/team/app:1.0"
    )
    assert untagged.analysis_request().repo_tag is None
    china = load_event("ecr/push.json") | {"region": "cn-north-1"}
    assert (
        EcrImageActionEvent.model_validate(china).registry
        == "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"
    )


@pytest.mark.parametrize("event", ["ecr/delete.json", "ecr/push-failed.json", "schedule/feed-sync.json"])
def test_events_that_must_not_start_an_analysis_are_rejected(event: str) -> None:
    with pytest.raises(ValidationError):
        EcrImageActionEvent.model_validate(load_event(event))


def test_a_caught_lambda_error_reads_as_type_and_message() -> None:
    failed = FailedAnalysis.model_validate(load_event("sfn/mark-failed.json"))

    assert failed.error.reason() == f"ImageNotFoundError: manifest unknown: team/app@{SAMPLE_DIGEST}"
    assert failed.image_digest is None
    assert CaughtError.model_validate({"Error": "States.Timeout", "Cause": "took too long"}).reason() == (
        "States.Timeout: took too long"
    )
    assert CaughtError.model_validate({"Error": "States.Timeout"}).reason() == "States.Timeout"


def test_execution_names_are_unique_per_attempt_stable_per_delivery_and_valid() -> None:
    name = execution_name(SAMPLE_DIGEST, "r/app:1.0", "event-1")

    assert name == execution_name(SAMPLE_DIGEST, "r/app:1.0", "event-1")
    assert name != execution_name(SAMPLE_DIGEST, "r/app:1.0", "event-2")
    assert name != execution_name(SAMPLE_DIGEST, "r/app:2.0", "event-1")
    assert name != execution_name(SAMPLE_DIGEST, None, "event-1")
    assert len(name) <= 80 and name.startswith(SAMPLE_DIGEST.removeprefix("sha256:")[:48])


def test_the_resolve_input_is_the_request_and_the_attempt_that_claims_it() -> None:
    task = ResolveInput.model_validate(load_event("sfn/resolve.json"))

    assert task.request() == AnalysisRequest(
        source=f"registry:{ECR_REGISTRY}/team/app@{SAMPLE_DIGEST}", repo_tag=f"{ECR_REGISTRY}/team/app:1.0"
    )
    assert task.attempt is not None and task.attempt.owner.startswith("arn:aws:states:")
    with pytest.raises(ValidationError):
        ResolveInput.model_validate({"source": "registry:r/app:1", "sorce": "typo"}).request()


def test_an_execution_status_event_names_the_request_and_the_reason() -> None:
    ended = ExecutionEndedEvent.model_validate(load_event("stepfunctions/execution-timed-out.json"))

    assert ended.source_of_request == f"registry:{ECR_REGISTRY}/team/app@{SAMPLE_DIGEST}"
    assert ended.reason() == "ExecutionTimedOut: States.Timeout"
    succeeded = load_event("stepfunctions/execution-timed-out.json")
    succeeded["detail"]["status"] = "SUCCEEDED"
    with pytest.raises(ValidationError):
        ExecutionEndedEvent.model_validate(succeeded)


# ---- handlers against the moto stack ------------------------------------------------------------


def test_mark_failed_records_the_failure_of_an_image_resolve_never_saw(stack: MotoStack) -> None:
    outcome = stack.invoke("MarkFailedFunction", load_event("sfn/mark-failed.json"))

    record = stack.stores.catalog.get_image(SAMPLE_DIGEST)
    assert outcome["image_digest"] == SAMPLE_DIGEST
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYSIS_FAILED
    assert record.last_error == outcome["reason"]
    assert outcome["reason"].startswith("ImageNotFoundError: manifest unknown")


def test_match_and_evaluate_refuse_an_image_without_an_analysis(stack: MotoStack) -> None:
    for function, event in (("MatchFunction", "sfn/match.json"), ("EvaluateFunction", "sfn/evaluate.json")):
        with pytest.raises(NotFoundError):
            stack.invoke(function, load_event(event))


def test_the_start_function_refuses_a_delete_event(stack: MotoStack) -> None:
    response = stack.push(load_event("ecr/delete.json"))

    # Reported back: after its last delivery it rests in the dead-letter queue, for a human to see.
    assert response == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert stack.executions() == []


def test_the_starter_passes_the_request_as_the_execution_input(
    stack: MotoStack, empty_registry: ScriptedHttpServer
) -> None:
    reference = f"{empty_registry.host}/app:1"
    request = AnalysisRequest(source=f"registry:{reference}", repo_tag=reference)
    starter = StepFunctionsStarter(stack.state_machine_arn, stack.sfn)

    start = starter.start(request, name="custom-name")
    execution = stack.wait(start.execution_id)

    assert start.execution_id.endswith(":custom-name")
    assert json.loads(execution["input"]) == request.model_dump(mode="json")
    assert execution["status"] == "FAILED"  # the registry does not have it
    assert [call.error_type for call in stack.calls("ResolveFunction")] == ["ImageNotFoundError"]
    with pytest.raises(ValueError, match="invalid execution name"):
        starter.start(request, name="not a valid name")


# ---- the API's submission and lookups -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"source": "a.test/x:1", "tag": "a.test/x:1"}, 422),
        ({}, 422),
        ({"source": "oci-dir:/var/task"}, 400),
        ({"source": "docker-archive:/tmp/x.tar"}, 400),
        ({"tag": "not a reference"}, 400),
    ],
)
def test_post_images_rejects_bad_requests(stack: MotoStack, body: dict[str, Any], status: int) -> None:
    response = stack.api("POST", "/images", body)

    assert response["statusCode"] == status, response["json"]
    assert stack.executions() == []


def test_post_images_with_a_digest_reference_records_no_tag(
    stack: MotoStack, empty_registry: ScriptedHttpServer
) -> None:
    source = f"registry:{empty_registry.host}/app@{SAMPLE_DIGEST}"
    response = stack.api("POST", "/images", {"source": source, "force": True})

    assert response["statusCode"] == 202
    (execution,) = stack.executions()
    described = stack.sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {
        "source": source,
        "platform": "linux/amd64",
        "repo_tag": None,
        "force": True,
        # The caller's account (the test principal is admin's): every phase records under it.
        "account": "admin",
    }


def test_lookups_of_unknown_images_are_404_and_bad_digests_422(stack: MotoStack) -> None:
    assert stack.api("GET", f"/images/{SAMPLE_DIGEST}")["statusCode"] == 404
    assert stack.api("GET", f"/images/{SAMPLE_DIGEST}/check")["statusCode"] == 404
    assert stack.api("GET", f"/images/{SAMPLE_DIGEST}/vuln/all")["statusCode"] == 404
    assert stack.api("GET", "/images/latest")["statusCode"] == 422
    assert stack.api("GET", f"/images/{SAMPLE_DIGEST}/vuln/kernel")["statusCode"] == 422
    assert stack.api("GET", "/images")["json"] == []


# ---- settings and wiring ------------------------------------------------------------------------


def test_pipeline_settings_read_registry_access_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTWARDEN_INSECURE_REGISTRIES", "127.0.0.1:5000, registry.internal:80")
    monkeypatch.setenv("PORTWARDEN_REGISTRY_MIRRORS", json.dumps({ECR_REGISTRY: "127.0.0.1:5000"}))
    monkeypatch.setenv("PORTWARDEN_REGISTRY_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("PORTWARDEN_WORK_DIR", "/tmp/pw-test")

    settings = PipelineSettings()

    assert settings.insecure_registries == ("127.0.0.1:5000", "registry.internal:80")
    assert settings.registry_mirrors == {ECR_REGISTRY: "127.0.0.1:5000"}
    assert settings.registry_max_attempts == 2
    assert str(settings.work_dir) == "/tmp/pw-test"


def test_feed_sync_settings_split_the_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTWARDEN_FEED_SOURCES", "osv=file:///m/PyPI/all.zip,kev=https://k.test/kev.json")

    assert FeedSyncSettings().feed_sources == ("osv=file:///m/PyPI/all.zip", "kev=https://k.test/kev.json")


def test_stores_need_every_table_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTWARDEN_TABLE_NAME", "t-images")
    monkeypatch.setenv("PORTWARDEN_BUCKET_NAME", "t-bucket")
    for name in ("TAGS", "EVALUATIONS", "POLICIES", "EVENTS", "FEEDS"):
        monkeypatch.delenv(f"PORTWARDEN_{name}_TABLE", raising=False)

    with pytest.raises(ConfigurationError, match="PORTWARDEN_EVENTS_TABLE"):
        StorageSettings().store_settings()


class RecordingClient:
    def __init__(self) -> None:
        self.seen: list[ImageReference] = []

    def fetch_manifest(self, ref: ImageReference, accept: Any) -> FetchedManifest:
        self.seen.append(ref)
        return FetchedManifest(content=b"{}", media_type="x", digest=SAMPLE_DIGEST)

    def open_blob(self, ref: ImageReference, digest: str) -> Any:
        self.seen.append(ref)
        return None

    def list_tags(self, ref: ImageReference) -> list[str]:
        self.seen.append(ref)
        return []


def test_mirrored_client_fetches_a_registry_from_its_mirror_only() -> None:
    inner = RecordingClient()
    client = MirroredRegistryClient(inner, {ECR_REGISTRY: "127.0.0.1:5000"})
    mirrored = ImageReference.parse(f"{ECR_REGISTRY}/team/app:1.0")
    other = ImageReference.parse("ghcr.io/org/tool:2")

    client.fetch_manifest(mirrored, ())
    client.open_blob(mirrored, SAMPLE_DIGEST)
    client.list_tags(other)

    assert [(ref.registry, ref.repository) for ref in inner.seen] == [
        ("127.0.0.1:5000", "team/app"),
        ("127.0.0.1:5000", "team/app"),
        ("ghcr.io", "org/tool"),
    ]


def test_layer_jobs_reject_unknown_fields() -> None:
    job = load_event("sfn/analyze-layer.json")
    assert LayerJob.model_validate(job).layer == LayerTask.model_validate(job["layer"])
    with pytest.raises(ValidationError):
        LayerJob.model_validate(job | {"extra": 1})


# ---- the v1 surface on the Lambda host -----------------------------------------------------------------


def test_the_api_function_answers_under_v1_with_anchores_shapes(stack: MotoStack) -> None:
    # What anchore-cli calls first, and the swagger probe it makes before image lookups
    assert stack.api("GET", "/v1")["json"] == "v1"
    swagger = stack.api("GET", "/v1/swagger.json")["json"]
    assert swagger["info"]["version"].replace(".", "").isdigit()
    assert stack.api("GET", "/v1/images")["json"] == []
    assert stack.api("GET", f"/v1/images/{SAMPLE_DIGEST}")["statusCode"] == 404
    states = stack.api("GET", "/v1/system")["json"]["service_states"]
    assert all(state["service_detail"]["up"] for state in states)
    # The single-account host acts for account admin; the caller is the IAM principal API Gateway let in
    assert stack.api("GET", "/v1/account")["json"]["name"] == "admin"
    # Policies live in the AWS policy store: add, list, fetch as Anchore answers them
    bundle = empty_bundle_document("aws-bundle")
    added = stack.api("POST", "/v1/policies", bundle)
    assert added["statusCode"] == 200 and added["json"]["policyId"] == "aws-bundle"
    assert [p["policyId"] for p in stack.api("GET", "/v1/policies")["json"]] == ["aws-bundle"]
    # Registries live in the accounts table, for the caller's account
    assert stack.api("GET", "/v1/registries")["json"] == []
