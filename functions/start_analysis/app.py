"""EventBridge rule target for ECR pushes: start one analysis per pushed image digest and tag.

A function rather than a direct EventBridge → Step Functions target, because the execution input
needs the registry host built from the event's account and region and an optional tag handled.
The execution name is unique per push (the event's id): an event delivered twice starts one
execution, a new push of the same digest a new one; the analysis claim in Resolve keeps the
analysis itself single.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.adapters.aws.sfn import execution_name
from portwarden.runtime import wiring
from portwarden.runtime.events import EcrImageActionEvent
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    push = EcrImageActionEvent.model_validate(event)
    request = push.analysis_request()
    start = wiring.starter().start(
        request, name=execution_name(push.detail.image_digest, request.repo_tag, push.id)
    )
    metrics.add_metric(
        name="AnalysesStarted" if start.started else "DuplicatePushes", unit=MetricUnit.Count, value=1
    )
    return start.model_dump(mode="json")
