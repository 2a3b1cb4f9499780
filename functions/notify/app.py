"""SQS consumer Notify: each message is one notification (its JSON); publish it to the topic and the
webhooks through the DynamoDB outbox (at most once per target), and hand back to the queue the
messages whose deliveries are still due (a receiver that is down): SQS redelivers them after the
visibility timeout, until the retry window ends (then the failure is an ERROR event) or the queue's
redrive policy moves them to the dead-letter queue, whose alarm a person sees. A message that is not
a notification is never acknowledged: it ends in the dead-letter queue too.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from portwarden.core.services.notify import notify_batch
from portwarden.core.watch.notifications import Notification
from portwarden.runtime import wiring
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    failures: list[str] = []
    notifications: dict[str, Notification] = {}
    for record in event.get("Records", []):
        try:
            notifications[record["messageId"]] = Notification.model_validate_json(record["body"])
        except (ValidationError, KeyError) as exc:
            logger.error("not a notification, left for the dead-letter queue: %s", exc)
            failures.append(str(record.get("messageId", "")))
    pending = set(
        notify_batch(
            list(notifications.values()),
            channels=wiring.notification_channels(),
            outbox=wiring.outbox(),
            retry=wiring.notify_settings().retry,
            events_for=wiring.notification_event_log,
        )
    )
    failures += [message_id for message_id, n in notifications.items() if n.notification_id in pending]
    metrics.add_metric(name="NotificationsPending", unit=MetricUnit.Count, value=len(failures))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
