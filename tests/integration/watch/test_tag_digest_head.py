"""The tag watcher's look-up: a HEAD of the manifest (no body), 429 ``Retry-After`` honoured, a
registry that omits the digest on HEAD costs one GET; and against the real registry the HEAD digest is
the digest the tag's manifest has."""

from __future__ import annotations

import hashlib

import pytest

from portwarden.adapters.http.registry import HttpRegistryClient, RetryPolicy
from portwarden.core.errors import ImageNotFoundError
from portwarden.core.image.reference import ImageReference
from tests.support.registry import RunningRegistry, push_image
from tests.support.scripted_server import ScriptedResponse, scripted_server
from tests.support.watch_images import python_image

PATH = "/v2/team/app/manifests/1"
BODY = b'{"schemaVersion": 2}'
DIGEST = "sha256:" + hashlib.sha256(BODY).hexdigest()
FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01, max_retry_after=5)


def client(host: str, sleeps: list[float]) -> HttpRegistryClient:
    return HttpRegistryClient(None, insecure_registries=[host], retry=FAST, sleep=sleeps.append)


def test_head_with_429_retry_after_then_the_digest_header() -> None:
    script = [
        ScriptedResponse(429, headers={"Retry-After": "2"}),
        ScriptedResponse(200, headers={"Docker-Content-Digest": DIGEST, "Content-Type": "application/json"}),
    ]
    with scripted_server({PATH: script}) as server:
        sleeps: list[float] = []
        digest = client(server.host, sleeps).tag_digest(ImageReference.parse(f"{server.host}/team/app:1"))
        assert digest == DIGEST
        assert [request.method for request in server.requests_to(PATH)] == ["HEAD", "HEAD"]
    assert sleeps == [2.0]


def test_a_head_without_digest_falls_back_to_one_get() -> None:
    def route(request: object) -> ScriptedResponse:
        return ScriptedResponse(200, BODY, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})

    with scripted_server({PATH: route}) as server:
        digest = client(server.host, []).tag_digest(ImageReference.parse(f"{server.host}/team/app:1"))
        assert digest == DIGEST
        assert [request.method for request in server.requests_to(PATH)] == ["HEAD", "GET"]


def test_head_against_the_real_registry(anonymous_registry: RunningRegistry) -> None:
    image = python_image("requests", "2.0.0")
    push_image(image, anonymous_registry, "team/app", "1")
    registry_client = anonymous_registry.client()
    assert registry_client.tag_digest(anonymous_registry.reference("team/app", "1")) == image.digest
    with pytest.raises(ImageNotFoundError):
        registry_client.tag_digest(anonymous_registry.reference("team/app", "missing"))
