"""Feed-sync workflow task Publish: point the database pointer at the working database.

Input: ``{"run_id": <execution ARN>}``. Output: a ``PublishOutcome`` (the pointer, and the sources
whose NVD walk the next run resumes). Releases the sync lease.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.feed_workflow import publish_working_database
from portwarden.runtime import wiring
from portwarden.runtime.events import FeedSyncRun
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = FeedSyncRun.model_validate(event)
    stores = wiring.stores()
    outcome = publish_working_database(
        run.run_id, state=stores.feeds, feeds=stores.feeds, snapshots=wiring.snapshot_files()
    )
    metrics.add_metric(name="DatabasesPublished", unit=MetricUnit.Count, value=int(outcome.published))
    return outcome.model_dump(mode="json")
