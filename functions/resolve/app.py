"""Step Functions task Resolve: manifest, config and layer list of the image, and the cache lookup.

Input: an ``AnalysisRequest`` (the execution input) with the ``attempt`` that claims the analysis.
Output: a ``ResolvedPointer`` (digests and the S3 key of the resolved manifest, never the
documents), with ``skip`` set when another attempt holds the claim or the digest is analyzed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.core.services.pipeline import resolve_phase
from portwarden.runtime import wiring
from portwarden.runtime.events import ResolveInput
from portwarden.runtime.observability import logger, metrics, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = ResolveInput.model_validate(event)
    request = task.request()
    stores = wiring.stores().for_account(request.account)
    # The claim outlives the execution's own timeout by a margin: no live attempt loses it.
    claim_ttl = timedelta(seconds=wiring.pipeline_settings().analysis_timeout_seconds + 300)
    resolved = resolve_phase(
        request,
        wiring.image_access(request.account),
        blobs=stores.blobs,
        catalog=stores.catalog,
        owner=task.attempt.owner if task.attempt else None,
        claim_ttl=claim_ttl,
        options=wiring.analyzer_options(),
    )
    metrics.add_metric(name="ImagesResolved", unit=MetricUnit.Count, value=1)
    return resolved.model_dump(mode="json")
