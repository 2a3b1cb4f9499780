"""The events the Lambda handlers receive, as pydantic models.

Step Functions task inputs are shaped by ``statemachine/analysis.asl.json``; EventBridge events by
AWS. Parsing them here keeps each handler to "parse, call one service function, dump".
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from portwarden.core.model.accounts import ADMIN_ACCOUNT, valid_name
from portwarden.core.model.base import ValueObject
from portwarden.core.model.feedsync import SourceRef
from portwarden.core.model.pipeline import AnalysisRequest, LayerTask

# The ECR push event names its registry only through the account and region of the envelope.
_ECR_HOST = "{account}.dkr.ecr.{region}.{suffix}"


class _Event(BaseModel):
    """Events carry more than we read; unknown fields are ignored, not rejected."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)


# ---- EventBridge: ECR "ECR Image Action" -----------------------------------------------------------


class EcrImageActionDetail(_Event):
    """A successful push: the only action that starts an analysis (the rule filters the others)."""

    action_type: Literal["PUSH"] = Field(alias="action-type")
    result: Literal["SUCCESS"]
    repository_name: str = Field(alias="repository-name", min_length=2)
    image_digest: str = Field(alias="image-digest", pattern=r"^sha256:[a-f0-9]{64}$")
    image_tag: str | None = Field(default=None, alias="image-tag")


class EcrImageActionEvent(_Event):
    """An EventBridge ``ECR Image Action`` event (Powertools ships no model for it)."""

    id: str = Field(min_length=1)
    source: Literal["aws.ecr"]
    detail_type: Literal["ECR Image Action"] = Field(alias="detail-type")
    account: str = Field(pattern=r"^[0-9]{12}$")
    region: str = Field(pattern=r"^[a-z0-9-]+$")
    detail: EcrImageActionDetail

    @property
    def registry(self) -> str:
        suffix = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        return _ECR_HOST.format(account=self.account, region=self.region, suffix=suffix)

    def analysis_request(self) -> AnalysisRequest:
        """Analyze the pushed manifest by digest, and record the tag it was pushed under (if any)."""
        repository = f"{self.registry}/{self.detail.repository_name}"
        tag = self.detail.image_tag
        return AnalysisRequest(
            source=f"registry:{repository}@{self.detail.image_digest}",
            repo_tag=f"{repository}:{tag}" if tag else None,
        )


class ScheduledEvent(_Event):
    """An EventBridge schedule's event; only its time is of interest (for the logs)."""

    detail_type: str = Field(default="Scheduled Event", alias="detail-type")
    time: str | None = None


# ---- Step Functions task inputs -------------------------------------------------------------------


class FeedSyncRun(_Event):
    """The Prepare and Publish input: the run (the feed-sync execution's ARN) and, for Publish, the
    sources Prepare listed (None: an execution started before Publish was given them)."""

    run_id: str = Field(min_length=1)
    sources: tuple[SourceRef, ...] | None = None


class FeedSourceTask(_Event):
    """One SyncSource step: the run and the source (a step's own output, when it runs again)."""

    run_id: str = Field(min_length=1)
    source: SourceRef


class LayerJob(ValueObject):
    """One item of the AnalyzeLayers Map: the image source, one layer to read, and the account whose
    registry credentials pull it."""

    source: str
    layer: LayerTask
    account: str = ADMIN_ACCOUNT

    _account = field_validator("account")(valid_name)


class ImagePointer(ValueObject):
    """The Match and Evaluate input: which image of which account, and the tag an evaluation is made
    for."""

    image_digest: str = Field(pattern=r"^sha256:[a-f0-9]{64}$")
    repo_tag: str | None = None
    account: str = ADMIN_ACCOUNT

    _account = field_validator("account")(valid_name)


class _ResolvedDigest(_Event):
    image_digest: str


class CaughtError(_Event):
    """What a Catch with ``ResultPath: $.error`` leaves: ``Error`` (the type) and ``Cause``."""

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")

    def reason(self) -> str:
        """``<ErrorType>: <message>``: a Lambda error's Cause is JSON holding ``errorMessage``."""
        message = self.cause or ""
        try:
            cause: Any = json.loads(message)
        except ValueError:
            cause = None
        if isinstance(cause, dict) and isinstance(cause.get("errorMessage"), str):
            message = cause["errorMessage"]
        return f"{self.error}: {message}" if message else self.error


class Attempt(_Event):
    """What the state machine's first state adds to the execution input: the execution's own ARN,
    which owns the analysis claim (``$$.Execution.Id``)."""

    owner: str = Field(min_length=1)


class ResolveInput(_Event):
    """The Resolve input: the execution input (an ``AnalysisRequest``) plus ``attempt``."""

    attempt: Attempt | None = None

    def request(self) -> AnalysisRequest:
        return AnalysisRequest.model_validate(self.model_extra or {})

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)


class FailedAnalysis(_Event):
    """The MarkFailed input: the execution's state when a phase failed.

    ``resolved`` is there once Resolve succeeded; before that only the request's source is known.
    """

    source: str
    repo_tag: str | None = None
    account: str = ADMIN_ACCOUNT
    attempt: Attempt | None = None
    resolved: _ResolvedDigest | None = None
    error: CaughtError

    _account = field_validator("account")(valid_name)

    @property
    def image_digest(self) -> str | None:
        return self.resolved.image_digest if self.resolved else None

    @property
    def owner(self) -> str | None:
        return self.attempt.owner if self.attempt else None


# ---- EventBridge: Step Functions "Step Functions Execution Status Change" --------------------------


class ExecutionStatusDetail(_Event):
    execution_arn: str = Field(alias="executionArn", min_length=1)
    state_machine_arn: str = Field(alias="stateMachineArn")
    status: Literal["FAILED", "TIMED_OUT", "ABORTED"]
    # The execution input as JSON text; AWS leaves it out (null) when it is too large for the event.
    input: str | None = None
    error: str | None = None
    cause: str | None = None


class ExecutionEndedEvent(_Event):
    """An analysis execution that ended without success (the rule filters the other statuses)."""

    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: ExecutionStatusDetail

    @property
    def source_of_request(self) -> str | None:
        """The analysed source from the execution input, when the event carries the input."""
        try:
            document: Any = json.loads(self.detail.input or "null")
        except ValueError:
            return None
        source = document.get("source") if isinstance(document, dict) else None
        return source if isinstance(source, str) else None

    @property
    def account_of_request(self) -> str:
        """The account of the execution input (``admin`` when the event does not carry it)."""
        try:
            document: Any = json.loads(self.detail.input or "null")
        except ValueError:
            return ADMIN_ACCOUNT
        account = document.get("account") if isinstance(document, dict) else None
        try:
            return valid_name(account) if isinstance(account, str) else ADMIN_ACCOUNT
        except ValueError:
            return ADMIN_ACCOUNT

    def reason(self) -> str:
        details = ": ".join(part for part in (self.detail.error, self.detail.cause) if part)
        return f"Execution{self.detail.status.title().replace('_', '')}" + (f": {details}" if details else "")
