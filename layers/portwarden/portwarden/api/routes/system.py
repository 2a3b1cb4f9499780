"""Service-level routes that need no store: liveness and version."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from portwarden import __version__
from portwarden.api import API_VERSION
from portwarden.api.models import ApiVersion, HealthResponse, ServiceVersion, VersionResponse

SERVICE_NAME = "portwarden"

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


@router.get("/health", summary="Liveness check", tags=["system"])
def get_health() -> HealthResponse:
    return HealthResponse(version=__version__)


@router.get("/version", summary="Service and API versions", tags=["system"])
def get_version() -> VersionResponse:
    return VersionResponse(
        service=ServiceVersion(name=SERVICE_NAME, version=__version__),
        api=ApiVersion(version=API_VERSION),
    )
