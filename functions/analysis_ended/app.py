"""EventBridge rule target: an analysis execution FAILED, TIMED_OUT or was ABORTED.

What no Catch in the state machine can see (a timeout, an abort, ``States.Runtime`` or
``States.DataLimitExceeded``, a MarkFailed that failed itself) would otherwise leave the image
``analyzing``. The image whose claim this execution still holds is marked ``analysis_failed`` with
the execution's error; an execution that holds no claim (it skipped, or MarkFailed already ran)
changes nothing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.claims import abandoned_analysis
from portwarden.runtime import wiring
from portwarden.runtime.events import ExecutionEndedEvent
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ended = ExecutionEndedEvent.model_validate(event)
    stores = wiring.stores().for_account(ended.account_of_request)
    outcome = abandoned_analysis(
        ended.detail.execution_arn,
        ended.source_of_request,
        ended.reason(),
        catalog=stores.catalog,
        events=stores.events,
    )
    if outcome.recorded:
        metrics.add_metric(name="AnalysesAbandoned", unit=MetricUnit.Count, value=1)
    return outcome.model_dump(mode="json")
