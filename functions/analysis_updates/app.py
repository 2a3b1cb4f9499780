"""EventBridge rule and schedule AnalysisUpdates: ``analysis_update`` notifications for every subscribed
tag whose image's analysis status changed since the last report.

The rule runs it when an analysis execution ends (succeeded, failed, timed out, aborted), so a
subscriber hears of a finished analysis within seconds; the schedule catches what an event cannot show
(an analysis that started, a status set after the event: AnalysisEnded marks a timed-out analysis
failed in parallel with this report). The statuses last reported are kept in the watch table.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.watch_workflow import report_analysis_updates
from portwarden.runtime import wiring
from portwarden.runtime.observability import logger, metrics, tracer
from portwarden.runtime.watch_events import AnalysisUpdatesTrigger


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = AnalysisUpdatesTrigger.model_validate(event)
    count = report_analysis_updates(
        wiring.watched_accounts(),
        stores_for=wiring.watch_stores,
        state=wiring.namespace_index(),
        queue=wiring.notification_queue(),
    )
    metrics.add_metric(name="AnalysisUpdatesQueued", unit=MetricUnit.Count, value=count)
    return {"trigger": trigger.detail_type, "notifications": count}
