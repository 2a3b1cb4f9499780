"""A change of the active bundle asks the host for a re-evaluation (on AWS: an EventBridge event that
starts the Rematch state machine), once per change and only for a change of the active bundle; a
request that cannot be made leaves the change in place and is an ERROR event."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from portwarden.core.errors import StoreError
from tests.support.stores import empty_bundle_document
from tests.unit.api.support import ServeHarness, serve_harness


@dataclass
class Recorder:
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    failing: bool = False

    def request(self, account: str, *, reason: str, bundle_id: str) -> None:
        if self.failing:
            raise StoreError("the event bus is unreachable")
        self.requests.append((account, reason, bundle_id))


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[tuple[ServeHarness, Recorder]]:
    recorder = Recorder()
    with serve_harness(tmp_path / "home") as running:
        # The admin account's dependencies with the recorder as its PolicyReevaluation.
        running.host._dependencies["admin"] = replace(
            running.host.for_account("admin"), reevaluation=recorder
        )
        yield running, recorder


def test_only_changes_of_the_active_bundle_ask_for_a_re_evaluation(
    harness: tuple[ServeHarness, Recorder],
) -> None:
    running, recorder = harness
    admin = running.admin
    assert admin.post("/v1/policies", empty_bundle_document("first")).status == 200  # first: active
    assert admin.post("/v1/policies", empty_bundle_document("second")).status == 200  # inactive
    assert recorder.requests == [("admin", "bundle_activated", "first")]
    second = empty_bundle_document("second")
    # Content of an inactive bundle: nothing to re-evaluate.
    changed = {**second, "name": "renamed"}
    assert admin.put("/v1/policies/second", {"policybundle": changed}).status == 200
    assert len(recorder.requests) == 1
    assert admin.put("/v1/policies/second", {"policybundle": changed, "active": True}).status == 200
    assert recorder.requests[-1] == ("admin", "bundle_activated", "second")
    # The active bundle's content changes.
    assert admin.put("/v1/policies/second", {"policybundle": {**changed, "name": "again"}}).status == 200
    assert recorder.requests[-1] == ("admin", "bundle_updated", "second")
    # The same content again: no change, no request.
    assert admin.put("/v1/policies/second", {"policybundle": {**changed, "name": "again"}}).status == 200
    assert len(recorder.requests) == 3


def test_a_request_that_cannot_be_made_keeps_the_change_and_is_an_error_event(
    harness: tuple[ServeHarness, Recorder],
) -> None:
    running, recorder = harness
    recorder.failing = True
    assert running.admin.post("/v1/policies", empty_bundle_document("first")).status == 200
    assert [p["active"] for p in running.admin.get("/v1/policies").body] == [True]
    events = running.admin.get("/v1/events?event_type=system.policy.reevaluation").body["results"]
    (failed,) = events
    assert failed["event"]["level"] == "ERROR" and "unreachable" in failed["event"]["message"]
