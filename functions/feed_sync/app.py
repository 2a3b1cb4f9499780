"""EventBridge schedule FeedSync: sync the feeds into a new database snapshot and publish it.

Input: the schedule's event. Output: a ``FeedSyncOutcome``: the new pointer (S3 key, SHA-256,
build time) and each source's outcome. A source that fails keeps its previous rows.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.phases import sync_and_publish
from portwarden.runtime import wiring
from portwarden.runtime.events import ScheduledEvent
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ScheduledEvent.model_validate(event)
    outcome = sync_and_publish(
        wiring.feed_sources(),
        wiring.feed_fetcher(),
        snapshots=wiring.snapshot_files(),
        feeds=wiring.stores().feeds,
        work_dir=wiring.feed_sync_settings().work_dir / "feeds",
        options=wiring.sync_options(),
    )
    metrics.add_metric(name="FeedSourcesFailed", unit=MetricUnit.Count, value=outcome.failed_sources)
    return outcome.model_dump(mode="json")
