"""Bodies the API returns that are not domain models themselves."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

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
    # Every problem found in a policy bundle that failed validation, as Anchore lists them.
    validation_details: tuple[str, ...] | None = None


class ErrorResponse(ValueObject):
    """An error body both Anchore shapes read: ``ApiErrorResponse`` (``code`` repeats the HTTP status,
    ``error_type`` names the error) and the engine's older ``{message, httpcode, detail{error_codes}}``
    that anchore-cli prints."""

    code: int
    error_type: str
    message: str
    # Filled from ``code`` when not given (see the validator): callers may build either shape.
    httpcode: int = 0
    detail: ErrorDetail = Field(default_factory=ErrorDetail)

    @model_validator(mode="before")
    @classmethod
    def _httpcode_repeats_code(cls, data: Any) -> Any:
        # The two shapes name the status differently; a body built with ``code`` alone gets both.
        if isinstance(data, dict) and "httpcode" not in data and "code" in data:
            return {**data, "httpcode": data["code"]}
        return data
