"""The Rematch state machine's re-evaluation mode: which event starts which run, which images a
re-evaluation run lists, and that such a run records no database as re-matched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.model.records import AnalysisStatus
from portwarden.core.services.rematch import AccountStores
from portwarden.core.services.watch_workflow import (
    RematchItem,
    RematchMode,
    RematchRunPlan,
    finish_rematch_run,
    plan_reevaluation_run,
)
from portwarden.runtime.watch_events import RematchPlanInput
from tests.support.aws import load_event
from tests.support.stores import image_record, local_stores

PUBLISHED = {
    "source": "portwarden.feeds",
    "detail-type": "Vulnerability Database Published",
    "detail": {
        "run_id": "sync-1",
        "database": {
            "location": "vulndb/a.db",
            "sha256": "a" * 64,
            "built_at": "2026-03-01T00:00:00Z",
            "schema_version": 1,
            "record_count": 10,
        },
    },
}
REQUESTED = load_event("policy/reevaluation-requested.json")


class Lists:
    def __init__(self) -> None:
        self.written: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.written.get(key)

    def put(self, key: str, data: bytes) -> None:
        self.written[key] = data

    def exists(self, key: str) -> bool:
        return key in self.written


class Index:
    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def put_state(self, key: str, value: Any) -> None:
        self.state[key] = value


def test_the_trigger_decides_between_a_rematch_and_a_re_evaluation() -> None:
    def accounts(trigger: Any) -> list[str] | None:
        return RematchPlanInput.from_execution_input(
            {"run_name": "run", "trigger": trigger}
        ).reevaluation_accounts

    assert accounts(REQUESTED) == ["team"]
    assert accounts(load_event("schedule/policy-reevaluation.json")) == []  # every account
    assert accounts(PUBLISHED) is None
    assert accounts({}) is None  # started by hand: a rematch
    with pytest.raises(ValueError, match="reason"):
        accounts({**REQUESTED, "detail": {"account": "team", "reason": "whim"}})


def test_a_re_evaluation_run_lists_the_analyzed_tagged_images_of_its_accounts(tmp_path: Path) -> None:
    with local_stores(tmp_path) as store:
        for account, images in {
            "admin": [
                image_record(1, status=AnalysisStatus.ANALYZED, tags=("r.example/a:1",)),
                image_record(2, status=AnalysisStatus.ANALYZED),  # no tag: nothing to evaluate for
                image_record(3, status=AnalysisStatus.ANALYZING, tags=("r.example/a:2",)),
            ],
            "team": [image_record(4, status=AnalysisStatus.ANALYZED, tags=("r.example/t:1",))],
        }.items():
            for image in images:
                store.for_account(account).catalog.put_image(image)

        def stores_for(account: str) -> AccountStores:
            s = store.for_account(account)
            return AccountStores(account, s.catalog, s.analyses, s.evaluations, s.policies, s.subscriptions)

        lists = Lists()
        plan = plan_reevaluation_run("run-1", ["admin", "team"], stores_for=stores_for, lists=lists)
        assert plan.mode is RematchMode.REEVALUATE and plan.count == 2 and plan.considered == 3
        assert plan.items_key == "rematch/run-1/images.json"
        items = [RematchItem.model_validate(item) for item in json.loads(lists.written[plan.items_key])]
        assert {(item.account, item.image_digest) for item in items} == {
            ("admin", image_record(1).image_digest),
            ("team", image_record(4).image_digest),
        }
        assert {item.mode for item in items} == {RematchMode.REEVALUATE}
        only_team = plan_reevaluation_run("run-2", ["team"], stores_for=stores_for, lists=lists)
        assert only_team.count == 1
        nothing = plan_reevaluation_run("run-3", [], stores_for=stores_for, lists=lists)
        assert nothing.count == 0 and nothing.items_key is None


def test_only_a_rematch_run_records_its_database() -> None:
    index = Index()
    reevaluation = RematchRunPlan(items_key=None, count=0, considered=0, mode=RematchMode.REEVALUATE)
    finish_rematch_run(reevaluation, index=index)  # type: ignore[arg-type]
    assert index.state == {}
    rematch = RematchRunPlan(items_key=None, count=0, considered=0, db_sha256="b" * 64, fingerprints={})
    finish_rematch_run(rematch, index=index)  # type: ignore[arg-type]
    assert index.state["rematch/database"]["sha256"] == "b" * 64
