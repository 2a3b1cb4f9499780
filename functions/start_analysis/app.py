"""SQS consumer for ECR pushes: one analysis execution per pushed image digest and tag.

EventBridge puts each successful push on a queue (a burst is buffered, not throttled); this
function reads it in batches. A function rather than a direct EventBridge → Step Functions
target, because the execution input needs the registry host built from the event's account and
region and an optional tag handled. Execution names are unique per push (the event's id), so a
message delivered twice starts one execution; the analysis claim in Resolve keeps the analysis
itself single. Failed starts go back to the queue (partial batch response).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.runtime import wiring
from portwarden.runtime.ecr_push import SqsEvent, start_pushed_analyses
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = SqsEvent.model_validate(event)
    prefixes = wiring.ecr_trigger_settings().ecr_repository_prefixes
    outcome = start_pushed_analyses(batch, wiring.starter(), prefixes)
    metrics.add_metric(name="AnalysesStarted", unit=MetricUnit.Count, value=outcome.started)
    metrics.add_metric(name="DuplicatePushes", unit=MetricUnit.Count, value=outcome.duplicates)
    metrics.add_metric(name="PushesOutOfScope", unit=MetricUnit.Count, value=outcome.skipped)
    return outcome.batch_response()
