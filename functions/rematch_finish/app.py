"""Rematch state machine task Finish: every image is re-matched; the database the run was for is
recorded in the watch table, so the next rematch compares against it. A run that fails before this
step is planned again, whole, by the next one."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.watch_workflow import finish_rematch_run
from portwarden.runtime import wiring
from portwarden.runtime.observability import logger, metrics, tracer
from portwarden.runtime.watch_events import RematchFinishInput


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    finished = RematchFinishInput.model_validate(event)
    finish_rematch_run(finished.plan, index=wiring.namespace_index())
    return {"recorded": finished.plan.db_sha256}
