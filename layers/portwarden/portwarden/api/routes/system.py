"""System routes: liveness, version, service status, the policy gate catalogue, error codes, feeds."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.api_gateway import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from portwarden import __version__
from portwarden.api import API_VERSION
from portwarden.api.context import Scope, scope
from portwarden.api.dependencies import FeedService
from portwarden.api.models import ApiVersion, HealthResponse, ServiceVersion, VersionResponse
from portwarden.core.errors import NotFoundError

SERVICE_NAME = "portwarden"
# The services an Anchore client may wait for: one process (or one Lambda) plays them all.
ANCHORE_SERVICES = ("apiext", "catalog", "policy_engine", "simplequeue", "analyzer")
HOST_ID = "portwarden"

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


@router.get("/", summary="The API version prefix (clients probe it)", tags=["system"])
def get_root() -> Response[str]:
    scope()  # authenticated, as Anchore's is: a client's first call checks its credentials
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=json.dumps("v1"))


def _service(name: str) -> dict[str, Any]:
    return {
        "servicename": name,
        "hostid": HOST_ID,
        "base_url": "N/A",
        "status": True,
        "status_message": "available",
        "version": __version__,
        "service_detail": {
            "up": True,
            "available": True,
            "busy": False,
            "message": "all good",
            "version": __version__,
            "db_version": API_VERSION,
        },
    }


@router.get("/status", summary="API service status", tags=["system"])
def get_status() -> dict[str, Any]:
    scope()
    return {
        "available": True,
        "busy": False,
        "up": True,
        "message": "all good",
        "version": __version__,
        "db_version": API_VERSION,
        "detail": {},
    }


@router.get("/system", summary="Service states", tags=["system"])
def get_system() -> dict[str, Any]:
    scope()
    return {"service_states": [_service(name) for name in ANCHORE_SERVICES]}


@router.get("/system/services", summary="Registered services", tags=["system"])
def list_services() -> list[dict[str, Any]]:
    scope()
    return [_service(name) for name in ANCHORE_SERVICES]


@router.get("/system/services/<servicename>", summary="One service's registrations", tags=["system"])
def get_service(servicename: str) -> list[dict[str, Any]]:
    scope()
    if servicename not in ANCHORE_SERVICES:
        raise NotFoundError(f"no service {servicename}")
    return [_service(servicename)]


@router.get("/system/services/<servicename>/<hostid>", summary="One service registration", tags=["system"])
def get_service_host(servicename: str, hostid: str) -> list[dict[str, Any]]:
    scope()
    if servicename not in ANCHORE_SERVICES or hostid != HOST_ID:
        raise NotFoundError(f"no service {servicename} on host {hostid}")
    return [_service(servicename)]


@router.get("/system/policy_spec", summary="The policy gates, triggers and parameters", tags=["system"])
def get_policy_spec() -> list[dict[str, Any]]:
    from portwarden.core.policy.gates import END_OF_LIFE_GATES, GATES

    scope()
    gates: list[dict[str, Any]] = []
    for gate in GATES:
        triggers = []
        for trigger in gate.triggers:
            parameters = []
            for name, field in trigger.params.model_fields.items():
                examples = field.examples or []
                parameters.append(
                    {
                        "name": field.alias or name,
                        "description": field.description or "",
                        "required": field.is_required(),
                        "example": str(examples[0]) if examples else None,
                        "state": "active",
                        "superceded_by": None,
                        "validator": {"type": "string"},
                    }
                )
            triggers.append(
                {
                    "name": trigger.name,
                    "description": trigger.description,
                    "state": "active",
                    "superceded_by": None,
                    "parameters": parameters,
                }
            )
        gates.append(
            {
                "name": gate.name,
                "description": gate.description,
                "state": "eol" if gate.name in END_OF_LIFE_GATES else "active",
                "superceded_by": None,
                "triggers": triggers,
            }
        )
    return gates


ERROR_CODES = (
    ("RegistryAuthError", "The registry refused the credentials (or none are configured for it)"),
    ("RegistryUnavailableError", "The registry could not be reached after retries"),
    ("ImageNotFoundError", "The registry has no such image"),
    ("ManifestError", "The image's manifest is malformed or of an unsupported type"),
    ("UnsafeContentError", "The image was refused for safety (a size or count limit, an unsafe path)"),
    ("PolicyBundleError", "A policy bundle failed validation"),
    ("NotFoundError", "The record does not exist in this account"),
    ("InvalidRequestError", "The request was understood but refused as given"),
    ("ConflictError", "The request conflicts with the current state"),
)


@router.get("/system/error_codes", summary="Error codes and what they mean", tags=["system"])
def get_error_codes() -> list[dict[str, str]]:
    scope()
    return [{"name": name, "description": description} for name, description in ERROR_CODES]


# ---- feeds ------------------------------------------------------------------------------------------


def _feeds(current: Scope) -> FeedService:
    return current.need(current.host.feed_service, "vulnerability feeds")


@router.get("/system/feeds", summary="Vulnerability feeds and their groups", tags=["system"])
def list_feeds() -> list[dict[str, Any]]:
    return _feeds(scope()).list_feeds()


@router.post("/system/feeds", summary="Sync the feeds now (admin)", tags=["system"])
def sync_feeds(flush: bool = False, sync: bool = True) -> list[dict[str, Any]]:
    current = scope()
    current.require_admin()
    return _feeds(current).sync(flush=flush)


@router.put("/system/feeds/<feed>", summary="Enable or disable a feed (admin)", tags=["system"])
def configure_feed(feed: str, enabled: bool) -> dict[str, Any]:
    current = scope()
    current.require_admin()
    return _feeds(current).set_enabled(feed, None, enabled)


@router.put("/system/feeds/<feed>/<group>", summary="Enable or disable a group (admin)", tags=["system"])
def configure_group(feed: str, group: str, enabled: bool) -> dict[str, Any]:
    current = scope()
    current.require_admin()
    return _feeds(current).set_enabled(feed, group, enabled)


@router.delete("/system/feeds/<feed>", summary="Delete a feed's data and disable it (admin)", tags=["system"])
def delete_feed(feed: str) -> dict[str, Any]:
    current = scope()
    current.require_admin()
    return _feeds(current).delete(feed, None)


@router.delete(
    "/system/feeds/<feed>/<group>", summary="Delete a group and disable it (admin)", tags=["system"]
)
def delete_group(feed: str, group: str) -> dict[str, Any]:
    current = scope()
    current.require_admin()
    return _feeds(current).delete(feed, group)
