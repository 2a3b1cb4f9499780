"""Step Functions Catch target MarkFailed: analysis_status analysis_failed, the reason, an event.

Input: the execution's state when a phase failed (``FailedAnalysis``: the request, ``resolved``
once Resolve succeeded, and the caught ``error``). Output: a ``FailureOutcome``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.claims import record_failure
from portwarden.runtime import wiring
from portwarden.runtime.events import FailedAnalysis
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failed = FailedAnalysis.model_validate(event)
    stores = wiring.stores().for_account(failed.account)
    outcome = record_failure(
        failed.source,
        failed.image_digest,
        failed.error.reason(),
        catalog=stores.catalog,
        events=stores.events,
        repo_tag=failed.repo_tag,
        owner=failed.owner,
    )
    metrics.add_metric(name="AnalysesFailed", unit=MetricUnit.Count, value=1)
    return outcome.model_dump(mode="json")
