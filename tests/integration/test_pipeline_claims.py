"""No image stays ``analyzing`` forever: analysis claims, their takeover and their release.

* the claim contract, held by both catalog adapters (SQLite and DynamoDB): an owner and a deadline,
  one winner among racing claimants, takeover only after the deadline, release only by its owner,
  ``mark_analyzed`` writing only the analysis attributes;
* under moto with the real state machine: an execution stopped mid-analysis (no Catch runs) is
  failed by the execution-status rule's function, delivered through an EventBridge rule with the
  template's pattern; an expired claim is failed by the sweeper and taken over by a new push; a
  re-push of a failed digest starts a new execution (names are unique per attempt).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.errors import NotFoundError
from portwarden.core.model.records import AnalysisClaim, AnalysisStatus, AnalyzedSummary
from portwarden.core.ports import CatalogStore
from tests.support.aws import (
    MotoStack,
    deliver_through_rule,
    ecr_push_event,
    execution_status_event,
    load_event,
    load_template,
    moto_stack,
    registry_environment,
    rule_pattern,
)
from tests.support.ocibuild import ConfigSpec, Image, build_image, build_layer, file
from tests.support.registry import RunningRegistry, push_image
from tests.support.stores import BASE_TIME, StoreSet, digest, image_record, local_stores, moto_stores

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

HOUR = timedelta(hours=1)


def claim(owner: str, hours: float = 1) -> AnalysisClaim:
    return AnalysisClaim(owner=owner, deadline=BASE_TIME + timedelta(hours=hours))


# ---- the claim contract, both adapters --------------------------------------------------------------


@pytest.fixture(params=["sqlite", "aws"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CatalogStore]:
    if request.param == "sqlite":
        with local_stores(tmp_path / "home") as local:
            yield local.catalog
    else:
        with moto_stores() as aws:
            yield aws.catalog


def stored(catalog: CatalogStore, n: int) -> Any:
    record = catalog.get_image(digest(n))
    assert record is not None
    return record


def test_a_claim_records_its_owner_and_deadline_and_an_unexpired_one_is_never_taken(
    catalog: CatalogStore,
) -> None:
    catalog.put_image(image_record(1))

    assert catalog.claim_analysis(digest(1), claim("attempt-a"), now=BASE_TIME)
    assert not catalog.claim_analysis(digest(1), claim("attempt-b", 2), now=BASE_TIME + 0.5 * HOUR)
    assert not catalog.claim_analysis(digest(1), claim("attempt-b", 2), now=BASE_TIME, force=True)
    record = stored(catalog, 1)
    assert record.analysis_status is AnalysisStatus.ANALYZING
    assert (record.claim_owner, record.claim_deadline) == ("attempt-a", BASE_TIME + HOUR)


def test_an_expired_claim_is_taken_over(catalog: CatalogStore) -> None:
    catalog.put_image(image_record(1))
    catalog.claim_analysis(digest(1), claim("attempt-a"), now=BASE_TIME)

    assert catalog.claim_analysis(digest(1), claim("attempt-b", 3), now=BASE_TIME + 2 * HOUR)
    assert stored(catalog, 1).claim_owner == "attempt-b"
    # The old owner's late failure no longer ends the analysis the new owner runs.
    assert not catalog.release_claim(digest(1), "attempt-a", "late failure")
    assert stored(catalog, 1).analysis_status is AnalysisStatus.ANALYZING


def test_of_many_racing_claimants_exactly_one_wins(catalog: CatalogStore) -> None:
    catalog.put_image(image_record(1))
    barrier = threading.Barrier(8)
    results: list[bool] = [False] * 8

    def claimant(index: int) -> None:
        barrier.wait()
        results[index] = catalog.claim_analysis(digest(1), claim(f"attempt-{index}"), now=BASE_TIME)

    threads = [threading.Thread(target=claimant, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(True) == 1
    assert stored(catalog, 1).claim_owner == f"attempt-{results.index(True)}"


def test_only_the_owner_releases_its_claim_and_the_reason_is_kept(catalog: CatalogStore) -> None:
    catalog.put_image(image_record(1))
    catalog.claim_analysis(digest(1), claim("attempt-a"), now=BASE_TIME)

    assert not catalog.release_claim(digest(1), "attempt-b", "not mine")
    assert catalog.release_claim(digest(1), "attempt-a", "ExecutionAborted")
    assert not catalog.release_claim(digest(1), "attempt-a", "twice")
    record = stored(catalog, 1)
    assert (record.analysis_status, record.last_error) == (AnalysisStatus.ANALYSIS_FAILED, "ExecutionAborted")
    assert (record.claim_owner, record.claim_deadline) == (None, None)
    # Failed is restartable without waiting for any deadline.
    assert catalog.claim_analysis(digest(1), claim("attempt-c"), now=BASE_TIME)


def test_an_analyzed_image_is_claimed_again_only_when_forced(catalog: CatalogStore) -> None:
    catalog.put_image(image_record(1))
    catalog.claim_analysis(digest(1), claim("attempt-a"), now=BASE_TIME)
    catalog.add_repo_tag(digest(1), "registry.example/app:added-meanwhile")
    catalog.mark_analyzed(
        digest(1), AnalyzedSummary(analyzed_at=BASE_TIME, package_count=3, distro="alpine:3.20")
    )

    record = stored(catalog, 1)
    assert (record.analysis_status, record.package_count, record.distro) == (
        AnalysisStatus.ANALYZED,
        3,
        "alpine:3.20",
    )
    assert "registry.example/app:added-meanwhile" in record.repo_tags
    assert record.claim_owner is None
    assert not catalog.claim_analysis(digest(1), claim("attempt-b"), now=BASE_TIME)
    assert catalog.claim_analysis(digest(1), claim("attempt-b"), now=BASE_TIME, force=True)
    with pytest.raises(NotFoundError):
        catalog.claim_analysis(digest(9), claim("attempt-x"), now=BASE_TIME)
    with pytest.raises(NotFoundError):
        catalog.mark_analyzed(digest(9), AnalyzedSummary(analyzed_at=BASE_TIME, package_count=0))


def test_a_claim_without_owner_or_deadline_counts_as_expired(catalog: CatalogStore) -> None:
    # Images recorded as analyzing before claims existed.
    catalog.put_image(image_record(1))
    catalog.set_status(digest(1), AnalysisStatus.ANALYZING)

    assert catalog.release_claim(digest(1), None, "swept")
    catalog.set_status(digest(1), AnalysisStatus.ANALYZING)
    assert catalog.claim_analysis(digest(1), claim("attempt-a"), now=BASE_TIME)


# ---- the stack: an execution that dies without MarkFailed ------------------------------------------


def small_image(marker: str = "1") -> Image:
    return build_image(
        [
            build_layer([file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\n")]),
            build_layer([file("srv/marker.txt", marker)]),
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


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def stop_during_layer_analysis(stack: MotoStack, image: Image) -> str:
    """Start an analysis of ``image`` and stop its execution while a layer is being read: the
    execution ends without any Catch running (as an abort, a timeout or States.Runtime does)."""
    gate = threading.Event()
    reading = threading.Event()
    original = stack.handlers["AnalyzeLayerFunction"]

    def blocked(event: dict[str, Any], context: Any) -> Any:
        reading.set()
        gate.wait(30)
        return original(event, context)

    stack.handlers["AnalyzeLayerFunction"] = blocked
    try:
        started = stack.start_push(ecr_push_event(image.digest))
        assert reading.wait(30)
        stack.sfn.stop_execution(executionArn=started["execution_arn"], error="Operator", cause="stopped")
        gate.set()
        ended = stack.wait(started["execution_arn"])
    finally:
        stack.handlers["AnalyzeLayerFunction"] = original
        gate.set()
    assert ended["status"] != "SUCCEEDED"
    execution_arn: str = started["execution_arn"]
    return execution_arn


def analysis_ended_pattern(stack: MotoStack) -> dict[str, Any]:
    return rule_pattern(
        load_template(),
        "AnalysisEndedFunction",
        "ExecutionEnded",
        {"AnalysisStateMachine": stack.state_machine_arn},
    )


def test_an_execution_stopped_mid_analysis_is_failed_by_the_status_rule(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    image = small_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    execution_arn = stop_during_layer_analysis(stack, image)

    # Today's failure: nothing ran MarkFailed, the image is stuck analyzing under that execution.
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZING
    assert record.claim_owner == execution_arn
    assert stack.calls("MarkFailedFunction") == []

    status_event = execution_status_event(stack, execution_arn)
    other_machine = execution_status_event(stack, execution_arn)
    other_machine["detail"]["stateMachineArn"] += "-other"
    succeeded = execution_status_event(stack, execution_arn) | {}
    succeeded["detail"] = {**succeeded["detail"], "status": "SUCCEEDED"}
    delivered = deliver_through_rule(analysis_ended_pattern(stack), [status_event, other_machine, succeeded])
    assert [event["detail"]["stateMachineArn"] for event in delivered] == [stack.state_machine_arn]

    outcome = stack.invoke("AnalysisEndedFunction", delivered[0])
    again = stack.invoke("AnalysisEndedFunction", delivered[0])  # EventBridge delivers at least once

    assert (outcome["image_digest"], outcome["recorded"], again["recorded"]) == (image.digest, True, False)
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYSIS_FAILED
    # moto ends a stopped execution as FAILED with States.Runtime (AWS: ABORTED): either way, the reason.
    assert record.last_error is not None
    assert record.last_error.startswith(f"Execution{status_event['detail']['status'].title()}: ")
    assert status_event["detail"]["error"] in record.last_error
    failures = [e for e in stack.stores.events.list_events() if e.type == "user.image.analysis.failed"]
    assert [e.resource_id for e in failures] == [image.digest]


def test_the_status_rule_finds_the_claim_of_an_execution_whose_input_names_no_digest(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    image = small_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    execution_arn = stop_during_layer_analysis(stack, image)
    event = execution_status_event(stack, execution_arn)
    event["detail"]["input"] = None  # AWS leaves out an input too large for the event
    event["detail"]["status"] = "ABORTED"

    outcome = stack.invoke("AnalysisEndedFunction", event)

    assert (outcome["image_digest"], outcome["recorded"]) == (image.digest, True)
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.last_error is not None
    assert record.last_error.startswith("ExecutionAborted")


def test_a_failure_event_of_a_skipped_or_superseded_execution_changes_nothing(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    image = small_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    first = stack.start_push(ecr_push_event(image.digest))
    assert stack.wait(first["execution_arn"])["status"] == "SUCCEEDED"
    event = execution_status_event(stack, first["execution_arn"])
    event["detail"]["status"] = "FAILED"

    outcome = stack.invoke("AnalysisEndedFunction", event)

    assert outcome["recorded"] is False
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED


# ---- expired claims: the sweeper and a takeover ------------------------------------------------------


def test_the_sweeper_fails_expired_claims_only(stack: MotoStack) -> None:
    catalog = stack.stores.catalog
    for n in (1, 2, 3):
        catalog.put_image(image_record(n))
    past, future = BASE_TIME - timedelta(days=1), BASE_TIME + timedelta(days=3650)
    catalog.claim_analysis(digest(1), AnalysisClaim(owner="dead-execution", deadline=past), now=past - HOUR)
    catalog.claim_analysis(digest(2), AnalysisClaim(owner="live-execution", deadline=future), now=BASE_TIME)
    catalog.set_status(digest(3), AnalysisStatus.ANALYZING)  # analyzing from before claims had owners

    swept = stack.invoke("ClaimSweeperFunction", load_event("schedule/claim-sweep.json"))

    assert sorted(swept["failed"]) == [digest(1), digest(3)] and swept["examined"] == 3
    statuses = {n: stored(catalog, n).analysis_status for n in (1, 2, 3)}
    assert statuses == {
        1: AnalysisStatus.ANALYSIS_FAILED,
        2: AnalysisStatus.ANALYZING,
        3: AnalysisStatus.ANALYSIS_FAILED,
    }
    reason = stored(catalog, 1).last_error
    assert reason is not None and "dead-execution" in reason
    assert stack.invoke("ClaimSweeperFunction", load_event("schedule/claim-sweep.json"))["failed"] == []


def test_the_sweeper_fails_expired_claims_of_every_account(stack: MotoStack) -> None:
    import os

    from portwarden.adapters.aws.account_stores import DynamoAccountStore
    from portwarden.adapters.aws.dynamo_models import TableBinding
    from portwarden.core.model.accounts import AccountType
    from portwarden.core.services.accounts import new_account
    from tests.support.aws import REGION

    accounts = DynamoAccountStore(TableBinding(os.environ["PORTWARDEN_ACCOUNTS_TABLE"], REGION))
    accounts.add_account(new_account("team", type=AccountType.USER))
    team = stack.stores.for_account("team")
    past = BASE_TIME - timedelta(days=1)
    for stores in (stack.stores, team):
        stores.catalog.put_image(image_record(1))
        stores.catalog.claim_analysis(digest(1), AnalysisClaim(owner="dead", deadline=past), now=past - HOUR)

    swept = stack.invoke("ClaimSweeperFunction", load_event("schedule/claim-sweep.json"))

    assert swept["failed"] == [digest(1), digest(1)] and swept["examined"] == 2
    for stores in (stack.stores, team):
        assert stored(stores.catalog, 1).analysis_status is AnalysisStatus.ANALYSIS_FAILED
        assert [e.type for e in stores.events.list_events()] == ["user.image.analysis.failed"]


def test_a_push_takes_over_an_expired_claim_and_waits_for_a_live_one(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    image = small_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    execution_arn = stop_during_layer_analysis(stack, image)
    catalog = stack.stores.catalog

    # The dead execution's claim is still live: a new push must not start a second analysis.
    live = stack.start_push(ecr_push_event(image.digest) | {"id": "second-push"})
    assert json_output(stack, live["execution_arn"])["resolved"]["skip"] is True
    # Once past its deadline, the next push takes it over and analyzes.
    record = catalog.get_image(image.digest)
    assert record is not None and record.claim_owner == execution_arn
    catalog.release_claim(image.digest, execution_arn, "test: end the claim")
    catalog.claim_analysis(
        image.digest, AnalysisClaim(owner=execution_arn, deadline=BASE_TIME), now=BASE_TIME - HOUR
    )
    takeover = stack.start_push(ecr_push_event(image.digest) | {"id": "third-push"})
    output = json_output(stack, takeover["execution_arn"])

    assert output["resolved"]["skip"] is False
    record = catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED
    assert record.claim_owner is None
    assert len(stack.calls("AssembleFunction")) == 1


def test_a_re_push_of_a_failed_digest_starts_a_new_execution(
    stack: MotoStack, anonymous_registry: RunningRegistry
) -> None:
    image = small_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    execution_arn = stop_during_layer_analysis(stack, image)
    stack.invoke("AnalysisEndedFunction", execution_status_event(stack, execution_arn))

    repush = ecr_push_event(image.digest) | {"id": "a-later-push-of-the-same-tag"}
    started = stack.start_push(repush)

    assert started["started"] is True and started["execution_arn"] != execution_arn
    assert stack.wait(started["execution_arn"])["status"] == "SUCCEEDED"
    record = stack.stores.catalog.get_image(image.digest)
    assert record is not None and record.analysis_status is AnalysisStatus.ANALYZED


def json_output(stack: MotoStack, execution_arn: str) -> dict[str, Any]:
    import json

    execution = stack.wait(execution_arn)
    assert execution["status"] == "SUCCEEDED", execution
    output: dict[str, Any] = json.loads(execution["output"])
    return output


__all__ = ["StoreSet"]


def test_an_analysis_is_recorded_only_under_its_own_claim(catalog: CatalogStore) -> None:
    summary = AnalyzedSummary(analyzed_at=BASE_TIME, package_count=2)
    catalog.put_image(image_record(1))
    catalog.claim_analysis(digest(1), claim("attempt-a"), now=BASE_TIME)
    # Another attempt's result (a claim taken over, an execution stopped by a forced delete): refused.
    assert not catalog.mark_analyzed(digest(1), summary, owner="attempt-b")
    record = stored(catalog, 1)
    assert (record.analysis_status, record.claim_owner) == (AnalysisStatus.ANALYZING, "attempt-a")
    assert catalog.mark_analyzed(digest(1), summary, owner="attempt-a")
    assert stored(catalog, 1).analysis_status is AnalysisStatus.ANALYZED
    # Recorded once: the claim is gone with it.
    assert not catalog.mark_analyzed(digest(1), summary, owner="attempt-a")
    with pytest.raises(NotFoundError):  # deleted: nothing is written back
        catalog.mark_analyzed(digest(9), summary, owner="attempt-a")
    assert catalog.get_image(digest(9)) is None
