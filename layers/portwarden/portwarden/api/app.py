"""The API application: routes, validation and the domain-error mapping on one resolver.

``create_app`` builds a fresh resolver (tests use it to get an isolated instance); ``app`` is the one
the Lambda handler and ``portwarden serve`` share. New route groups are added as routers in
``portwarden.api.routes`` and included here.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from portwarden.api import API_VERSION
from portwarden.api.errors import register_error_handlers
from portwarden.api.routes import images, system

OPENAPI_TITLE = "Portwarden"
OPENAPI_DESCRIPTION = (
    "Container image inspection: SBOMs, vulnerability matches and Anchore-compatible policy evaluation."
)


def create_app() -> APIGatewayRestResolver:
    """A resolver with every route group, request/response validation and the error mapping."""
    app = APIGatewayRestResolver(enable_validation=True)
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


app = create_app()
