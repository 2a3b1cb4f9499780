"""The API application: routes, validation and the domain-error mapping on one resolver.

``create_app(provider)`` builds a resolver serving with the dependencies ``provider`` returns (see
``portwarden.api.dependencies``): the Lambda function passes the AWS wiring, ``portwarden serve`` its
local stores and queue, tests their fakes. There is deliberately no module-level app: an app without
dependencies could only fail. New route groups are added as routers in ``portwarden.api.routes`` and
included here.

Every request is screened before routing (``portwarden.api.screening``: size, base64, nesting, number
length, lone surrogates → 400/413), and nothing escapes the app: an error outside the domain tree is
logged with its traceback and answered as a 500 carrying the request id, never a message or a path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from portwarden.api import API_VERSION
from portwarden.api.dependencies import DependencyProvider, serving_with
from portwarden.api.errors import (
    INTERNAL_ERROR_TYPE,
    error_body,
    internal_error_message,
    register_error_handlers,
    request_id_of,
    serving_request,
)
from portwarden.api.routes import images, system
from portwarden.api.screening import Rejection, RequestLimits, screen_request

OPENAPI_TITLE = "Portwarden"
OPENAPI_DESCRIPTION = (
    "Container image inspection: SBOMs, vulnerability matches and Anchore-compatible policy evaluation."
)


logger = logging.getLogger(__name__)


class PortwardenResolver(APIGatewayRestResolver):
    """The Powertools resolver: requests screened, served with the host's dependencies, never escaping."""

    def __init__(self, provider: DependencyProvider | None, limits: RequestLimits) -> None:
        super().__init__(enable_validation=True)
        self._provider = provider
        self._limits = limits

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        request_id = request_id_of(event, getattr(context, "aws_request_id", None))
        with serving_request(request_id), serving_with(self._provider):
            screened = screen_request(event, self._limits)
            if isinstance(screened, Rejection):
                logger.info(
                    "request %s refused with %d: %s", request_id, screened.status, screened.error_type
                )
                return _proxy_response(screened.status, error_body(*_fields(screened)))
            try:
                return super().resolve(screened, context)
            except Exception:
                # A bug (or a library failing in a way nothing anticipated): the traceback goes to
                # the log under the request id, the client gets the id and nothing internal.
                logger.exception("request %s failed with an unexpected error", request_id)
                status = HTTPStatus.INTERNAL_SERVER_ERROR
                return _proxy_response(
                    status, error_body(status, INTERNAL_ERROR_TYPE, internal_error_message())
                )


def _fields(rejection: Rejection) -> tuple[HTTPStatus, str, str]:
    return rejection.status, rejection.error_type, rejection.message


def _proxy_response(status: HTTPStatus, body: str) -> dict[str, Any]:
    """A REST proxy-integration response, shaped as the resolver shapes its own."""
    return {
        "statusCode": status.value,
        "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
        "body": body,
        "isBase64Encoded": False,
    }


def create_app(
    provider: DependencyProvider | None = None, *, limits: RequestLimits | None = None
) -> APIGatewayRestResolver:
    """A resolver with every route group, request/response validation and the error mapping.

    ``provider`` gives the routes their ports; without one only the routes that need none (health,
    version, the OpenAPI document) can answer. ``limits`` bounds requests (defaults: ``RequestLimits``).
    """
    app = PortwardenResolver(provider, limits or RequestLimits())
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
