"""HttpRegistryClient against a real distribution registry (anonymous, basic, token auth) and
against a scripted local server for retries, redirects and limits."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from portwarden.adapters.http.registry import HttpRegistryClient, RetryPolicy
from portwarden.core.credentials import RegistryCredential
from portwarden.core.errors import (
    ImageNotFoundError,
    ImageSourceError,
    LimitExceededError,
    RegistryAuthError,
    RegistryUnavailableError,
)
from portwarden.core.image.manifest import ACCEPT, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from portwarden.core.image.reference import ImageReference
from tests.support.ocibuild import (
    ConfigSpec,
    Image,
    Layer,
    build_image,
    build_index,
    build_layer,
    char_device,
    directory,
    fifo,
    file,
    hardlink,
    layer_from_directory,
    opaque,
    raw_entry,
    single_layer_image,
    symlink,
    whiteout,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)
from tests.support.registry import RunningRegistry, push_image, push_layout, require_tool, run_registry
from tests.support.scripted_server import ScriptedResponse, scripted_server
from tests.support.token_issuer import TokenIssuer

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01, max_retry_after=5)


def sample_image(marker: str = "1", architecture: str = "amd64") -> Image:
    base = build_layer(
        [
            directory("etc"),
            file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'),
            symlink("bin", "usr/bin"),
        ]
    )
    app = build_layer([file("app/version.txt", f"version {marker}\n", mode=0o755)], "zstd")
    return build_image([base, app], ConfigSpec(architecture=architecture, cmd=("/app/run",)))


def read_all(client: HttpRegistryClient, ref: ImageReference, digest: str) -> bytes:
    with client.open_blob(ref, digest) as stream:
        return stream.read()


# ---- anonymous registry ----------------------------------------------------------------------------


def test_manifest_config_and_layers_come_back_byte_for_byte(anonymous_registry: RunningRegistry) -> None:
    image = sample_image()
    push_image(image, anonymous_registry, "team/app", "1.0")
    client = anonymous_registry.client()
    ref = anonymous_registry.reference("team/app", "1.0")

    fetched = client.fetch_manifest(ref, ACCEPT)
    assert fetched.media_type == OCI_MANIFEST
    assert fetched.content == image.manifest.data
    assert fetched.digest == image.digest == "sha256:" + hashlib.sha256(fetched.content).hexdigest()

    by_digest = client.fetch_manifest(ref.with_digest(image.digest).model_copy(update={"tag": None}), ACCEPT)
    assert by_digest.content == image.manifest.data

    assert read_all(client, ref, image.config.digest) == image.config.data
    for layer in image.layers:
        blob = read_all(client, ref, layer.digest)
        assert blob == layer.blob_data
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer.digest


def test_blob_stream_reads_in_chunks(anonymous_registry: RunningRegistry) -> None:
    big = build_layer([file("data/blob.bin", bytes(range(256)) * 8192)], "none")  # 2 MiB, uncompressed
    image = build_image([big])
    push_image(image, anonymous_registry, "big/blob", "v")
    ref = anonymous_registry.reference("big/blob", "v")
    digest = hashlib.sha256()
    with anonymous_registry.client().open_blob(ref, big.digest) as stream:
        while chunk := stream.read(65536):
            assert len(chunk) <= 65536
            digest.update(chunk)
    assert "sha256:" + digest.hexdigest() == big.digest


def test_multi_arch_index_is_served_and_children_resolve(
    anonymous_registry: RunningRegistry, tmp_path: Path
) -> None:
    amd64 = sample_image("amd", "amd64")
    arm64 = build_image(
        [build_layer([file("etc/os-release", "ID=alpine\n")])], ConfigSpec(architecture="arm64", variant="v8")
    )
    index = build_index([amd64, arm64])
    # Through skopeo from an OCI layout directory, the way images from disk get into a registry.
    layout = write_oci_layout(tmp_path / "layout", index, tag="multi")
    push_layout(layout, anonymous_registry, "multi/arch", "latest", source_tag="multi")
    client = anonymous_registry.client()
    ref = anonymous_registry.reference("multi/arch")

    fetched = client.fetch_manifest(ref, ACCEPT)
    assert fetched.media_type == OCI_INDEX
    assert fetched.digest == index.digest
    platforms = [m["platform"] for m in json.loads(fetched.content)["manifests"]]
    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    child = client.fetch_manifest(ref.with_digest(arm64.digest), ACCEPT)
    assert child.content == arm64.manifest.data
    assert read_all(client, ref, arm64.layers[0].digest) == arm64.layers[0].blob_data


def test_docker_schema2_media_type_is_reported(anonymous_registry: RunningRegistry) -> None:
    image = single_layer_image([file("hello.txt", "hi")], style="docker")
    push_image(image, anonymous_registry, "docker/style", "v2")
    fetched = anonymous_registry.client().fetch_manifest(
        anonymous_registry.reference("docker/style", "v2"), ACCEPT
    )
    assert fetched.media_type == DOCKER_MANIFEST
    assert fetched.digest == image.digest


def test_missing_things_are_image_not_found(anonymous_registry: RunningRegistry) -> None:
    push_image(sample_image(), anonymous_registry, "team/app", "1.0")
    client = anonymous_registry.client()
    with pytest.raises(ImageNotFoundError, match="MANIFEST_UNKNOWN"):
        client.fetch_manifest(anonymous_registry.reference("team/app", "nope"), ACCEPT)
    with pytest.raises(ImageNotFoundError, match=r"NAME_UNKNOWN|MANIFEST_UNKNOWN"):
        client.fetch_manifest(anonymous_registry.reference("no/such-repo", "1.0"), ACCEPT)
    with pytest.raises(ImageNotFoundError, match="BLOB_UNKNOWN"):
        client.open_blob(anonymous_registry.reference("team/app"), "sha256:" + "0" * 64)
    with pytest.raises(ImageNotFoundError, match="NAME_UNKNOWN"):
        client.list_tags(anonymous_registry.reference("no/such-repo"))


def test_list_tags_follows_link_pagination(anonymous_registry: RunningRegistry) -> None:
    tags = ["1.0", "1.1", "2.0", "latest", "rc"]
    image = sample_image()
    for tag in tags:
        push_image(image, anonymous_registry, "paged/repo", tag)
    ref = anonymous_registry.reference("paged/repo")
    assert sorted(anonymous_registry.client(tags_page_size=2).list_tags(ref)) == tags
    assert sorted(anonymous_registry.client().list_tags(ref)) == tags


# ---- basic auth ------------------------------------------------------------------------------------


def test_basic_auth_with_good_credentials(basic_auth_registry: RunningRegistry) -> None:
    image = sample_image()
    push_image(image, basic_auth_registry, "private/app", "1")
    client = basic_auth_registry.client(basic_auth_registry.credential())
    ref = basic_auth_registry.reference("private/app", "1")
    assert client.fetch_manifest(ref, ACCEPT).digest == image.digest
    assert read_all(client, ref, image.layers[1].digest) == image.layers[1].blob_data
    assert client.list_tags(ref) == ["1"]


def test_basic_auth_wrong_password_names_registry_not_password(basic_auth_registry: RunningRegistry) -> None:
    push_image(sample_image(), basic_auth_registry, "private/app", "1")
    wrong = RegistryCredential(username="alice", password="Not-The-Password-77")
    with pytest.raises(RegistryAuthError) as caught:
        basic_auth_registry.client(wrong).fetch_manifest(
            basic_auth_registry.reference("private/app", "1"), ACCEPT
        )
    message = str(caught.value)
    assert basic_auth_registry.host in message
    assert "Not-The-Password-77" not in message
    assert "wonderland" not in message


def test_basic_auth_without_credentials(basic_auth_registry: RunningRegistry) -> None:
    with pytest.raises(RegistryAuthError, match="no credentials"):
        basic_auth_registry.client().list_tags(basic_auth_registry.reference("private/app"))


# ---- token auth ------------------------------------------------------------------------------------


def test_token_auth_fetches_once_per_scope(token_registry: RunningRegistry) -> None:
    issuer = token_registry.token_issuer
    assert issuer is not None
    image = sample_image()
    push_image(image, token_registry, "tok/app", "1")
    push_image(image, token_registry, "tok/other", "1")
    issuer.reset_requests()

    client = token_registry.client(token_registry.credential())
    ref = token_registry.reference("tok/app", "1")
    assert client.fetch_manifest(ref, ACCEPT).digest == image.digest
    assert client.fetch_manifest(ref, ACCEPT).digest == image.digest
    assert read_all(client, ref, image.config.digest) == image.config.data
    assert client.list_tags(ref) == ["1"]
    assert len(issuer.requests) == 1
    [request] = issuer.requests
    assert request.username == "alice"
    assert request.scopes == ("repository:tok/app:pull",)
    assert request.service == issuer.service

    client.fetch_manifest(token_registry.reference("tok/other", "1"), ACCEPT)
    assert [r.scopes for r in issuer.requests] == [
        ("repository:tok/app:pull",),
        ("repository:tok/other:pull",),
    ]


def test_token_auth_wrong_password(token_registry: RunningRegistry) -> None:
    wrong = RegistryCredential(username="alice", password="guessing-Wrong-1")
    with pytest.raises(RegistryAuthError) as caught:
        token_registry.client(wrong).fetch_manifest(token_registry.reference("tok/app", "1"), ACCEPT)
    assert token_registry.host in str(caught.value)
    assert "guessing-Wrong-1" not in str(caught.value)


def test_anonymous_token_without_access_is_refused(token_registry: RunningRegistry) -> None:
    push_image(sample_image(), token_registry, "tok/app", "1")
    with pytest.raises(RegistryAuthError, match="anonymous"):
        token_registry.client().fetch_manifest(token_registry.reference("tok/app", "1"), ACCEPT)


def test_identity_token_uses_the_oauth2_refresh_grant(tmp_path: Path) -> None:
    issuer = TokenIssuer(users={"alice": "pw-alice"}, refresh_tokens={"refresh-xyz": "alice"}).start()
    try:
        with run_registry(
            tmp_path / "reg", auth="token", users={"alice": "pw-alice"}, token_issuer=issuer
        ) as registry:
            image = sample_image()
            push_image(image, registry, "oauth/app", "1")
            issuer.reset_requests()
            credential = RegistryCredential(username="<token>", password="", identity_token="refresh-xyz")
            assert (
                registry.client(credential)
                .fetch_manifest(registry.reference("oauth/app", "1"), ACCEPT)
                .digest
                == image.digest
            )
            assert [(r.method, r.username) for r in issuer.requests] == [("POST", "alice")]
    finally:
        issuer.stop()


# ---- retries, redirects and limits against a scripted server --------------------------------------

MANIFEST_PATH = "/v2/team/app/manifests/1"
MANIFEST_BODY = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode()
OK_MANIFEST = ScriptedResponse(200, MANIFEST_BODY, {"Content-Type": OCI_MANIFEST})


def scripted_client(host: str, sleeps: list[float], **options: object) -> HttpRegistryClient:
    return HttpRegistryClient(
        insecure_registries=[host],
        retry=FAST_RETRY,
        sleep=sleeps.append,
        connect_timeout=2,
        read_timeout=5,
        **options,  # type: ignore[arg-type]
    )


def test_5xx_is_retried_until_success() -> None:
    script = [ScriptedResponse(500), ScriptedResponse(502), OK_MANIFEST]
    with scripted_server({MANIFEST_PATH: script}) as server:
        sleeps: list[float] = []
        fetched = scripted_client(server.host, sleeps).fetch_manifest(
            ImageReference.parse(f"{server.host}/team/app:1"), ACCEPT
        )
        assert fetched.content == MANIFEST_BODY
        assert len(server.requests_to(MANIFEST_PATH)) == 3
    assert len(sleeps) == 2
    assert all(0 < s <= FAST_RETRY.max_delay for s in sleeps)


def test_429_honours_retry_after() -> None:
    script = [ScriptedResponse(429, b"slow down", {"Retry-After": "3"}), OK_MANIFEST]
    with scripted_server({MANIFEST_PATH: script}) as server:
        sleeps: list[float] = []
        scripted_client(server.host, sleeps).fetch_manifest(
            ImageReference.parse(f"{server.host}/team/app:1"), ACCEPT
        )
    assert sleeps == [3.0]


def test_retries_are_bounded_and_end_in_registry_unavailable() -> None:
    with scripted_server({MANIFEST_PATH: [ScriptedResponse(503, b"down")]}) as server:
        sleeps: list[float] = []
        with pytest.raises(RegistryUnavailableError, match="HTTP 503"):
            scripted_client(server.host, sleeps).fetch_manifest(
                ImageReference.parse(f"{server.host}/team/app:1"), ACCEPT
            )
        assert len(server.requests_to(MANIFEST_PATH)) == FAST_RETRY.max_attempts
    assert len(sleeps) == FAST_RETRY.max_attempts - 1


def test_dropped_connections_are_retried() -> None:
    with scripted_server({MANIFEST_PATH: [ScriptedResponse(drop=True), OK_MANIFEST]}) as server:
        sleeps: list[float] = []
        fetched = scripted_client(server.host, sleeps).fetch_manifest(
            ImageReference.parse(f"{server.host}/team/app:1"), ACCEPT
        )
        assert fetched.content == MANIFEST_BODY
    assert len(sleeps) == 1


def test_nothing_listening_is_registry_unavailable() -> None:
    with scripted_server() as server:
        host = server.host
    sleeps: list[float] = []
    with pytest.raises(RegistryUnavailableError, match="ConnectionError"):
        scripted_client(host, sleeps).fetch_manifest(ImageReference.parse(f"{host}/team/app:1"), ACCEPT)
    assert len(sleeps) == FAST_RETRY.max_attempts - 1


def test_client_errors_are_not_retried() -> None:
    with scripted_server(
        {MANIFEST_PATH: [ScriptedResponse(400, b'{"errors":[{"code":"UNSUPPORTED"}]}')]}
    ) as server:
        with pytest.raises(ImageSourceError, match="HTTP 400") as caught:
            scripted_client(server.host, []).fetch_manifest(
                ImageReference.parse(f"{server.host}/team/app:1"), ACCEPT
            )
        assert not isinstance(caught.value, ImageNotFoundError)
        assert len(server.requests_to(MANIFEST_PATH)) == 1


def test_oversized_manifest_is_refused() -> None:
    big = ScriptedResponse(200, b"{" + b" " * 5000 + b"}", {"Content-Type": OCI_MANIFEST})
    with scripted_server({MANIFEST_PATH: [big]}) as server, pytest.raises(LimitExceededError, match="1024"):
        scripted_client(server.host, [], max_manifest_bytes=1024).fetch_manifest(
            ImageReference.parse(f"{server.host}/team/app:1"), ACCEPT
        )


def test_manifest_digest_header_or_computed() -> None:
    claimed = "sha256:" + "ab" * 32
    with scripted_server(
        {
            MANIFEST_PATH: [OK_MANIFEST],
            "/v2/team/app/manifests/2": [
                ScriptedResponse(
                    200, MANIFEST_BODY, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": claimed}
                )
            ],
        }
    ) as server:
        client = scripted_client(server.host, [])
        computed = client.fetch_manifest(ImageReference.parse(f"{server.host}/team/app:1"), ACCEPT)
        assert computed.digest == "sha256:" + hashlib.sha256(MANIFEST_BODY).hexdigest()
        from_header = client.fetch_manifest(ImageReference.parse(f"{server.host}/team/app:2"), ACCEPT)
        assert from_header.digest == claimed


def test_plain_http_registry_is_not_spoken_to_over_http_unless_marked_insecure() -> None:
    with scripted_server({MANIFEST_PATH: [OK_MANIFEST]}) as server:
        client = HttpRegistryClient(retry=FAST_RETRY, sleep=lambda _: None)
        with pytest.raises(ImageSourceError, match="insecure"):
            client.fetch_manifest(ImageReference.parse(f"{server.host}/team/app:1"), ACCEPT)
        assert server.requests_to(MANIFEST_PATH) == []


def test_blob_redirect_to_another_host_drops_the_authorization_header() -> None:
    digest = "sha256:" + hashlib.sha256(b"layer bytes").hexdigest()
    blob_path = f"/v2/team/app/blobs/{digest}"
    with scripted_server({"/storage/blob": [ScriptedResponse(200, b"layer bytes")]}) as storage:
        redirect = ScriptedResponse(307, b"", {"Location": f"{storage.url}/storage/blob?sig=abc"})
        challenge = ScriptedResponse(401, b"", {"WWW-Authenticate": 'Basic realm="scripted"'})
        with scripted_server({blob_path: [challenge, redirect]}) as registry:
            credential = RegistryCredential("alice", "blob-secret")

            class Source:
                def lookup(self, registry_host: str) -> RegistryCredential | None:
                    return credential

            client = HttpRegistryClient(Source(), insecure_registries=[registry.host], retry=FAST_RETRY)
            with client.open_blob(ImageReference.parse(f"{registry.host}/team/app:1"), digest) as stream:
                assert stream.read() == b"layer bytes"
            registry_requests = registry.requests_to(blob_path)
            assert [("Authorization" in r.headers) for r in registry_requests] == [False, True]
            assert registry_requests[1].headers["Authorization"] == credential.basic_header()
        [downloaded] = storage.requests_to("/storage/blob")
        assert "Authorization" not in downloaded.headers
        assert downloaded.query == "sig=abc"


# ---- the image builder these tests rely on, checked against skopeo ---------------------------------


def skopeo_inspect(*args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [require_tool("skopeo"), "inspect", *args],
        capture_output=True,
        timeout=60,
        check=True,
    )
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


def hostile_layer() -> Layer:
    return build_layer(
        [
            raw_entry("../escape.txt", "x"),
            raw_entry("/etc/absolute", "y"),
            file("dup", "first"),
            file("dup", "second"),
            whiteout("etc/removed"),
            opaque("opt"),
            hardlink("etc/link", "dup"),
            char_device("dev/null", 1, 3),
            fifo("run/pipe"),
        ]
    )


def test_builder_output_is_deterministic_and_entries_are_as_specified() -> None:
    first, second = hostile_layer(), hostile_layer()
    assert first.digest == second.digest and first.diff_id == second.diff_id
    assert first.blob_data[4:8] == b"\0\0\0\0"  # gzip MTIME field is zero
    assert gzip.decompress(first.blob_data) == first.tar
    with tarfile.open(fileobj=io.BytesIO(first.tar)) as archive:
        members = archive.getmembers()
    assert [(m.name, m.type) for m in members] == [
        ("../escape.txt", tarfile.REGTYPE),
        ("/etc/absolute", tarfile.REGTYPE),
        ("dup", tarfile.REGTYPE),
        ("dup", tarfile.REGTYPE),
        ("etc/.wh.removed", tarfile.REGTYPE),
        ("opt/.wh..wh..opq", tarfile.REGTYPE),
        ("etc/link", tarfile.LNKTYPE),
        ("dev/null", tarfile.CHRTYPE),
        ("run/pipe", tarfile.FIFOTYPE),
    ]
    assert all(m.mtime == 0 and m.uid == 0 for m in members)
    zstd_layer = build_layer([file("a", "b")], "zstd")
    assert zstandard.ZstdDecompressor().decompress(zstd_layer.blob_data) == zstd_layer.tar


def test_declared_size_larger_than_data_makes_a_truncated_archive() -> None:
    layer = build_layer([raw_entry("huge.bin", b"tiny", declared_size=10 * 1024**3)], "none")
    with tarfile.open(fileobj=io.BytesIO(layer.tar), mode="r|") as archive:
        member = archive.next()
        assert member is not None and member.name == "huge.bin"
        assert member.size == 10 * 1024**3  # beyond ustar's 8 GiB: carried in a PAX header
        content = archive.extractfile(member)
        assert content is not None
        with pytest.raises(tarfile.ReadError):
            content.read()


def test_directory_trees_become_sorted_entries_with_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    (root / "usr" / "bin" / "tool").chmod(0o755)
    (root / "usr" / "bin" / "tool-alias").hardlink_to(root / "usr" / "bin" / "tool")
    (root / "bin").symlink_to("usr/bin")
    layer = layer_from_directory(root)
    with tarfile.open(fileobj=io.BytesIO(layer.tar)) as archive:
        members = archive.getmembers()
    assert [(m.name, m.type) for m in members] == [
        ("bin", tarfile.SYMTYPE),
        ("usr", tarfile.DIRTYPE),
        ("usr/bin", tarfile.DIRTYPE),
        ("usr/bin/tool", tarfile.REGTYPE),
        ("usr/bin/tool-alias", tarfile.LNKTYPE),
    ]
    assert members[0].linkname == "usr/bin"
    assert members[3].mode == 0o755
    assert members[4].linkname == "usr/bin/tool"
    assert layer_from_directory(root).digest == layer.digest


def test_layouts_and_archives_are_readable_by_skopeo(tmp_path: Path) -> None:
    image = build_image(
        [hostile_layer(), build_layer([file("app", "1")], "zstd")], ConfigSpec(labels={"a": "b"})
    )
    layout = write_oci_layout(tmp_path / "layout", image, tag="v1")
    inspected = skopeo_inspect(f"oci:{layout}:v1")
    assert inspected["Digest"] == image.digest
    assert inspected["Layers"] == [layer.digest for layer in image.layers]
    assert inspected["Labels"] == {"a": "b"}

    archive = write_oci_archive(tmp_path / "image.oci.tar", image, tag="v1")
    assert skopeo_inspect(f"oci-archive:{archive}:v1")["Digest"] == image.digest

    docker_image = build_image([hostile_layer()], style="docker")
    docker_archive = write_docker_archive(
        tmp_path / "image.docker.tar", docker_image, repo_tags=["demo/app:2"]
    )
    raw = skopeo_inspect("--raw", f"docker-archive:{docker_archive}")
    assert raw["config"]["digest"] == docker_image.config.digest
    # docker save stores layers uncompressed: their digests are the diff_ids.
    assert [layer["digest"] for layer in raw["layers"]] == [docker_image.layers[0].diff_id]
    with tarfile.open(docker_archive) as saved:
        names = saved.getnames()
        manifest_file = saved.extractfile("manifest.json")
        assert manifest_file is not None
        [entry] = json.loads(manifest_file.read())
    assert entry["RepoTags"] == ["demo/app:2"]
    assert entry["Config"] == docker_image.config.digest.removeprefix("sha256:") + ".json"
    assert sorted(names) == names  # deterministic order
