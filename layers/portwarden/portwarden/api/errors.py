"""The one place where domain errors become HTTP responses.

Statuses are chosen by exception *type*, walking the class hierarchy so that a new subclass of a
mapped error inherits its parent's status until it is given one of its own. Messages are never
inspected. Errors outside the domain tree are deliberately not handled: they are bugs, and letting
them propagate makes the Lambda runtime record the traceback and count the invocation as an error,
which is what alarms watch.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from portwarden.api.auth import ForbiddenError, UnauthenticatedError
from portwarden.api.models import ErrorResponse
from portwarden.core.errors import (
    ConfigurationError,
    ConflictError,
    ContentUnavailableError,
    CorruptPackageDatabaseError,
    DigestMismatchError,
    FeedFormatError,
    ImageNotFoundError,
    ImageSourceError,
    InvalidConstraintError,
    InvalidReferenceError,
    InvalidRequestError,
    ManifestError,
    NotFoundError,
    PlatformNotFoundError,
    PolicyBundleError,
    PortwardenError,
    RegistryAuthError,
    RegistryUnavailableError,
    StoreError,
    UnknownEcosystemError,
    UnsafeContentError,
)

logger = logging.getLogger(__name__)

ROUTE_NOT_FOUND_ERROR_TYPE = "RouteNotFound"

# Order does not matter: ``status_for`` follows each error's MRO to the nearest listed class.
STATUS_BY_ERROR: dict[type[PortwardenError], HTTPStatus] = {
    UnauthenticatedError: HTTPStatus.UNAUTHORIZED,
    ForbiddenError: HTTPStatus.FORBIDDEN,
    InvalidRequestError: HTTPStatus.BAD_REQUEST,
    PolicyBundleError: HTTPStatus.BAD_REQUEST,
    ConflictError: HTTPStatus.CONFLICT,
    InvalidReferenceError: HTTPStatus.BAD_REQUEST,
    ConfigurationError: HTTPStatus.BAD_REQUEST,
    # Constraints and ecosystem names reach the core from requests (queries, policy parameters).
    InvalidConstraintError: HTTPStatus.BAD_REQUEST,
    UnknownEcosystemError: HTTPStatus.BAD_REQUEST,
    ImageNotFoundError: HTTPStatus.NOT_FOUND,
    NotFoundError: HTTPStatus.NOT_FOUND,
    PlatformNotFoundError: HTTPStatus.NOT_FOUND,
    # 403, not 401: 401 would tell the caller that *its* credentials (SigV4) were rejected, while
    # here the caller was let in and the registry refused ours.
    RegistryAuthError: HTTPStatus.FORBIDDEN,
    # Transient after retries: 503 invites the client to try again later.
    RegistryUnavailableError: HTTPStatus.SERVICE_UNAVAILABLE,
    # The registry served something wrong; the request itself was fine.
    DigestMismatchError: HTTPStatus.BAD_GATEWAY,
    # The image was fetched but cannot be processed: malformed/unsupported, or refused for safety.
    ManifestError: HTTPStatus.UNPROCESSABLE_ENTITY,
    UnsafeContentError: HTTPStatus.UNPROCESSABLE_ENTITY,
    CorruptPackageDatabaseError: HTTPStatus.UNPROCESSABLE_ENTITY,
    ImageSourceError: HTTPStatus.BAD_GATEWAY,
    # An upstream vulnerability source served data we cannot read.
    FeedFormatError: HTTPStatus.BAD_GATEWAY,
    ContentUnavailableError: HTTPStatus.INTERNAL_SERVER_ERROR,
    StoreError: HTTPStatus.INTERNAL_SERVER_ERROR,
    PortwardenError: HTTPStatus.INTERNAL_SERVER_ERROR,
}


def status_for(error: PortwardenError) -> HTTPStatus:
    """The HTTP status of a domain error: that of the nearest mapped class in its hierarchy."""
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    # Unreachable while PortwardenError itself is in the table; kept total for safety.
    return HTTPStatus.INTERNAL_SERVER_ERROR


def error_response(
    status: HTTPStatus, error_type: str, message: str, detail: dict[str, Any] | None = None
) -> Response[str]:
    """A JSON error body in Anchore's shape: ``{message, httpcode, detail{error_codes, …}}``."""
    body = ErrorResponse(
        message=message,
        httpcode=status.value,
        detail={"error_codes": [], "error_type": error_type, **(detail or {})},
    )
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(),
    )


def response_for(error: PortwardenError) -> Response[str]:
    """Map a domain error to its response; server-side failures are logged with their traceback."""
    status = status_for(error)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.error("request failed: %s", type(error).__name__, exc_info=error)
    else:
        logger.info("request rejected with %d: %s", status.value, type(error).__name__)
    detail: dict[str, Any] = {}
    if isinstance(error, PolicyBundleError):
        # Every validation problem at once, as Anchore lists them.
        detail["validation_details"] = list(error.problems)
    return error_response(status, type(error).__name__, str(error) or status.phrase, detail)


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    """Install the domain-error handler and the JSON 404 for unknown routes on ``app``."""

    def handle_unknown_route(_: Exception) -> Response[str]:
        route = f"{app.current_event.http_method} {app.current_event.path}"
        return error_response(HTTPStatus.NOT_FOUND, ROUTE_NOT_FOUND_ERROR_TYPE, f"no route for {route}")

    # Registered by call rather than as decorators: Powertools' decorators are untyped and would
    # erase the handlers' signatures for the type checker.
    app.exception_handler(PortwardenError)(response_for)
    app.not_found(handle_unknown_route)
