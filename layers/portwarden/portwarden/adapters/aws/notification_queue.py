"""The notification queue on SQS (the ``NotificationQueue`` port): the Watch and Rematch functions send
each notification as one message (its JSON); the Notify function reads them and delivers.

Messages go in batches of ten (SQS's limit); an entry SQS refuses is sent again once, then the call
fails with ``StoreError`` naming it, so the caller's own retry (Lambda's, the state machine's) sends
the batch again. A notification sent twice is harmless: the Notify function's outbox delivers each
notification id at most once per target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from portwarden.adapters.aws.clients import LazyClient
from portwarden.adapters.aws.s3 import client_error_code
from portwarden.core.errors import StoreError
from portwarden.core.watch.notifications import Notification

_BATCH = 10
# SQS takes at most 256 KiB per message; a larger notification is refused by SQS, said by StoreError.
SQS_MAX_BYTES = 256 * 1024


class SqsNotificationQueue:
    def __init__(
        self,
        queue_url: str,
        client: Any | None = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.queue_url = queue_url
        self._client = LazyClient("sqs", client, region=region, endpoint_url=endpoint_url)

    def _sqs(self) -> Any:
        return self._client.get()

    def send(self, notifications: Sequence[Notification]) -> None:
        for start in range(0, len(notifications), _BATCH):
            batch = {
                str(index): notification.model_dump_json()
                for index, notification in enumerate(notifications[start : start + _BATCH])
            }
            for attempt in range(2):
                failed = self._send_batch(batch)
                if not failed:
                    break
                if attempt == 1:
                    raise StoreError(f"the notification queue refused {len(failed)} messages: {failed}")
                batch = {entry_id: batch[entry_id] for entry_id in failed}

    def _send_batch(self, batch: dict[str, str]) -> dict[str, str]:
        try:
            response = self._sqs().send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": entry_id, "MessageBody": body} for entry_id, body in batch.items()],
            )
        except Exception as exc:
            code = client_error_code(exc) or type(exc).__name__
            raise StoreError(f"cannot send notifications to the queue: {code}") from exc
        return {str(entry["Id"]): str(entry.get("Code", "")) for entry in response.get("Failed", [])}
