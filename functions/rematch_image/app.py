"""Rematch state machine item task RematchImage: one analyzed image against the published database.

Input: a ``RematchItem`` (``{"account", "image_digest"}``, one Distributed Map item; ``"mode":
"reevaluate"`` in a re-evaluation run: the image is re-evaluated from its stored analysis and matches
with the active bundle, nothing re-matched, ``policy_eval`` queued as below). The stored
analysis is matched again (never the layers), the new matches diffed with the stored ones; changed
matches are re-evaluated with the active bundle, the account's VEX statements applied. ``vuln_update``
and ``policy_eval`` notifications for the tags subscribed to them go to the notification queue before
the new results are stored, so a retried item notifies again (same ids: delivered once). The database
snapshot is downloaded to /tmp once per container and build, and reused by the items that follow.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.watch_workflow import RematchItem, RematchMode, reevaluate_item, rematch_item
from portwarden.runtime import wiring
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    item = RematchItem.model_validate(event)
    if item.mode is RematchMode.REEVALUATE:
        # The stored matches are evaluated again: the snapshot is not needed, its pointer's date is.
        pointer = wiring.stores().feeds.get_db_pointer()
        outcome = reevaluate_item(
            item,
            stores=wiring.account_stores(item.account),
            db_built_at=pointer.built_at if pointer is not None else None,
            vex=wiring.vex_inputs(item.account),
            queue=wiring.notification_queue(),
        )
    else:
        outcome = rematch_item(
            item,
            stores=wiring.account_stores(item.account),
            index=wiring.namespace_index(),
            database=wiring.vulnerability_db().current(),
            vex=wiring.vex_inputs(item.account),
            queue=wiring.notification_queue(),
        )
    if outcome.errors:
        logger.error("rematch of %s: %s", item.image_digest, "; ".join(outcome.errors))
    metrics.add_metric(name="ImagesRematched", unit=MetricUnit.Count, value=int(outcome.rematched))
    metrics.add_metric(name="ImagesReevaluated", unit=MetricUnit.Count, value=int(outcome.reevaluated))
    metrics.add_metric(name="RematchErrors", unit=MetricUnit.Count, value=len(outcome.errors))
    return outcome.model_dump(mode="json")
