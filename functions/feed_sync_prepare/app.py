"""Feed-sync workflow task Prepare: take the sync lease and list the sources to sync.

Input: ``{"run_id": <execution ARN>}``. Output: a ``FeedSyncPlan`` (``acquired`` False when another
run holds the lease: that run is left to finish alone).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.feed_workflow import prepare_feed_sync
from portwarden.runtime import wiring
from portwarden.runtime.events import FeedSyncRun
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = FeedSyncRun.model_validate(event)
    feeds = wiring.stores().feeds
    plan = prepare_feed_sync(
        run.run_id,
        wiring.feed_sources(),
        state=feeds,
        settings=feeds.get_feed_settings(),
        lease=timedelta(seconds=wiring.feed_sync_settings().feed_sync_lease_seconds),
    )
    return plan.model_dump(mode="json")
