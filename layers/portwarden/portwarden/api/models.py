"""Bodies the API returns that are not domain models themselves."""

from __future__ import annotations

from typing import Any, Literal

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


class ErrorResponse(ValueObject):
    """Anchore's ``ApiErrorResponse``: ``code`` repeats the HTTP status, ``error_type`` names the error."""

    code: int
    error_type: str
    message: str
    detail: dict[str, Any] = Field(default_factory=dict)
