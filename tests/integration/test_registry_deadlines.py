"""Overall deadlines for registry reads: a trickling or silent registry cannot hold an image read open.

Per-request read timeouts never fire when a server sends one byte at a time, and retries multiply a
silent server's cost; the client's ``request_deadline`` and the core's ``max_image_read_seconds``
bound the wall-clock time, and the error says which host and what timed out. Every test here ends
in a few seconds.
"""

from __future__ import annotations

import json
import time

import pytest

from portwarden.adapters.http.registry import HttpRegistryClient, RetryPolicy
from portwarden.core.errors import RegistryUnavailableError
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.image.manifest import Descriptor
from portwarden.core.image.reference import ImageReference, SourceSpec
from portwarden.core.image.sources import RegistrySource
from tests.support.scripted_server import ScriptedResponse, scripted_server

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_PATH = "/v2/team/app/manifests/1"
MANIFEST_BODY = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "padding": "x" * 200}).encode()
BLOB_DIGEST = "sha256:" + "ab" * 32
RETRIES = RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.01)


def client(host: str, deadline: float) -> HttpRegistryClient:
    return HttpRegistryClient(
        insecure_registries=[host], retry=RETRIES, read_timeout=60, request_deadline=deadline
    )


def test_a_trickled_manifest_stops_at_the_request_deadline() -> None:
    trickle = ScriptedResponse(200, MANIFEST_BODY, {"Content-Type": OCI_MANIFEST}, trickle_seconds=0.2)
    with scripted_server({MANIFEST_PATH: [trickle]}) as server:
        host = server.host
        started = time.monotonic()
        with pytest.raises(RegistryUnavailableError) as raised:
            client(host, 1.0).fetch_manifest(ImageReference.parse(f"{host}/team/app:1"), ["*/*"])
        elapsed = time.monotonic() - started
    message = str(raised.value)
    assert host in message and "manifest" in message and "request deadline of 1 s" in message
    # One read of a byte every 0.2 s would take 40 s for this body; the deadline cuts it at 1 s.
    assert elapsed < 3


def test_a_silent_registry_costs_one_deadline_not_every_retry() -> None:
    silent = ScriptedResponse(200, MANIFEST_BODY, stall_seconds=30)
    with scripted_server({MANIFEST_PATH: [silent]}) as server:
        host = server.host
        started = time.monotonic()
        with pytest.raises(RegistryUnavailableError) as raised:
            client(host, 1.0).fetch_manifest(ImageReference.parse(f"{host}/team/app:1"), ["*/*"])
        elapsed = time.monotonic() - started
        requests_made = len(server.requests_to(MANIFEST_PATH))
    assert host in str(raised.value) and "request deadline" in str(raised.value)
    assert elapsed < 3
    assert requests_made == 1  # the deadline cut the first attempt and left no time for a retry


def test_a_trickled_layer_stops_at_the_image_deadline() -> None:
    blob_path = f"/v2/team/app/blobs/{BLOB_DIGEST}"
    trickle = ScriptedResponse(200, b"\x1f\x8b" + bytes(4000), trickle_seconds=0.1)
    with scripted_server({blob_path: [trickle]}) as server:
        host = server.host
        spec = SourceSpec.parse(f"registry:{host}/team/app:1")
        source = RegistrySource(spec, client(host, 30.0), SafetyLimits(max_image_read_seconds=1.0))
        started = time.monotonic()
        descriptor = Descriptor(mediaType="x", digest=BLOB_DIGEST, size=4002)
        with pytest.raises(RegistryUnavailableError) as raised, source.open_blob(descriptor) as stream:
            while stream.read(1 << 20):
                pass
        elapsed = time.monotonic() - started
    message = str(raised.value)
    assert f"blob {BLOB_DIGEST}" in message and host in message
    assert "max_image_read_seconds" in message
    assert elapsed < 3
