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
import threading
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Response
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
from portwarden.api.routes import (
    accounts,
    events,
    images,
    imports,
    notifications,
    policies,
    queries,
    registries,
    reports,
    subscriptions,
    system,
    vex,
)
from portwarden.api.screening import Rejection, RequestLimits, screen_request

API_PREFIX = "/v1"
OPENAPI_TITLE = "Portwarden"
OPENAPI_DESCRIPTION = (
    "Container image inspection: SBOMs, vulnerability matches and Anchore-compatible policy evaluation."
)


logger = logging.getLogger(__name__)


class PortwardenResolver(APIGatewayRestResolver):
    """The Powertools resolver: requests screened, served with the host's dependencies, never escaping.

    Powertools keeps the request being served in *class* attributes (``BaseRouter.current_event``,
    ``lambda_context``) and in the instance's ``context`` dict: fine for a Lambda, which serves one
    request at a time, but ``portwarden serve`` resolves on many threads at once, and a thread would
    then route another thread's path. Here all three are per thread.
    """

    def __init__(self, provider: DependencyProvider | None, limits: RequestLimits) -> None:
        self._request_state = threading.local()
        # Every route answers under /v1 (Anchore's prefix, which clients put in their base URL) and,
        # as Anchore's engine does, without it.
        super().__init__(enable_validation=True, strip_prefixes=[API_PREFIX])
        self._provider = provider
        self._limits = limits

    @property  # type: ignore[override]
    def current_event(self) -> Any:
        return getattr(self._request_state, "event", None)

    @current_event.setter
    def current_event(self, value: Any) -> None:
        self._request_state.event = value

    @property  # type: ignore[override]
    def lambda_context(self) -> Any:
        return getattr(self._request_state, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._request_state.lambda_context = value

    @property  # type: ignore[override]
    def context(self) -> dict[str, Any]:
        state = self._request_state
        if not hasattr(state, "context"):
            state.context = {}
        value: dict[str, Any] = state.context
        return value

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._request_state.context = value

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        request_id = request_id_of(event, getattr(context, "aws_request_id", None))
        with serving_request(request_id), serving_with(self._provider, event):
            screened = screen_request(event, self._limits)
            if isinstance(screened, Rejection):
                logger.info(
                    "request %s refused with %d: %s", request_id, screened.status, screened.error_type
                )
                return _proxy_response(screened.status, error_body(*_fields(screened)))
            try:
                # Powertools sets the class attributes itself; this thread reads its own copy.
                self.current_event = self._to_proxy_event(dict(screened))
                self.lambda_context = context
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
    for module in (
        system,
        images,
        reports,
        imports,
        queries,
        policies,
        registries,
        subscriptions,
        events,
        accounts,
        vex,
        notifications,
    ):
        app.include_router(module.router)
    document: list[str] = []

    def openapi_document() -> Response[str]:
        # Built once per app (it takes a good fraction of a second; anchore-cli fetches it before
        # every image lookup). info.version is dotted integers: clients compare it.
        if not document:
            document.append(
                app.get_openapi_json_schema(
                    title=OPENAPI_TITLE, version=API_VERSION, description=OPENAPI_DESCRIPTION
                )
            )
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document[0])

    # Registered by call: Powertools' decorators are untyped.
    app.get("/openapi.json", include_in_schema=False)(openapi_document)
    app.get("/swagger.json", include_in_schema=False)(openapi_document)

    _build_middleware_stacks(app)
    return app


def _build_middleware_stacks(app: APIGatewayRestResolver) -> None:
    """Build every route's middleware chain now, on one thread.

    Powertools builds a route's chain lazily on its first call, guarded by a plain flag: two threads
    of ``portwarden serve`` calling a route for the first time at once both wrap the same chain, and
    the route is then left with validation frames nested in each other (a TypeError on later calls).
    Built here, before the app serves anything, the chain is only ever read.
    """
    routes = [*app._static_routes, *app._dynamic_routes]
    for route in routes:
        if not route._middleware_stack_built:
            route._build_middleware_stack(router_middlewares=app._router_middlewares, app=app)
