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
    """Anchore's error body: ``httpcode`` repeats the HTTP status; ``detail.error_codes`` is always a
    list (clients read it), ``detail.error_type`` names the error."""

    message: str
    httpcode: int
    detail: dict[str, Any] = Field(default_factory=dict)
