"""Image acquisition end to end through a real registry (Debian's docker-registry on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portwarden.core.errors import DigestMismatchError, PlatformNotFoundError, RegistryAuthError
from portwarden.core.image.reference import ImageReference
from portwarden.core.services.acquire import ImageAccess, inspect_image, list_files
from portwarden.core.services.analyze import analyze_image
from tests.support.ocibuild import (
    ConfigSpec,
    build_image,
    build_index,
    build_layer,
    file,
    opaque,
    raw_entry,
    whiteout,
)
from tests.support.registry import RunningRegistry, push_image

pytestmark = pytest.mark.integration


def access_for(registry: RunningRegistry, authenticated: bool = True) -> ImageAccess:
    client = registry.client(registry.credential() if authenticated else None)
    return ImageAccess(registry_client=lambda _ref: client)


def layered_image() -> object:
    base = build_layer(
        [
            file("etc/os-release", "ID=alpine\nVERSION_ID=3.20.1\n"),
            file("lib/apk/db/installed", "P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nL:MIT\n\n"),
            file("etc/motd", "welcome"),
            file("var/cache/a", "1"),
            file("var/cache/b", "2"),
        ]
    )
    top = build_layer(
        [
            whiteout("etc/motd"),
            opaque("var/cache"),
            file("var/cache/c", "3"),
            raw_entry("../../escape", "x"),
            raw_entry("usr/bin/sudo", "s", mode=0o4755),
        ]
    )
    return build_image([base, top], ConfigSpec(cmd=("/bin/sh",)))


def test_basic_auth_registry_files_and_packages(basic_auth_registry: RunningRegistry) -> None:
    image = layered_image()
    reference = push_image(image, basic_auth_registry, "team/app", "1.0")  # type: ignore[arg-type]
    listing = list_files(reference, access_for(basic_auth_registry))
    paths = {f.path: f for f in listing.files}
    assert "/etc/motd" not in paths and "/var/cache/a" not in paths
    assert "/var/cache/c" in paths and "/escape" not in paths
    assert paths["/usr/bin/sudo"].mode == "4755"
    assert any("climbs out" in w for w in listing.warnings)
    assert listing.source.manifest_digest == image.digest  # type: ignore[attr-defined]
    analysis = analyze_image(reference, access_for(basic_auth_registry))
    assert [(p.name, p.version, p.type.value) for p in analysis.packages] == [("musl", "1.2.5-r0", "apk")]


def test_wrong_credentials_are_refused_without_leaking(basic_auth_registry: RunningRegistry) -> None:
    reference = push_image(layered_image(), basic_auth_registry, "team/app", "1.0")  # type: ignore[arg-type]
    with pytest.raises(RegistryAuthError):
        inspect_image(reference, access_for(basic_auth_registry, authenticated=False))


def test_token_auth_registry(token_registry: RunningRegistry) -> None:
    image = layered_image()
    reference = push_image(image, token_registry, "secure/app", "v2")  # type: ignore[arg-type]
    result = inspect_image(reference, access_for(token_registry))
    assert result.manifest_digest == image.digest  # type: ignore[attr-defined]
    assert result.config.cmd == ("/bin/sh",)


def test_multi_arch_index_through_the_registry(anonymous_registry: RunningRegistry) -> None:
    amd = build_image([build_layer([file("arch", "amd64")])], ConfigSpec(architecture="amd64"))
    arm = build_image([build_layer([file("arch", "arm64")])], ConfigSpec(architecture="arm64", variant="v8"))
    index = build_index([amd, arm])
    reference = push_image(index, anonymous_registry, "multi", "latest")
    access = access_for(anonymous_registry)
    assert inspect_image(reference, access).manifest_digest == amd.digest
    arm_result = inspect_image(reference, access, platform="linux/arm64")
    assert (arm_result.manifest_digest, arm_result.source.index_digest) == (arm.digest, index.digest)
    with pytest.raises(PlatformNotFoundError, match="linux/arm64/v8"):
        inspect_image(reference, access, platform="windows/amd64")
    pinned = f"{anonymous_registry.host}/multi@{arm.digest}"
    assert inspect_image(pinned, access).platform == "linux/arm64/v8"


def test_a_reference_digest_must_match_what_the_registry_serves(anonymous_registry: RunningRegistry) -> None:
    image = layered_image()
    push_image(image, anonymous_registry, "pinned", "1")  # type: ignore[arg-type]
    other = build_image([build_layer([file("x", "y")])])
    push_image(other, anonymous_registry, "pinned", "2")
    # Ask for tag 2 while pinning tag 1's digest in the same reference: the digest wins and must verify.
    ref = ImageReference.parse(f"{anonymous_registry.host}/pinned:2@{image.digest}")  # type: ignore[attr-defined]
    assert inspect_image(str(ref), access_for(anonymous_registry)).manifest_digest == image.digest  # type: ignore[attr-defined]
    corrupted = ImageReference.parse(f"{anonymous_registry.host}/pinned@sha256:{'0' * 64}")
    with pytest.raises(Exception) as caught:
        inspect_image(str(corrupted), access_for(anonymous_registry))
    assert not isinstance(caught.value, DigestMismatchError) or "0" * 64 in str(caught.value)


def test_cli_uses_stored_credentials_and_insecure_flag(
    basic_auth_registry: RunningRegistry, tmp_path: Path
) -> None:
    reference = push_image(layered_image(), basic_auth_registry, "cli/app", "1")  # type: ignore[arg-type]
    credential = basic_auth_registry.credential()
    assert credential is not None
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home"), "DOCKER_CONFIG": str(tmp_path / "docker")}
    cli = [sys.executable, "-m", "portwarden.cli.main"]
    added = subprocess.run(
        [
            *cli,
            "registry",
            "add",
            basic_auth_registry.host,
            "--username",
            credential.username,
            "--password-stdin",
            "--insecure",
        ],
        input=credential.password + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    result = subprocess.run(
        [*cli, "files", reference, "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "/var/cache/c" in {f["path"] for f in json.loads(result.stdout)["files"]}
    assert credential.password not in result.stdout + result.stderr


def test_parallel_layer_downloads_never_share_a_session(anonymous_registry: RunningRegistry) -> None:
    # Four layers of 2 MiB random bytes, downloaded by four threads, five times over: the reader
    # verifies every digest and diff_id, no session is lent to two requests at once, and the
    # client's sessions stay as few as the requests that ever ran at once (no pile-up per pool).
    import random
    import threading
    from collections.abc import Iterator
    from contextlib import contextmanager

    from portwarden.core.image.capture import CapturePolicy
    from portwarden.core.image.limits import SafetyLimits
    from portwarden.core.image.reader import read_image
    from portwarden.core.image.reference import SourceSpec
    from portwarden.core.image.sources import RegistrySource

    rng = random.Random(4)
    layers = [build_layer([file(f"layer{n}/blob.bin", rng.randbytes(2 << 20))]) for n in range(4)]
    image = build_image(layers, ConfigSpec())
    reference = push_image(image, anonymous_registry, "parallel/app", "1")
    client = anonymous_registry.client()
    lend = client._borrowed_session
    in_use: set[int] = set()
    lock = threading.Lock()

    @contextmanager
    def exclusive() -> Iterator[object]:
        with lend() as session:
            with lock:
                assert id(session) not in in_use, "a session was lent to two requests at once"
                in_use.add(id(session))
            try:
                yield session
            finally:
                with lock:
                    in_use.discard(id(session))

    client._borrowed_session = exclusive  # type: ignore[assignment]
    limits = SafetyLimits()
    for _ in range(5):
        source = RegistrySource(SourceSpec.parse(f"registry:{reference}"), client, limits)
        resolved = source.resolve(None)
        squashed = read_image(source, resolved, capture=CapturePolicy(), limits=limits, workers=4)
        try:
            assert [layer.diff_id for layer in squashed.layers] == [layer.diff_id for layer in image.layers]
        finally:
            squashed.close()
    assert 1 <= len(client._all_sessions) <= 4
    client.close()
