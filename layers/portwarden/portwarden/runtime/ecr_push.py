"""ECR push events, buffered in SQS, turned into analysis executions (the StartAnalysis function).

EventBridge delivers each successful push to a queue; the function reads batches of up to ten. Each
message is one ``ECR Image Action`` event; each starts one execution, named after the digest, the
tag and the event's id, so a message delivered twice starts one execution (see ``adapters.aws.sfn``).
A message whose start fails (throttling, an outage) is reported back as a batch item failure: SQS
delivers it again after its visibility timeout, and after ``maxReceiveCount`` failures moves it to
the dead-letter queue, from which it can be redriven. Pushes to repositories outside the configured
prefixes are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from portwarden.adapters.aws.sfn import execution_name
from portwarden.core.errors import PortwardenError
from portwarden.core.model.base import ValueObject
from portwarden.core.ports import AnalysisStarter
from portwarden.runtime.events import EcrImageActionEvent

logger = logging.getLogger(__name__)


class SqsRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    message_id: str = Field(alias="messageId", min_length=1)
    body: str


class SqsEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    records: tuple[SqsRecord, ...] = Field(alias="Records")


class PushBatchOutcome(ValueObject):
    started: int = 0
    duplicates: int = 0
    skipped: int = 0
    # Message ids SQS must deliver again (Lambda's partial batch response).
    failed: tuple[str, ...] = ()

    def batch_response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failed]}


def in_scope(repository: str, prefixes: Sequence[str]) -> bool:
    """No prefixes: every repository; otherwise a repository name starting with one of them."""
    return not prefixes or any(repository.startswith(prefix) for prefix in prefixes)


def start_pushed_analyses(
    event: SqsEvent, starter: AnalysisStarter, prefixes: Sequence[str] = ()
) -> PushBatchOutcome:
    started = duplicates = skipped = 0
    failed: list[str] = []
    for record in event.records:
        try:
            push = EcrImageActionEvent.model_validate_json(record.body)
        except ValidationError as exc:
            # Never valid on a later delivery either: it ends in the dead-letter queue for a human.
            logger.error("message %s is not an ECR push event: %s", record.message_id, exc.error_count())
            failed.append(record.message_id)
            continue
        if not in_scope(push.detail.repository_name, prefixes):
            skipped += 1
            continue
        request = push.analysis_request()
        name = execution_name(push.detail.image_digest, request.repo_tag, push.id)
        try:
            start = starter.start(request, name=name)
        except PortwardenError as exc:
            logger.warning("message %s: %s; SQS delivers it again", record.message_id, exc)
            failed.append(record.message_id)
            continue
        if start.started:
            started += 1
        else:
            duplicates += 1
    return PushBatchOutcome(started=started, duplicates=duplicates, skipped=skipped, failed=tuple(failed))
