"""Feed-sync workflow task SyncSource: one step of one source on that source's own database.

Input: a ``FeedSourceTask`` (the run and the source). Output: a ``SourceTaskOutcome``; ``done`` is
False when an NVD walk checkpointed before its end (the workflow runs the step again, and a run
that ends first leaves the checkpoint to the next run). Sources run in parallel: each step works
in a directory of its source's own.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.feed_workflow import sync_one_source
from portwarden.core.vulns.db import SourceStatus
from portwarden.runtime import feedsync, wiring
from portwarden.runtime.events import FeedSourceTask
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = FeedSourceTask.model_validate(event)
    stop_at = feedsync.step_deadline(context)
    stores = wiring.stores()
    directory = feedsync.source_directory(task.source)
    outcome = sync_one_source(
        task.run_id,
        task.source,
        wiring.feed_fetcher(directory),
        state=stores.feeds,
        feeds=stores.feeds,
        snapshots=wiring.snapshot_files(),
        work_dir=wiring.feed_sync_settings().work_dir / "feeds" / directory,
        options=feedsync.sync_options(),
        should_stop=lambda: time.monotonic() >= stop_at,
    )
    if outcome.status is SourceStatus.FAILED:
        metrics.add_metric(name="FeedSourcesFailed", unit=MetricUnit.Count, value=1)
    return outcome.model_dump(mode="json")
