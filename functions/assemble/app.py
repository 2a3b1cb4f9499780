"""Step Functions task Assemble: squash the cached fragments, catalog, store the analysis.

Input: the ``ResolvedPointer`` from Resolve. Output: an ``AssembledPointer``. The analysis document
goes to S3, the summary (``analysis_status`` analyzed, package count, distro) to DynamoDB.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.pipeline import ResolvedPointer, assemble_phase
from portwarden.runtime import wiring
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    pointer = ResolvedPointer.model_validate(event)
    stores = wiring.stores().for_account(pointer.account)
    assembled = assemble_phase(
        pointer,
        wiring.image_access(pointer.account),
        blobs=stores.blobs,
        catalog=stores.catalog,
        analyses=stores.analyses,
        events=stores.events,
        options=wiring.analyzer_options(),
    )
    metrics.add_metric(name="ImagesAnalyzed", unit=MetricUnit.Count, value=1)
    return assembled.model_dump(mode="json")
