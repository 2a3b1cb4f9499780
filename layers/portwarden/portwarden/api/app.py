"""The API application: routes, validation and the domain-error mapping on one resolver.

``create_app(provider)`` builds a resolver serving with the dependencies ``provider`` returns (see
``portwarden.api.dependencies``): the Lambda function passes the AWS wiring, ``portwarden serve`` its
local stores and queue, tests their fakes. There is deliberately no module-level app: an app without
dependencies could only fail. New route groups are added as routers in ``portwarden.api.routes`` and
included here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.api import API_VERSION
from portwarden.api.dependencies import DependencyProvider, serving_with
from portwarden.api.errors import register_error_handlers
from portwarden.api.routes import images, system

OPENAPI_TITLE = "Portwarden"
OPENAPI_DESCRIPTION = (
    "Container image inspection: SBOMs, vulnerability matches and Anchore-compatible policy evaluation."
)


class PortwardenResolver(APIGatewayRestResolver):
    """The Powertools resolver, serving every request with its host's dependencies."""

    def __init__(self, provider: DependencyProvider | None) -> None:
        super().__init__(enable_validation=True)
        self._provider = provider

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        with serving_with(self._provider):
            return super().resolve(event, context)


def create_app(provider: DependencyProvider | None = None) -> APIGatewayRestResolver:
    """A resolver with every route group, request/response validation and the error mapping.

    ``provider`` gives the routes their ports; without one only the routes that need none (health,
    version, the OpenAPI document) can answer.
    """
    app = PortwardenResolver(provider)
    register_error_handlers(app)
    app.include_router(system.router)
    app.include_router(images.router)

    @app.get("/openapi.json", include_in_schema=False)
    def get_openapi_document() -> Response[str]:
        document = app.get_openapi_json_schema(
            title=OPENAPI_TITLE, version=API_VERSION, description=OPENAPI_DESCRIPTION
        )
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document)

    return app
