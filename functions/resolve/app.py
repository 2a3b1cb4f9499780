"""Step Functions task Resolve: manifest, config and layer list of the image, and the cache lookup.

Input: an ``AnalysisRequest`` (the execution input). Output: a ``ResolvedPointer`` (digests and the
S3 key of the resolved manifest, never the documents), with ``skip`` set when another trigger
already analyzes or analyzed the same digest.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.pipeline import AnalysisRequest, resolve_phase
from portwarden.runtime import wiring
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = AnalysisRequest.model_validate(event)
    stores = wiring.stores()
    resolved = resolve_phase(
        request,
        wiring.image_access(),
        blobs=stores.blobs,
        catalog=stores.catalog,
        options=wiring.analyzer_options(),
    )
    metrics.add_metric(name="ImagesResolved", unit=MetricUnit.Count, value=1)
    return resolved.model_dump(mode="json")
