"""The API Lambda handler, the resolver behind it and the domain-error mapping.

The handler is loaded from ``functions/api/app.py`` by file path, exactly as Lambda loads it from
its CodeUri, and driven with the proxy events in ``events/api``.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from portwarden import __version__
from portwarden.api import API_VERSION
from portwarden.api.app import create_app
from portwarden.api.errors import (
    ROUTE_NOT_FOUND_ERROR_TYPE,
    STATUS_BY_ERROR,
    response_for,
    serving_request,
    status_for,
)
from portwarden.api.models import ErrorResponse
from portwarden.core import errors
from portwarden.runtime.settings import ApiSettings, ObservabilitySettings

REPO_ROOT = Path(__file__).resolve().parents[2]
API_EVENTS = REPO_ROOT / "events" / "api"
HANDLER_FILE = REPO_ROOT / "functions" / "api" / "app.py"

# Warm invocations of a route that records no metric make Powertools warn once per call site; that
# is expected for these read-only routes and says nothing about the behaviour under test.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str = "portwarden-dev-ApiFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:portwarden-dev-ApiFunction"
    aws_request_id: str = "5f0c1b2a-3d4e-4f60-8a7b-9c0d1e2f3a4b"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_api_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((API_EVENTS / name).read_text())
    return event


def content_type(response: dict[str, Any]) -> str | None:
    headers = response.get("multiValueHeaders") or {}
    values = headers.get("Content-Type") or [response.get("headers", {}).get("Content-Type")]
    return values[0] if values else None


def body_of(response: dict[str, Any]) -> Any:
    assert response["isBase64Encoded"] is False
    return json.loads(response["body"])


@pytest.fixture
def api_handler() -> ModuleType:
    """Import the handler module the way Lambda does: by file, under its CodeUri directory name."""
    spec = importlib.util.spec_from_file_location("portwarden_functions_api_app", HANDLER_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(handler_module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = handler_module.handler(event, FakeLambdaContext())
    return response


# --- the Lambda handler with the sample events ------------------------------------------------------


def test_health_event_returns_ok_and_package_version(api_handler: ModuleType) -> None:
    # Given the API Gateway event for GET /health
    event = load_api_event("get-health.json")
    # When the Lambda handler serves it
    response = invoke(api_handler, event)
    # Then it answers 200 with a JSON liveness body naming the running version
    assert response["statusCode"] == HTTPStatus.OK
    assert content_type(response) == "application/json"
    assert body_of(response) == {"status": "ok", "version": __version__}


def test_version_event_returns_anchore_shaped_versions(api_handler: ModuleType) -> None:
    response = invoke(api_handler, load_api_event("get-version.json"))

    assert response["statusCode"] == HTTPStatus.OK
    assert body_of(response) == {
        "service": {"name": "portwarden", "version": __version__},
        "api": {"version": API_VERSION},
    }


def test_openapi_event_returns_the_document_describing_the_routes(api_handler: ModuleType) -> None:
    response = invoke(api_handler, load_api_event("get-openapi.json"))

    assert response["statusCode"] == HTTPStatus.OK
    assert content_type(response) == "application/json"
    document = body_of(response)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Portwarden"
    assert document["info"]["version"] == API_VERSION
    assert set(document["paths"]) >= {"/health", "/version"}
    assert "/openapi.json" not in document["paths"]
    schemas = document["components"]["schemas"]
    assert {"HealthResponse", "VersionResponse"} <= set(schemas)
    assert schemas["HealthResponse"]["properties"]["status"]["const"] == "ok"


def test_unknown_route_is_a_json_404_in_the_error_shape(api_handler: ModuleType) -> None:
    # Given a request for a path no route serves (as `portwarden serve` would receive it)
    event = copy.deepcopy(load_api_event("get-health.json"))
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = "/no-such-route"
    # When the handler serves it
    response = invoke(api_handler, event)
    # Then the 404 carries the same error body as domain errors
    assert response["statusCode"] == HTTPStatus.NOT_FOUND
    assert body_of(response) == {
        "code": 404,
        "error_type": ROUTE_NOT_FOUND_ERROR_TYPE,
        "message": "no route for GET /no-such-route",
        "httpcode": 404,
        "detail": {"error_codes": [], "request_id": event["requestContext"]["requestId"]},
    }


def test_wrong_method_on_a_known_path_is_not_served(api_handler: ModuleType) -> None:
    event = copy.deepcopy(load_api_event("get-health.json"))
    event["httpMethod"] = event["requestContext"]["httpMethod"] = "DELETE"

    response = invoke(api_handler, event)

    assert response["statusCode"] == HTTPStatus.NOT_FOUND
    assert body_of(response)["error_type"] == ROUTE_NOT_FOUND_ERROR_TYPE


def test_sample_events_are_rest_proxy_events_for_the_routes_they_name() -> None:
    names = sorted(path.name for path in API_EVENTS.glob("*.json"))
    assert names == ["get-health.json", "get-openapi.json", "get-version.json"]
    for name in names:
        event = load_api_event(name)
        context = event["requestContext"]
        assert event["httpMethod"] == context["httpMethod"] == "GET"
        assert event["resource"] == event["path"] == context["resourcePath"]
        assert context["path"] == f"/{context['stage']}{event['path']}"
        assert event["multiValueHeaders"] == {key: [value] for key, value in event["headers"].items()}


# --- domain errors raised by a route ------------------------------------------------------------------


def test_domain_error_raised_in_a_route_becomes_its_mapped_status_and_body() -> None:
    # Given a fresh resolver with a route whose service call fails with a transient registry error
    app = create_app()

    @app.get("/probe")
    def probe() -> dict[str, str]:
        raise errors.RegistryUnavailableError("registry.example answered 503 three times")

    event = copy.deepcopy(load_api_event("get-health.json"))
    event["path"] = event["resource"] = "/probe"
    # When the request is resolved
    response = app.resolve(event, FakeLambdaContext())  # type: ignore[arg-type]
    # Then the client sees 503 and the error named by type, with its message
    assert response["statusCode"] == HTTPStatus.SERVICE_UNAVAILABLE
    assert body_of(response) == {
        "code": 503,
        "error_type": "RegistryUnavailableError",
        "message": "registry.example answered 503 three times",
        "httpcode": 503,
        "detail": {"error_codes": [], "request_id": event["requestContext"]["requestId"]},
    }


# --- the mapping itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (errors.InvalidReferenceError("Not A Reference"), HTTPStatus.BAD_REQUEST),
        (errors.InvalidPlatformError("beos/ppc"), HTTPStatus.BAD_REQUEST),
        (errors.ConfigurationError("bad credentials file"), HTTPStatus.BAD_REQUEST),
        (errors.InvalidConstraintError(">=1.0,<", "dangling operator"), HTTPStatus.BAD_REQUEST),
        (errors.UnknownEcosystemError("cobol"), HTTPStatus.BAD_REQUEST),
        (errors.ImageNotFoundError("library/nope:latest"), HTTPStatus.NOT_FOUND),
        (errors.NotFoundError("no analysis for sha256:ab"), HTTPStatus.NOT_FOUND),
        (errors.PlatformNotFoundError("linux/s390x", ["linux/amd64"]), HTTPStatus.NOT_FOUND),
        (errors.RegistryAuthError("denied"), HTTPStatus.FORBIDDEN),
        (errors.RegistryUnavailableError("503"), HTTPStatus.SERVICE_UNAVAILABLE),
        (errors.DigestMismatchError("sha256:ab"), HTTPStatus.BAD_GATEWAY),
        (errors.ImageSourceError("archive unreadable"), HTTPStatus.BAD_GATEWAY),
        (errors.ManifestError("unknown media type"), HTTPStatus.UNPROCESSABLE_ENTITY),
        (errors.UnsafeContentError("tar bomb"), HTTPStatus.UNPROCESSABLE_ENTITY),
        (errors.LimitExceededError("too many entries"), HTTPStatus.UNPROCESSABLE_ENTITY),
        (errors.CorruptPackageDatabaseError("rpmdb"), HTTPStatus.UNPROCESSABLE_ENTITY),
        (errors.FeedFormatError("not JSON"), HTTPStatus.BAD_GATEWAY),
        (errors.ContentUnavailableError("/etc/os-release"), HTTPStatus.INTERNAL_SERVER_ERROR),
        (errors.StoreError("disk full"), HTTPStatus.INTERNAL_SERVER_ERROR),
        (errors.PortwardenError("unexpected"), HTTPStatus.INTERNAL_SERVER_ERROR),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value.value),
)
def test_status_for_maps_each_domain_error_by_type(
    error: errors.PortwardenError, expected: HTTPStatus
) -> None:
    assert status_for(error) == expected


def test_unlisted_subclass_inherits_the_status_of_its_nearest_mapped_ancestor() -> None:
    class MirrorImageNotFoundError(errors.ImageNotFoundError):
        pass

    class NewDomainError(errors.PortwardenError):
        pass

    assert MirrorImageNotFoundError not in STATUS_BY_ERROR
    assert status_for(MirrorImageNotFoundError("gone")) == HTTPStatus.NOT_FOUND
    assert status_for(NewDomainError("?")) == HTTPStatus.INTERNAL_SERVER_ERROR


def test_every_domain_error_class_resolves_to_an_error_status() -> None:
    domain_errors = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.PortwardenError)
    ]
    for cls in domain_errors:
        resolved = next(STATUS_BY_ERROR[base] for base in cls.__mro__ if base in STATUS_BY_ERROR)
        assert resolved >= HTTPStatus.BAD_REQUEST, cls


def test_response_for_builds_the_anchore_error_body() -> None:
    response = response_for(errors.ImageNotFoundError("docker.io/library/nope:1 not found"))

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.headers["Content-Type"] == "application/json"
    assert isinstance(response.body, str)
    assert json.loads(response.body) == {
        "code": 404,
        "error_type": "ImageNotFoundError",
        "message": "docker.io/library/nope:1 not found",
        "httpcode": 404,
        "detail": {"error_codes": []},
    }


def test_an_error_body_built_with_code_alone_carries_httpcode_too() -> None:
    body = ErrorResponse(code=409, error_type="Conflict", message="already exists")

    assert json.loads(body.model_dump_json(exclude_none=True)) == {
        "code": 409,
        "error_type": "Conflict",
        "message": "already exists",
        "httpcode": 409,
        "detail": {"error_codes": []},
    }


def test_response_for_an_error_without_message_uses_the_status_phrase() -> None:
    response = response_for(errors.NotFoundError())

    assert isinstance(response.body, str)
    assert json.loads(response.body)["message"] == "Not Found"


def test_a_500_keeps_its_message_in_the_log_and_gives_the_request_id() -> None:
    with serving_request("req-1234"):
        response = response_for(errors.StoreError("cannot write /var/lib/portwarden/portwarden.db"))

    assert isinstance(response.body, str)
    body = json.loads(response.body)
    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "/var/lib" not in response.body
    assert body["message"] == "internal error (request id req-1234); the server log has the details"
    assert body["detail"] == {"error_codes": [], "request_id": "req-1234"}


# --- settings parsed at the edge ----------------------------------------------------------------------


def test_api_settings_read_the_template_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "portwarden-api")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "PortwardenStaging")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("PORTWARDEN_STAGE", "staging")
    monkeypatch.setenv("PORTWARDEN_TABLE_NAME", "portwarden-staging-images")
    monkeypatch.delenv("PORTWARDEN_BUCKET_NAME", raising=False)

    settings = ApiSettings()

    assert settings.service_name == "portwarden-api"
    assert settings.metrics_namespace == "PortwardenStaging"
    assert settings.log_level == "DEBUG"
    assert settings.stage == "staging"
    assert settings.table_name == "portwarden-staging-images"
    assert settings.bucket_name is None


def test_settings_defaults_apply_when_the_variables_are_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)

    settings = ObservabilitySettings()

    assert (settings.service_name, settings.metrics_namespace, settings.log_level) == (
        "portwarden",
        "Portwarden",
        "INFO",
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LOG_LEVEL", "LOUD"), ("PORTWARDEN_STAGE", "Prod_1"), ("PORTWARDEN_BUCKET_NAME", "b")],
)
def test_invalid_environment_fails_at_construction_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError, match=variable):
        ApiSettings()
