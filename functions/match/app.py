"""Step Functions task Match: the stored analysis against the current vulnerability database.

Input: an ``ImagePointer``. Output: a ``MatchOutcome`` (counts, not the matches: those go to S3).
The database snapshot is downloaded to /tmp once per container and per build, then reused.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.phases import match_phase
from portwarden.runtime import wiring
from portwarden.runtime.events import ImagePointer
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    image = ImagePointer.model_validate(event)
    outcome = match_phase(
        image.image_digest,
        image.repo_tag,
        analyses=wiring.stores().for_account(image.account).analyses,
        database=wiring.vulnerability_db().current,
        disabled_groups=wiring.stores().feeds.get_feed_settings().disabled_groups,
    )
    metrics.add_metric(name="VulnerabilitiesMatched", unit=MetricUnit.Count, value=outcome.match_count)
    return outcome.model_dump(mode="json")
