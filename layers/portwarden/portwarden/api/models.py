"""Bodies the API returns that are not domain models themselves."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from portwarden.core.model.base import ValueObject


class HealthResponse(ValueObject):
    """Liveness: the function is up and can serve requests."""

    status: Literal["ok"] = "ok"
    version: str = Field(description="Version of the Portwarden package serving the request.")


class ServiceVersion(ValueObject):
    name: str
    version: str


class ApiVersion(ValueObject):
    version: str


class VersionResponse(ValueObject):
    """Anchore's ``GET /version`` shape (``service.version``, ``api.version``)."""

    service: ServiceVersion
    api: ApiVersion


class ErrorDetail(ValueObject):
    """``detail`` of an error: Anchore's ``error_codes``, and the id the server logged the request under."""

    error_codes: tuple[str, ...] = ()
    request_id: str | None = None


class ErrorResponse(ValueObject):
    """An error body both Anchore shapes read: ``ApiErrorResponse`` (``code`` repeats the HTTP status,
    ``error_type`` names the error) and the engine's older ``{message, httpcode, detail{error_codes}}``
    that anchore-cli prints."""

    code: int
    error_type: str
    message: str
    httpcode: int
    detail: ErrorDetail = Field(default_factory=ErrorDetail)
