"""``DELETE /v1/images/{digest}?force=true`` on AWS of an image still being analyzed: the analysis
execution is stopped, and the phase that was already running when it stopped (Assemble here: a
Lambda invocation runs to its end) writes nothing back: the image stays deleted, with no analysis.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portwarden.adapters.aws.sfn import StepFunctionsStarter
from portwarden.core.model.records import AnalysisStatus
from tests.integration.test_api_gateway_routes import assert_anchore_error
from tests.integration.test_pipeline_claims import small_image
from tests.support.aws import MotoStack, ecr_push_event, moto_stack, registry_environment
from tests.support.registry import RunningRegistry, push_image

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, anonymous_registry: RunningRegistry, tmp_path: Path
) -> Iterator[MotoStack]:
    environment = registry_environment(anonymous_registry.host, PORTWARDEN_WORK_DIR=str(tmp_path / "work"))
    with moto_stack(monkeypatch, **environment) as running:
        yield running


def test_a_forced_delete_stops_the_execution_and_the_running_phase_writes_nothing_back(
    stack: MotoStack, anonymous_registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = small_image("force-delete")
    push_image(image, anonymous_registry, "team/app", "1.0")
    entered = threading.Event()
    gate = threading.Event()
    original = stack.handlers["AssembleFunction"]
    outcomes: list[str] = []

    def held(event: dict[str, Any], context: Any) -> Any:
        entered.set()
        gate.wait(30)
        try:
            result = original(event, context)
        except Exception as exc:
            outcomes.append(type(exc).__name__)
            raise
        outcomes.append("returned")
        return result

    stack.handlers["AssembleFunction"] = held
    try:
        started = stack.start_push(ecr_push_event(image.digest))
        execution_arn = started["execution_arn"]
        assert entered.wait(60)
        record = stack.stores.catalog.get_image(image.digest)
        assert record is not None and record.analysis_status is AnalysisStatus.ANALYZING
        assert record.claim_owner == execution_arn

        assert stack.api("DELETE", f"/v1/images/{image.digest}")["statusCode"] == 409  # not without force
        stops: list[str] = []
        stop = StepFunctionsStarter.stop

        def recording_stop(starter: StepFunctionsStarter, execution_id: str, reason: str) -> bool:
            stopped = stop(starter, execution_id, reason)
            stops.append(f"{execution_id} {stopped}")
            return stopped

        monkeypatch.setattr(StepFunctionsStarter, "stop", recording_stop)
        forced = stack.api("DELETE", f"/v1/images/{image.digest}", query={"force": "true"})
        assert forced["statusCode"] == 200, forced
        assert stops == [f"{execution_arn} True"]
        gate.set()
        ended = stack.wait(execution_arn)
    finally:
        gate.set()
        stack.handlers["AssembleFunction"] = original
    # Stopped: the execution ended with the task that was running and went no further (its Catch,
    # MarkFailed, did not run either). AWS reports such an execution ABORTED; moto ends it as
    # FAILED with the running task's error once that task returns.
    assert ended["status"] in ("ABORTED", "FAILED")
    assert stack.history(execution_arn)[-1]["type"] in ("ExecutionAborted", "ExecutionFailed")
    assert stack.calls("MarkFailedFunction") == []
    # The Assemble invocation in flight ran to its end and refused to record the deleted image.
    assert outcomes == ["ClaimLostError"]
    assert stack.stores.catalog.get_image(image.digest) is None
    assert stack.stores.catalog.get_tag(f"{anonymous_registry.host}/team/app:1.0") is None
    assert stack.stores.analyses.get_analysis(image.digest) is None
    assert_anchore_error(stack.api("GET", f"/v1/images/{image.digest}"), 404)
    # No later phase ran for it.
    assert stack.calls("MatchFunction") == [] and stack.calls("EvaluateFunction") == []


def test_stop_refuses_what_is_not_an_execution_of_its_state_machine(stack: MotoStack) -> None:
    starter = StepFunctionsStarter(stack.state_machine_arn, stack.sfn)
    prefix, _, machine = stack.state_machine_arn.rpartition(":stateMachine:")
    # A claim owner of another kind (a local run, another state machine's execution): left alone.
    assert not starter.stop("serve/admin/sha256:00/20260101T000000000000Z/1", "deleted")
    assert not starter.stop(f"{prefix}:execution:{machine}-other:attempt-1", "deleted")
    # One of its own that does not exist (any more): nothing to stop.
    assert not starter.stop(f"{prefix}:execution:{machine}:attempt-gone", "deleted")
