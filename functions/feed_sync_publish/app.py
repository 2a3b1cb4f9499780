"""Feed-sync workflow task Publish: merge the sources' databases, point the pointer at the result.

Input: ``{"run_id": <execution ARN>, "sources": [<source>, ...]}`` (the sources Prepare listed; the
configured ones when absent). Output: a ``PublishOutcome`` (the pointer, whether it moved, the
sources whose NVD walk the next run resumes, the sources merged and carried over). Releases the
sync lease.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.model.feedsync import SourceRef
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
    sources = run.sources
    if sources is None:
        sources = tuple(SourceRef(kind=source.kind.value, url=source.url) for source in wiring.feed_sources())
    outcome = publish_working_database(
        run.run_id,
        sources,
        state=stores.feeds,
        feeds=stores.feeds,
        snapshots=wiring.snapshot_files(),
        work_dir=wiring.feed_sync_settings().work_dir / "publish",
    )
    metrics.add_metric(name="DatabasesPublished", unit=MetricUnit.Count, value=int(outcome.published))
    return outcome.model_dump(mode="json")
