"""The one place where domain errors become HTTP responses.

Statuses are chosen by exception *type*, walking the class hierarchy so that a new subclass of a
mapped error inherits its parent's status until it is given one of its own. Messages are never
inspected.

A 500 never shows its message: internal messages name files, buckets and tables. The body carries
the request id instead, and the log has the error with its traceback under that id. Errors outside
the domain tree are bugs: the app (``portwarden.api.app``) logs them the same way and answers a 500
of the same shape, so no host ever shows a client a traceback or a path.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Response

from portwarden.api.auth import ForbiddenError, UnauthenticatedError
from portwarden.api.models import ErrorDetail, ErrorResponse
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
    InvalidPlatformError,
    InvalidReferenceError,
    InvalidRequestError,
    ManifestError,
    NotFoundError,
    PlatformNotFoundError,
    PolicyBundleError,
    PortwardenError,
    RegistryAuthError,
    RegistryUnavailableError,
    SbomFormatError,
    StoreError,
    UnknownEcosystemError,
    UnsafeContentError,
    VexDocumentError,
)

logger = logging.getLogger(__name__)

ROUTE_NOT_FOUND_ERROR_TYPE = "RouteNotFound"
INTERNAL_ERROR_TYPE = "InternalServerError"

# API Gateway's request ids are UUIDs; anything else a host passes is replaced rather than echoed.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,128}$")
_request_id: ContextVar[str | None] = ContextVar("portwarden_api_request_id", default=None)


def request_id_of(event: Mapping[str, Any], lambda_request_id: str | None) -> str:
    """API Gateway's id for the request (what its logs and the client's headers show), else Lambda's."""
    request_context = event.get("requestContext")
    candidates = (
        request_context.get("requestId") if isinstance(request_context, Mapping) else None,
        lambda_request_id,
    )
    for candidate in candidates:
        if isinstance(candidate, str) and _REQUEST_ID_RE.match(candidate):
            return candidate
    return str(uuid.uuid4())


@contextmanager
def serving_request(request_id: str) -> Iterator[None]:
    """Error bodies built while the request is served carry ``request_id``."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def current_request_id() -> str | None:
    return _request_id.get()


# Order does not matter: ``status_for`` follows each error's MRO to the nearest listed class.
STATUS_BY_ERROR: dict[type[PortwardenError], HTTPStatus] = {
    UnauthenticatedError: HTTPStatus.UNAUTHORIZED,
    ForbiddenError: HTTPStatus.FORBIDDEN,
    InvalidRequestError: HTTPStatus.BAD_REQUEST,
    PolicyBundleError: HTTPStatus.BAD_REQUEST,
    # An uploaded SBOM (an import's packages part) that cannot be read.
    SbomFormatError: HTTPStatus.BAD_REQUEST,
    ConflictError: HTTPStatus.CONFLICT,
    InvalidReferenceError: HTTPStatus.BAD_REQUEST,
    InvalidPlatformError: HTTPStatus.BAD_REQUEST,
    ConfigurationError: HTTPStatus.BAD_REQUEST,
    VexDocumentError: HTTPStatus.BAD_REQUEST,
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


def error_body(
    status: HTTPStatus, error_type: str, message: str, validation_details: tuple[str, ...] | None = None
) -> str:
    """The JSON error body (see ``ErrorResponse``), with the current request id."""
    body = ErrorResponse(
        code=status.value,
        error_type=error_type,
        message=message,
        httpcode=status.value,
        detail=ErrorDetail(request_id=current_request_id(), validation_details=validation_details),
    )
    return body.model_dump_json(exclude_none=True)


def error_response(
    status: HTTPStatus, error_type: str, message: str, validation_details: tuple[str, ...] | None = None
) -> Response[str]:
    """A JSON error response in Anchore's shape."""
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(status, error_type, message, validation_details),
    )


def internal_error_message() -> str:
    request_id = current_request_id()
    reference = f" (request id {request_id})" if request_id else ""
    return f"internal error{reference}; the server log has the details"


def response_for(error: PortwardenError) -> Response[str]:
    """Map a domain error to its response; server-side failures are logged with their traceback.

    A 500's own message stays in the log (it may name files, buckets or tables); the client gets
    the request id to quote instead.
    """
    status = status_for(error)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        logger.error("request %s failed: %s", current_request_id(), type(error).__name__, exc_info=error)
    else:
        logger.info("request rejected with %d: %s", status.value, type(error).__name__)
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        return error_response(status, type(error).__name__, internal_error_message())
    problems: tuple[str, ...] | None = None
    if isinstance(error, PolicyBundleError):
        problems = error.problems
    elif isinstance(error, VexDocumentError):
        problems = (str(error),)
    return error_response(status, type(error).__name__, str(error) or status.phrase, problems)


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    """Install the domain-error handler and the JSON 404 for unknown routes on ``app``."""

    def handle_unknown_route(_: Exception) -> Response[str]:
        route = f"{app.current_event.http_method} {app.current_event.path}"
        return error_response(HTTPStatus.NOT_FOUND, ROUTE_NOT_FOUND_ERROR_TYPE, f"no route for {route}")

    # Registered by call rather than as decorators: Powertools' decorators are untyped and would
    # erase the handlers' signatures for the type checker.
    app.exception_handler(PortwardenError)(response_for)
    app.not_found(handle_unknown_route)
