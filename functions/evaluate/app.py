"""Step Functions task Evaluate: the active policy bundle against the analysis and its matches.

Input: an ``ImagePointer``. Output: an ``EvaluationOutcome`` (final action and status); the full
evaluation document is stored with the evaluation.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.phases import evaluate_phase
from portwarden.runtime import wiring
from portwarden.runtime.events import ImagePointer
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    image = ImagePointer.model_validate(event)
    stores = wiring.stores().for_account(image.account)
    outcome = evaluate_phase(
        image.image_digest,
        image.repo_tag,
        analyses=stores.analyses,
        policies=stores.policies,
        evaluations=stores.evaluations,
        feeds=stores.feeds,
        vex=wiring.vex_inputs(image.account),
    )
    metrics.add_metric(name=f"Evaluations{outcome.final_action.title()}", unit=MetricUnit.Count, value=1)
    return outcome.model_dump(mode="json")
