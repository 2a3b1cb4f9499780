"""EventBridge schedule Watch: one round of the tag and repository watchers for every account.

Registries are polled side by side (one thread per registry host, each registry's tags one after the
other), so a slow registry does not delay the others; each registry's ``tag_update`` notifications are
queued as soon as it is done. The round stops looking up tags ``PORTWARDEN_WATCH_STOP_MARGIN_SECONDS``
before the function's timeout: the tags left are looked at by the next round. New digests and tags are
added and analyzed through the analysis state machine, as ``POST /images`` does.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.watch_workflow import watch_round
from portwarden.runtime import wiring
from portwarden.runtime.events import ScheduledEvent
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ScheduledEvent.model_validate(event)
    settings = wiring.watch_settings()
    stop_at = (
        time.monotonic() + context.get_remaining_time_in_millis() / 1000 - settings.watch_stop_margin_seconds
    )
    outcome = watch_round(
        wiring.watched_accounts(),
        stores_for=wiring.watch_stores,
        registry=wiring.tag_digests(),
        adder_for=wiring.image_adder,
        queue=wiring.notification_queue(),
        should_stop=lambda: time.monotonic() >= stop_at,
        parallel_registries=settings.watch_parallel_registries,
    )
    metrics.add_metric(name="WatchedTagsChecked", unit=MetricUnit.Count, value=outcome.checked)
    metrics.add_metric(name="WatchedImagesAdded", unit=MetricUnit.Count, value=outcome.added)
    metrics.add_metric(name="WatchErrors", unit=MetricUnit.Count, value=len(outcome.errors))
    return outcome.model_dump(mode="json")
