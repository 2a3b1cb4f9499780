"""Hostile and malformed requests through the API Lambda handler: 400s in Anchore's error shape, never
an escaped exception, and 500s that carry a request id and nothing internal.

The handler is loaded from ``functions/api/app.py`` as Lambda loads it, with the runtime wiring's
dependency provider replaced by local stores and a recording starter, so a test can also verify
that nothing was started for a refused request.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import logging
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.api.dependencies import ApiDependencies
from portwarden.core.errors import StoreError
from portwarden.runtime import wiring
from tests.unit.test_api_app import HANDLER_FILE, FakeLambdaContext, load_api_event
from tests.unit.test_api_dependencies import RecordingStarter

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

REQUEST_ID = load_api_event("get-health.json")["requestContext"]["requestId"]


class FailingCatalog:
    """A catalog whose every call fails the way a broken host fails: with internal paths in the error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def list_images(self, limit: int = 1000) -> list[Any]:
        raise self.error


class Host:
    """The handler module and what its injected dependencies saw."""

    def __init__(self, module: ModuleType, starter: RecordingStarter) -> None:
        self.module = module
        self.starter = starter

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.module.handler(event, FakeLambdaContext())
        return response


def load_handler(monkeypatch: pytest.MonkeyPatch, dependencies: ApiDependencies) -> ModuleType:
    monkeypatch.setattr(wiring, "api_dependencies", lambda: dependencies)
    spec = importlib.util.spec_from_file_location("portwarden_functions_api_app_hostile", HANDLER_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    starter = RecordingStarter()
    with LocalStore(tmp_path / "home") as store:
        dependencies = ApiDependencies(
            catalog=store.catalog, analyses=store.analyses, evaluations=store.evaluations, starter=starter
        )
        yield Host(load_handler(monkeypatch, dependencies), starter)


def post_images(body: str, *, base64_encoded: bool = False) -> dict[str, Any]:
    event = copy.deepcopy(load_api_event("images/post-images.json"))
    event["body"] = body
    event["isBase64Encoded"] = base64_encoded
    return event


def get(path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_api_event("get-health.json"))
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    return event


def assert_anchore_error(response: dict[str, Any], status: HTTPStatus, *, mentions: str) -> dict[str, Any]:
    assert response["statusCode"] == status, response["body"]
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    body: dict[str, Any] = json.loads(response["body"])
    assert body["httpcode"] == body["code"] == status.value
    assert body["detail"]["error_codes"] == []
    assert body["detail"]["request_id"] == REQUEST_ID
    assert mentions in body["message"], body["message"]
    return body


# ---- each parser failure is a 400 ---------------------------------------------------------------------


def test_deeply_nested_json_is_a_400_not_a_recursion_error(host: Host) -> None:
    nested = "[" * 100_000 + "]" * 100_000

    response = host.invoke(post_images(nested))

    assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions="nests deeper than 64 levels")
    assert host.starter.requests == []


def test_nesting_is_counted_outside_strings_only(host: Host) -> None:
    # Brackets inside a string are text: the body is one level deep, and the tag is what fails.
    body = json.dumps({"tag": "[" * 500 + "{" * 500})

    response = host.invoke(post_images(body))

    assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions="tag: ")


def test_a_5000_digit_integer_is_a_400_not_a_value_error(host: Host) -> None:
    body = '{"tag": "ghcr.io/acme/app:1", "force": ' + "7" * 5000 + "}"

    response = host.invoke(post_images(body))

    assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions="more than 100 digits")
    assert host.starter.requests == []


def test_long_digit_runs_inside_strings_are_not_numbers(host: Host) -> None:
    body = json.dumps({"tag": "ghcr.io/acme/app:1", "platform": "linux/" + "7" * 300})

    response = host.invoke(post_images(body))

    # Refused for what it is (an unknown platform), not for a number it does not contain.
    assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions="platform")


@pytest.mark.parametrize("body", ["!!!notbase64", "e30", "eyJ0YWciOiAiYS5iL2M6MSJ9$"])
def test_a_body_that_is_not_base64_is_a_400_not_a_binascii_error(host: Host, body: str) -> None:
    response = host.invoke(post_images(body, base64_encoded=True))

    assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions="not valid base64")


def test_a_base64_body_that_is_not_utf8_is_a_400(host: Host) -> None:
    body = base64.b64encode(b'{"tag": "\xff\xfe"}').decode()

    response = host.invoke(post_images(body, base64_encoded=True))

    assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions="not UTF-8")


def test_a_valid_base64_body_is_decoded_and_served(host: Host) -> None:
    body = base64.b64encode(json.dumps({"tag": "ghcr.io/acme/app:1"}).encode()).decode()

    response = host.invoke(post_images(body, base64_encoded=True))

    assert response["statusCode"] == HTTPStatus.ACCEPTED, response["body"]
    assert [request.source for request in host.starter.requests] == ["registry:ghcr.io/acme/app:1"]


