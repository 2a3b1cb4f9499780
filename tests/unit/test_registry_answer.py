"""The registry rescan's memo without a registry: what it keeps of a resolution, how it reads back,
when the environment sends the request the full way, and what its fast path does not load.
(Against a real registry: tests/integration/test_registry_memo.py.)"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

import pytest

from portwarden.cli import registry_memo
from portwarden.cli.registry_memo import FetchRecorder, ManifestFetch, RegistryAnswer
from portwarden.core.image.reference import ImageReference
from portwarden.core.image.replay import StoredAnswer
from portwarden.core.ports import FetchedManifest, RegistryClient

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
CONFIG = "sha256:" + "c" * 64
STORED = StoredAnswer((), "result-key", DIGEST_B, "rendering-id", 1000)


class _Client:
    """Answers every manifest with its name as content; counts blob opens."""

    def __init__(self) -> None:
        self.blobs: list[str] = []

    def fetch_manifest(self, ref: ImageReference, accept: object) -> FetchedManifest:
        return FetchedManifest(
            content=ref.reference.encode(), media_type="application/x-test", digest=DIGEST_A
        )

    def open_blob(self, ref: ImageReference, digest: str) -> BinaryIO:
        self.blobs.append(digest)
        return io.BytesIO(b"{}")

    def list_tags(self, ref: ImageReference) -> list[str]:
        return ["1.0"]


def _recorded(recorder: FetchRecorder, client: _Client) -> RegistryClient:
    return recorder.wrap(lambda _ref: client)(ImageReference(registry="r.example", repository="team/app"))


def test_the_resolution_is_kept_up_to_the_config_and_no_layer() -> None:
    recorder, client = FetchRecorder(), _Client()
    wrapped = _recorded(recorder, client)
    ref = ImageReference(registry="r.example", repository="team/app", tag="1.0")
    wrapped.fetch_manifest(ref, ("a/b", "c/d"))
    wrapped.fetch_manifest(ref.with_digest(DIGEST_B), ("a/b",))
    wrapped.open_blob(ref, CONFIG)
    wrapped.open_blob(ref, "sha256:" + "d" * 64)  # a layer: not part of the resolution
    wrapped.fetch_manifest(ref, ("a/b",))  # after the config: not kept
    answer = recorder.answer(STORED)
    assert answer is not None
    assert [m.reference for m in answer.manifests] == ["1.0", DIGEST_B]
    assert answer.manifests[0].accept == ("a/b", "c/d") and answer.manifests[0].reference_digest is None
    assert answer.manifests[1].reference_digest == DIGEST_B and answer.manifests[1].size == len(DIGEST_B)
    assert answer.config_digest == CONFIG and answer.registry == "r.example"
    assert (answer.result_key, answer.manifest_digest, answer.rendering) == (
        "result-key",
        DIGEST_B,
        "rendering-id",
    )
    assert client.blobs == [CONFIG, "sha256:" + "d" * 64]  # the client still served everything
    assert RegistryAnswer.from_json(answer.to_json()) == answer


@pytest.mark.parametrize("other", ["another repository", "tags listed", "no config"])
def test_a_resolution_that_cannot_be_replayed_is_not_kept(other: str) -> None:
    recorder, client = FetchRecorder(), _Client()
    wrapped = _recorded(recorder, client)
    ref = ImageReference(registry="r.example", repository="team/app", tag="1.0")
    wrapped.fetch_manifest(ref, ("a/b",))
    if other == "another repository":
        wrapped.fetch_manifest(ImageReference(registry="r.example", repository="team/other", tag="1"), ())
    if other == "tags listed":
        wrapped.list_tags(ref)
    if other != "no config":
        wrapped.open_blob(ref, CONFIG)
    assert recorder.answer(STORED) is None


def test_a_damaged_memo_reads_back_as_nothing() -> None:
    answer = RegistryAnswer(
        "r.example",
        "r.example",
        "team/app",
        (ManifestFetch("1.0", None, ("a/b",), "e" * 64, 3, "a/b", DIGEST_A),),
        CONFIG,
        "key",
        DIGEST_A,
        "rendering",
        10,
    )
    data = answer.to_json()
    assert RegistryAnswer.from_json(data) == answer
    for damaged in (
        b"",
        b"{}",
        data[: len(data) // 2],
        data.replace(b'"format":1', b'"format":2'),
        data.replace(b'"max_bytes":10', b'"max_bytes":"10"'),
        data.replace(b'"manifests":[[', b'"manifests":[[1,'),
        data.replace(b',3,"a/b"', b',"3","a/b"'),
    ):
        assert RegistryAnswer.from_json(damaged) is None, damaged


@pytest.mark.parametrize(
    ("variables", "netrc", "differs"),
    [
        ({}, False, False),
        ({"NO_PROXY": "127.0.0.1"}, False, False),
        ({"HTTPS_PROXY": "http://proxy:3128"}, False, True),
        ({"ALL_PROXY": "socks5://proxy"}, False, True),
        ({"NETRC": "/somewhere/netrc"}, False, True),
        ({}, True, True),
    ],
)
def test_what_requests_would_take_from_the_environment_sends_the_request_the_full_way(
    tmp_path: Path, variables: dict[str, str], netrc: bool, differs: bool
) -> None:
    if netrc:
        (tmp_path / ".netrc").write_text("machine r.example login a password b\n")
    environment = {"HOME": str(tmp_path), **variables}
    assert registry_memo._requests_would_differ(environment) is differs


def test_the_spellings_kept_apart_from_heavier_modules_agree() -> None:
    from portwarden.adapters.http.registry import USER_AGENT
    from portwarden.core import credentials
    from portwarden.core.image import reference

    assert registry_memo.USER_AGENT == USER_AGENT
    assert credentials.DOCKER_HUB == reference.DOCKER_HUB


def test_the_replay_loads_neither_requests_nor_pydantic(tmp_path: Path) -> None:
    """What the memo saves is what it does not load: a credential lookup included."""
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from portwarden.cli import registry_memo, stored_sbom\n"
        "from portwarden.adapters.http.credentials import build_credential_resolver\n"
        "from portwarden.adapters.aws.ecr_auth import is_ecr_host\n"
        "resolver = build_credential_resolver(Path(sys.argv[1]), Path(sys.argv[1]) / 'config.json')\n"
        "assert resolver.lookup('r.example') is None and not is_ecr_host('r.example')\n"
        "request = stored_sbom.parse_plain_sbom(['sbom', 'r.example/team/app:1.0', '-o', 'json'])\n"
        "assert request is not None and registry_memo.remembered_document(request) is None\n"
        "heavy = ('requests', 'pydantic', 'typer', 'rich', 'boto3', 'portwarden.core.model.base')\n"
        "sys.stdout.write(repr([m for m in heavy if m in sys.modules]))"
    )
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert result.stdout == "[]"


def test_repeated_answer_headers_are_joined_as_requests_joins_them() -> None:
    """Two ``WWW-Authenticate`` headers are one list of challenges to the registry client (requests
    joins them); the memo must read the same list, or it could answer a challenge the client would not."""
    import http.client
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="r"')
            self.send_header("WWW-Authenticate", 'Bearer realm="http://127.0.0.1/token"')
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no")

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        status, headers, body = registry_memo._exchange(connection, "/v2/", {}, 100)
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    assert (status, body) == (401, b"no")
    assert headers["www-authenticate"] == 'Basic realm="r", Bearer realm="http://127.0.0.1/token"'
