"""Step Functions task AnalyzeLayer (one Map item): read one layer into its fragment in S3.

Input: a ``LayerJob`` (the image source and one layer). Output: the layer, marked cached. A layer
whose fragment is already cached is not downloaded again, so a retried item costs nothing twice.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.pipeline import analyze_layer_phase
from portwarden.runtime import wiring
from portwarden.runtime.events import LayerJob
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = LayerJob.model_validate(event)
    layer = analyze_layer_phase(
        job.source,
        job.layer,
        wiring.image_access(job.account),
        blobs=wiring.stores().blobs,
        options=wiring.analyzer_options(),
    )
    metrics.add_metric(name="LayersAnalyzed", unit=MetricUnit.Count, value=1)
    return layer.model_dump(mode="json")
