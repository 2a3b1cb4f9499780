"""EventBridge schedule ClaimSweeper: fail every analysis whose claim is past its deadline.

The backstop for an execution-status event that never arrived: an image ``analyzing`` under an
expired claim is marked ``analysis_failed`` (a later push or API request analyzes it again).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.claims import sweep_accounts
from portwarden.runtime import wiring
from portwarden.runtime.events import ScheduledEvent
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ScheduledEvent.model_validate(event)
    stores = wiring.stores()
    outcome = sweep_accounts(wiring.account_names(), stores.for_account)
    metrics.add_metric(name="ClaimsExpired", unit=MetricUnit.Count, value=len(outcome.failed))
    return outcome.model_dump(mode="json")
