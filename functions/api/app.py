"""API Gateway (REST, proxy integration) entry point: every route is served by ``portwarden.api``.

The Lambda host injects the AWS adapters (DynamoDB/S3 stores, the Step Functions starter) from
``portwarden.runtime.wiring``; they are built on the first request that needs them and kept for the
life of the container.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.api.app import create_app
from portwarden.runtime import wiring
from portwarden.runtime.observability import logger, metrics, tracer

app = create_app(wiring.api_dependencies)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Every route's answer: one over Lambda's 6 MB becomes a redirect to its S3 copy.
    return wiring.large_responses().fit(app.resolve(event, context))