@pytest.mark.parametrize(
    ("event", "where"),
    [
        (get("/images", {"analysis_status": "analyzed\ud800"}), "query"),
        (get(f"/images/sha256:{'a' * 64}/check", {"tag": "ghcr.io/acme/app:\udcff"}), "query"),
        (get("/images/\ud800"), "path"),
    ],
    ids=["list-query", "check-tag-query", "path"],
)
def test_lone_surrogates_in_the_request_are_a_400_not_a_unicode_encode_error(
    host: Host, event: dict[str, Any], where: str
) -> None:
    response = host.invoke(event)

    assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions=f"request {where} is not valid Unicode")


def test_a_lone_surrogate_escape_in_a_json_string_is_a_400(host: Host) -> None:
    response = host.invoke(post_images('{"tag": "ghcr.io/acme/app:1", "platform": "linux/amd64\\ud800"}'))

    assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions="lone surrogate")
    assert host.starter.requests == []


def test_a_surrogate_pair_escape_is_valid_text(host: Host) -> None:
    # U+1F600 as a pair of escapes is legitimate JSON: refused only as a tag, by the reference parser.
    response = host.invoke(post_images('{"tag": "ghcr.io/acme/app:\\ud83d\\ude00"}'))

    assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions="tag: invalid tag")


def test_an_oversized_body_is_refused_before_it_is_parsed(host: Host) -> None:
    body = json.dumps({"tag": "ghcr.io/acme/app:1", "padding": "x" * (3 * 1024 * 1024)})

    response = host.invoke(post_images(body))

    assert_anchore_error(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, mentions="exceeds 2097152 bytes")
    assert host.starter.requests == []


# ---- 500s: a request id, never a path --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "error_type"),
    [
        (OSError(5, "Input/output error", "/var/lib/portwarden/home/portwarden.db"), "InternalServerError"),
        (StoreError("cannot read /tmp/portwarden/cache/ab/cd.json"), "StoreError"),
    ],
    ids=["unexpected", "domain"],
)
def test_a_500_body_carries_the_request_id_and_no_path(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    error_type: str,
) -> None:
    # Given a host whose catalog fails with an error naming an internal file
    with LocalStore(tmp_path / "home") as store:
        dependencies = ApiDependencies(
            catalog=FailingCatalog(error),  # type: ignore[arg-type]
            analyses=store.analyses,
            evaluations=store.evaluations,
        )
        host = Host(load_handler(monkeypatch, dependencies), RecordingStarter())
        # When a route reaches it
        with caplog.at_level(logging.ERROR, logger="portwarden.api"):
            response = host.invoke(get("/images"))

    # Then the client gets a 500 with the request id and nothing from the error
    body = assert_anchore_error(response, HTTPStatus.INTERNAL_SERVER_ERROR, mentions=REQUEST_ID)
    assert body["error_type"] == error_type
    assert "/var/lib" not in response["body"] and "/tmp" not in response["body"]
    assert "Traceback" not in response["body"]
    # And the log has the error, with its traceback, under that request id
    logged = [record for record in caplog.records if REQUEST_ID in record.getMessage()]
    assert logged and logged[0].exc_info is not None and logged[0].exc_info[1] is error


# ---- POST /images: platform and reference validated before anything starts --------------------------------


@pytest.mark.parametrize(
    "platform",
    [
        "beos/ppc",
        "linux/sparc",
        "linux/arm64/v99",
        "linux/386/v2",
        "linux",
        "linux/amd64/v3/extra",
        "linux//amd64",
        "Linux/AMD64",
        "",
        "linux/amd64" + " " * 300,
    ],
)
def test_post_images_refuses_an_unknown_platform_naming_the_field(host: Host, platform: str) -> None:
    response = host.invoke(post_images(json.dumps({"tag": "ghcr.io/acme/app:1", "platform": platform})))

    body = assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions="platform: ")
    assert body["error_type"] == "InvalidPlatformError"
    assert host.starter.requests == []


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64/v8", "linux/arm/v7", "windows/amd64"])
def test_post_images_accepts_published_platforms(host: Host, platform: str) -> None:
    response = host.invoke(post_images(json.dumps({"tag": "ghcr.io/acme/app:1", "platform": platform})))

    assert response["statusCode"] == HTTPStatus.ACCEPTED, response["body"]
    assert [request.platform for request in host.starter.requests] == [platform]


@pytest.mark.parametrize(
    ("field", "reference"),
    [
        ("tag", "ghcr.io/acme/" + "a" * 300 + ":1"),
        ("source", "registry:ghcr.io/acme/" + "a" * 300),
        ("tag", "ghcr.io/acme/app:" + "t" * 129),
        ("source", "ghcr.io/Acme/App:1"),
    ],
    ids=["long-name-tag", "long-name-source", "long-tag", "uppercase"],
)
def test_post_images_refuses_a_reference_docker_would_refuse_naming_the_field(
    host: Host, field: str, reference: str
) -> None:
    response = host.invoke(post_images(json.dumps({field: reference})))

    body = assert_anchore_error(response, HTTPStatus.BAD_REQUEST, mentions=f"{field}: ")
    assert body["error_type"] == "InvalidReferenceError"
    assert host.starter.requests == []
