"""The events the watch-mode functions receive (Watch, AnalysisUpdates, the Rematch state machine's
tasks), as pydantic models; apart from ``events`` so that the analysis functions do not import the
watch services at cold start."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from portwarden.core.model.records import DbPointer
from portwarden.core.services.watch_workflow import RematchRunPlan
from portwarden.runtime.events import _Event


class AnalysisUpdatesTrigger(_Event):
    """What runs the analysis-update report: its schedule, or an analysis execution that ended (any
    status: the images' statuses are read from the catalog, not from the event)."""

    source: Literal["aws.events", "aws.states", "aws.scheduler"]
    detail_type: Literal["Scheduled Event", "Step Functions Execution Status Change"] = Field(
        alias="detail-type"
    )


class DatabasePublishedDetail(_Event):
    """The detail of the feed-sync workflow's "Vulnerability Database Published" event."""

    run_id: str = Field(min_length=1)
    database: DbPointer


class DatabasePublishedEvent(_Event):
    """The event the feed-sync workflow puts on the default bus once a new database is published; its
    rule starts the Rematch state machine with the whole event as the execution's input."""

    source: Literal["portwarden.feeds"]
    detail_type: Literal["Vulnerability Database Published"] = Field(alias="detail-type")
    detail: DatabasePublishedDetail


# The event the Api function puts on the default bus when an account's active bundle changed.
REEVALUATION_SOURCE = "portwarden.policy"
REEVALUATION_REQUESTED = "Policy Re-evaluation Requested"


class ReevaluationRequestedDetail(_Event):
    account: str = Field(min_length=1)
    reason: Literal["bundle_activated", "bundle_updated"]
    bundle_id: str | None = None


class ReevaluationRequestedEvent(_Event):
    """An account's active bundle changed (the Api function): its tagged images are re-evaluated."""

    source: Literal["portwarden.policy"]
    detail_type: Literal["Policy Re-evaluation Requested"] = Field(alias="detail-type")
    detail: ReevaluationRequestedDetail


class ReevaluationScheduledEvent(_Event):
    """The policy re-evaluation schedule (time-based triggers): every account is re-evaluated."""

    source: Literal["aws.events", "aws.scheduler"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")


RematchTrigger = DatabasePublishedEvent | ReevaluationRequestedEvent | ReevaluationScheduledEvent


class RematchPlanInput(_Event):
    """The Rematch state machine's Plan input: the execution's name (names the item list) and the event
    that started it: a published database (a rematch), an active bundle change or the re-evaluation
    schedule (a re-evaluation); None when an operator started a rematch by hand with ``{}``."""

    run_name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")
    trigger: RematchTrigger | None = None

    @classmethod
    def from_execution_input(cls, event: dict[str, Any]) -> RematchPlanInput:
        trigger = event.get("trigger")
        if isinstance(trigger, dict) and "source" not in trigger:
            trigger = None
        return cls.model_validate({**event, "trigger": trigger})

    @property
    def reevaluation_accounts(self) -> list[str] | None:
        """The accounts a re-evaluation run is for (None: the run is a rematch; ``[]``: every account,
        as the caller lists them)."""
        if isinstance(self.trigger, ReevaluationRequestedEvent):
            return [self.trigger.detail.account]
        if isinstance(self.trigger, ReevaluationScheduledEvent):
            return []
        return None


class RematchFinishInput(_Event):
    """The Finish input: the plan Plan made (the database the run re-matched against)."""

    plan: RematchRunPlan

    @field_validator("plan", mode="before")
    @classmethod
    def _without_bucket(cls, value: Any) -> Any:
        # Plan's output names the bucket for the ItemReader beside the plan itself.
        if isinstance(value, dict):
            return {key: item for key, item in value.items() if key != "bucket"}
        return value
