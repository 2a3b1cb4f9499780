"""The API app gets its ports from the host that builds it: no route reaches for an AWS adapter.

Hosts here are the local SQLite stores and an in-memory starter, which is what a non-Lambda host
(``portwarden serve``) injects; the Lambda host is covered by the integration tests in moto.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from portwarden.adapters.local.sqlite import LocalStore
from portwarden.api.app import create_app
from portwarden.api.dependencies import ApiDependencies, DependencyProvider
from portwarden.core.model.records import AnalysisStatus, ImageRecord
from portwarden.core.ports import AnalysisStart, AnalysisStarter
from portwarden.core.services.acquire import ImageAccess
from portwarden.core.services.pipeline import AnalysisRequest
from tests.support.memory_registry import MemoryRegistry
from tests.support.ocibuild import file, single_layer_image
from tests.unit.test_api_app import FakeLambdaContext, load_api_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32


class RecordingStarter:
    """An ``AnalysisStarter`` that keeps what it was asked to start."""

    def __init__(self) -> None:
        self.requests: list[AnalysisRequest] = []

    def start(self, request: AnalysisRequest, *, name: str | None = None) -> AnalysisStart:
        self.requests.append(request)
        return AnalysisStart(execution_id=f"local-{len(self.requests)}", started=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    with LocalStore(tmp_path / "home") as local:
        yield local


def provider_for(store: LocalStore, starter: AnalysisStarter | None) -> DependencyProvider:
    dependencies = ApiDependencies(
        catalog=store.catalog, analyses=store.analyses, evaluations=store.evaluations, starter=starter
    )
    return lambda: dependencies


def request(method: str, path: str, body: Any = None) -> dict[str, Any]:
    event = copy.deepcopy(load_api_event("get-health.json"))
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
    event["body"] = None if body is None else json.dumps(body)
    return event


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_post_images_starts_the_analysis_through_the_injected_starter(store: LocalStore) -> None:
    # Given an app built by a non-Lambda host with its own starter and registry access
    registry = MemoryRegistry()
    digest = registry.push("ghcr.io", "acme/app", "1.2", single_layer_image([file("etc/motd", "hi")]))
    starter = RecordingStarter()
    dependencies = ApiDependencies(
        catalog=store.catalog,
        analyses=store.analyses,
        evaluations=store.evaluations,
        starter=starter,
        subscriptions=store.subscriptions,
        image_access=lambda _account: ImageAccess(registry_client=lambda _ref: registry),
    )
    app = create_app(lambda: dependencies)
    # When an image is submitted
    response = app.resolve(request("POST", "/images", {"tag": "ghcr.io/acme/app:1.2"}), FakeLambdaContext())  # type: ignore[arg-type]
    # Then the tag was resolved, the image recorded, and the host's starter asked for that digest
    assert response["statusCode"] == HTTPStatus.OK, response["body"]
    assert [image["imageDigest"] for image in body_of(response)] == [digest]
    assert [r.source for r in starter.requests] == [f"registry:ghcr.io/acme/app@{digest}"]
    assert starter.requests[0].repo_tag == "ghcr.io/acme/app:1.2"


def test_a_read_only_host_cannot_start_analyses(store: LocalStore) -> None:
    app = create_app(provider_for(store, None))

    response = app.resolve(request("POST", "/images", {"tag": "ghcr.io/acme/app:1.2"}), FakeLambdaContext())  # type: ignore[arg-type]

    assert response["statusCode"] == HTTPStatus.INTERNAL_SERVER_ERROR


def test_lookups_read_the_injected_catalog(store: LocalStore) -> None:
    store.catalog.put_image(
        ImageRecord(
            image_digest=DIGEST,
            analysis_status=AnalysisStatus.ANALYZED,
            repo_tags=("ghcr.io/acme/app:1.2",),
            created_at=datetime(2026, 1, 2, tzinfo=UTC),
        )
    )
    app = create_app(provider_for(store, None))

    listed = app.resolve(request("GET", "/images"), FakeLambdaContext())  # type: ignore[arg-type]

    assert listed["statusCode"] == HTTPStatus.OK
    assert [image["imageDigest"] for image in body_of(listed)] == [DIGEST]


def test_two_apps_in_one_process_each_serve_their_own_dependencies(tmp_path: Path) -> None:
    # Given two apps in one process (the routers are shared), each with a catalog of its own image
    with LocalStore(tmp_path / "a") as first, LocalStore(tmp_path / "b") as second:
        for local, digest in ((first, DIGEST), (second, OTHER_DIGEST)):
            local.catalog.put_image(ImageRecord(image_digest=digest, created_at=datetime.now(UTC)))
        first_app = create_app(provider_for(first, None))
        second_app = create_app(provider_for(second, None))

        # When they serve requests in turn
        answers = [
            (name, app.resolve(request("GET", "/images"), FakeLambdaContext()))  # type: ignore[arg-type]
            for _ in range(3)
            for name, app in (("first", first_app), ("second", second_app))
        ]

    # Then each answered from its own catalog, not from the app created last
    expected = {"first": [DIGEST], "second": [OTHER_DIGEST]}
    for name, response in answers:
        assert [image["imageDigest"] for image in body_of(response)] == expected[name]


def test_an_app_without_dependencies_serves_only_what_needs_none() -> None:
    app = create_app()

    health = app.resolve(request("GET", "/health"), FakeLambdaContext())  # type: ignore[arg-type]
    images = app.resolve(request("GET", "/images"), FakeLambdaContext())  # type: ignore[arg-type]

    assert health["statusCode"] == HTTPStatus.OK
    # A host's wiring mistake is a bug: a 500 with the request id to find it in the log.
    assert images["statusCode"] == HTTPStatus.INTERNAL_SERVER_ERROR
    assert body_of(images)["error_type"] == "InternalServerError"
    assert "without dependencies" not in images["body"]
