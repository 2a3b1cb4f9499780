"""Image sources on disk (oci-dir, oci-archive, docker-archive): manifests, platforms, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portwarden.core.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    ImageSourceError,
    ManifestError,
    PlatformNotFoundError,
)
from portwarden.core.image.capture import CapturePolicy
from portwarden.core.services.acquire import ImageAccess, acquire_image, inspect_image, list_files
from tests.support.ocibuild import (
    ConfigSpec,
    build_image,
    build_index,
    build_layer,
    directory,
    file,
    hardlink,
    opaque,
    symlink,
    whiteout,
    write_docker_archive,
    write_oci_archive,
    write_oci_layout,
)

ACCESS = ImageAccess()


def two_layer_image(style: str = "oci", compression: str = "gzip") -> object:
    base = build_layer(
        [
            directory("etc"),
            file("etc/os-release", "ID=debian\nVERSION_ID=12\n"),
            file("etc/motd", "hello"),
            directory("var/cache/apt"),
            file("var/cache/apt/pkgcache.bin", "cache"),
            file("usr/bin/su", "su", mode=0o4755),
        ],
        compression,  # type: ignore[arg-type]
    )
    top = build_layer(
        [
            whiteout("etc/motd"),
            opaque("var/cache/apt"),
            file("var/cache/apt/fresh", "new"),
            symlink("usr/bin/login", "su"),
            hardlink("etc/os-release.bak", "etc/os-release"),
        ],
        compression,  # type: ignore[arg-type]
    )
    return build_image(
        [base, top],
        ConfigSpec(cmd=("sh",), user="app", exposed_ports=("80/tcp",), labels={"team": "core"}),
        style=style,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(("style", "compression"), [("oci", "gzip"), ("oci", "zstd"), ("docker", "none")])
def test_oci_dir_lists_the_squashed_filesystem(tmp_path: Path, style: str, compression: str) -> None:
    image = two_layer_image(style, compression)
    write_oci_layout(tmp_path / "layout", image)  # type: ignore[arg-type]
    listing = list_files(f"oci-dir:{tmp_path / 'layout'}", ACCESS)
    paths = {f.path: f for f in listing.files}
    assert "/etc/motd" not in paths
    assert "/var/cache/apt/pkgcache.bin" not in paths
    assert "/var/cache/apt/fresh" in paths
    assert paths["/usr/bin/su"].mode == "4755"
    assert paths["/usr/bin/login"].link_target == "su"
    assert paths["/etc/os-release.bak"].sha256 == paths["/etc/os-release"].sha256
    assert listing.source.manifest_digest == image.digest  # type: ignore[attr-defined]
    assert paths["/var/cache/apt/fresh"].layer_digest == image.layers[1].digest  # type: ignore[attr-defined]


def test_inspect_reports_config_and_layers(tmp_path: Path) -> None:
    image = two_layer_image()
    write_oci_layout(tmp_path / "layout", image)  # type: ignore[arg-type]
    result = inspect_image(f"oci-dir:{tmp_path / 'layout'}", ACCESS)
    assert result.manifest_digest == image.digest  # type: ignore[attr-defined]
    assert result.config_digest == image.config.digest  # type: ignore[attr-defined]
    assert result.platform == "linux/amd64"
    assert [layer.digest for layer in result.layers] == [layer.digest for layer in image.layers]  # type: ignore[attr-defined]
    assert result.config.cmd == ("sh",)
    assert result.config.user == "app"
    assert result.config.exposed_ports == ("80/tcp",)
    assert result.config.labels == {"team": "core"}
    assert len(result.config.history) == 2


def test_oci_archive_and_docker_archive_match_the_layout(tmp_path: Path) -> None:
    image = two_layer_image(style="docker", compression="none")
    write_oci_layout(tmp_path / "layout", image)  # type: ignore[arg-type]
    write_oci_archive(tmp_path / "image.oci.tar", image)  # type: ignore[arg-type]
    write_docker_archive(tmp_path / "image.docker.tar", image, repo_tags=("example.test/app:1.0",))  # type: ignore[arg-type]
    listings = [
        list_files(f"oci-dir:{tmp_path / 'layout'}", ACCESS),
        list_files(f"oci-archive:{tmp_path / 'image.oci.tar'}", ACCESS),
        list_files(f"docker-archive:{tmp_path / 'image.docker.tar'}", ACCESS),
    ]
    as_sets = [{(f.path, f.sha256, f.mode) for f in listing.files} for listing in listings]
    assert as_sets[0] == as_sets[1] == as_sets[2]
    # Uncompressed docker-save layers hash to the same digests a registry would show for them.
    docker = inspect_image(f"docker-archive:{tmp_path / 'image.docker.tar'}", ACCESS)
    assert [layer.digest for layer in docker.layers] == [layer.digest for layer in image.layers]  # type: ignore[attr-defined]
    assert docker.config_digest == image.config.digest  # type: ignore[attr-defined]
    assert listings[2].source.reference == "example.test/app:1.0"


def test_multi_arch_index_selects_the_platform(tmp_path: Path) -> None:
    amd = build_image([build_layer([file("arch", "amd64")])], ConfigSpec(architecture="amd64"))
    arm = build_image([build_layer([file("arch", "arm64")])], ConfigSpec(architecture="arm64", variant="v8"))
    write_oci_layout(tmp_path / "layout", build_index([amd, arm]))
    source = f"oci-dir:{tmp_path / 'layout'}"
    assert inspect_image(source, ACCESS).manifest_digest == amd.digest
    chosen = inspect_image(source, ACCESS, platform="linux/arm64")
    assert chosen.manifest_digest == arm.digest
    assert chosen.platform == "linux/arm64/v8"
    with pytest.raises(PlatformNotFoundError) as caught:
        inspect_image(source, ACCESS, platform="linux/s390x")
    assert "linux/amd64" in str(caught.value) and "linux/arm64/v8" in str(caught.value)


def _layout_with_manifest(tmp_path: Path, manifest: dict[str, object]) -> str:
    image = two_layer_image()
    layout = write_oci_layout(tmp_path / "layout", image)  # type: ignore[arg-type]
    data = json.dumps(manifest).encode()
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": manifest.get("mediaType", ""), "digest": f"sha256:{digest}", "size": len(data)}
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return f"oci-dir:{layout}"


def test_schema1_is_rejected_with_a_clear_message(tmp_path: Path) -> None:
    source = _layout_with_manifest(
        tmp_path,
        {
            "schemaVersion": 1,
            "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "name": "x",
        },
    )
    with pytest.raises(ManifestError, match="schema 1 is not supported"):
        inspect_image(source, ACCESS)


def test_unknown_layer_media_type_is_named(tmp_path: Path) -> None:
    image = two_layer_image()
    manifest = json.loads(image.manifest.data)  # type: ignore[attr-defined]
    manifest["layers"][0]["mediaType"] = "application/vnd.example.weird"
    with pytest.raises(ManifestError, match=r"application/vnd\.example\.weird"):
        inspect_image(_layout_with_manifest(tmp_path, manifest), ACCESS)


def test_helm_chart_config_is_not_an_image(tmp_path: Path) -> None:
    image = two_layer_image()
    manifest = json.loads(image.manifest.data)  # type: ignore[attr-defined]
    manifest["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
    with pytest.raises(ManifestError, match="not a container image"):
        inspect_image(_layout_with_manifest(tmp_path, manifest), ACCESS)


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"schemaVersion": 2, "layers": "x"}'])
def test_malformed_index_json_is_an_error(tmp_path: Path, body: bytes) -> None:
    layout = write_oci_layout(tmp_path / "layout", two_layer_image())  # type: ignore[arg-type]
    (layout / "index.json").write_bytes(body)
    with pytest.raises(ManifestError, match="malformed"):
        inspect_image(f"oci-dir:{layout}", ACCESS)


def test_hostile_digest_never_becomes_a_path(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", two_layer_image())  # type: ignore[arg-type]
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": "sha256:../../../etc/passwd",
                        "size": 1,
                    }
                ],
            }
        )
    )
    with pytest.raises(ManifestError, match=r"invalid digest"):
        inspect_image(f"oci-dir:{layout}", ACCESS)


def test_missing_blob_is_named(tmp_path: Path) -> None:
    image = two_layer_image()
    layout = write_oci_layout(tmp_path / "layout", image)  # type: ignore[arg-type]
    missing = image.layers[1].digest  # type: ignore[attr-defined]
    (layout / "blobs" / "sha256" / missing.split(":")[1]).unlink()
    with pytest.raises(ImageNotFoundError, match=missing.split(":")[1]):
        list_files(f"oci-dir:{layout}", ACCESS)


def test_tampered_layer_fails_digest_verification(tmp_path: Path) -> None:
    image = two_layer_image(compression="none")
    layout = write_oci_layout(tmp_path / "layout", image)  # type: ignore[arg-type]
    blob = layout / "blobs" / "sha256" / image.layers[0].digest.split(":")[1]  # type: ignore[attr-defined]
    data = bytearray(blob.read_bytes())
    data[600] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError, match=image.layers[0].digest):  # type: ignore[attr-defined]
        list_files(f"oci-dir:{layout}", ACCESS)


def test_wrong_diff_ids_are_detected(tmp_path: Path) -> None:
    layer = build_layer([file("a", "1")])
    image = build_image(
        [layer], config_overrides={"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}
    )
    write_oci_layout(tmp_path / "layout", image)
    with pytest.raises(ImageSourceError, match="diff_id"):
        list_files(f"oci-dir:{tmp_path / 'layout'}", ACCESS)


def test_layer_count_must_match_diff_ids(tmp_path: Path) -> None:
    image = build_image(
        [build_layer([file("a", "1")])], config_overrides={"rootfs": {"type": "layers", "diff_ids": []}}
    )
    write_oci_layout(tmp_path / "layout", image)
    with pytest.raises(ManifestError, match="diff_ids"):
        list_files(f"oci-dir:{tmp_path / 'layout'}", ACCESS)


def test_not_a_layout_or_archive(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageSourceError, match="not an OCI image layout"):
        inspect_image(f"oci-dir:{tmp_path / 'empty'}", ACCESS)
    (tmp_path / "junk.tar").write_bytes(b"junk" * 100)
    with pytest.raises(ImageSourceError, match="not a readable tar"):
        inspect_image(f"docker-archive:{tmp_path / 'junk.tar'}", ACCESS)
    with pytest.raises(ImageNotFoundError):
        inspect_image(f"oci-archive:{tmp_path / 'nope.tar'}", ACCESS)


def test_captured_content_is_readable_through_the_resolver(tmp_path: Path) -> None:
    write_oci_layout(tmp_path / "layout", two_layer_image())  # type: ignore[arg-type]
    image = acquire_image(f"oci-dir:{tmp_path / 'layout'}", ACCESS, CapturePolicy(("/etc/os-release",)))
    try:
        resolver = image.resolver()
        assert resolver.read_text("/etc/os-release.bak") == "ID=debian\nVERSION_ID=12\n"
    finally:
        image.close()


@pytest.mark.parametrize("kind", ["oci-dir", "docker-archive"])
def test_a_platform_a_single_platform_image_lacks_is_an_error_naming_its_platform(
    tmp_path: Path, kind: str
) -> None:
    image = build_image(
        [build_layer([file("arch", "amd64")], compression="none")], ConfigSpec(), style="docker"
    )
    if kind == "oci-dir":
        write_oci_layout(tmp_path / "image", image)
    else:
        write_docker_archive(tmp_path / "image", image)
    source = f"{kind}:{tmp_path / 'image'}"
    with pytest.raises(PlatformNotFoundError) as caught:
        inspect_image(source, ACCESS, platform="linux/arm64")
    assert str(caught.value) == "the image is linux/amd64 only: it has no image for platform linux/arm64"
    assert caught.value.available == ["linux/amd64"]
    # Asking for the platform it has, or for none, reads it.
    assert inspect_image(source, ACCESS, platform="linux/amd64").platform == "linux/amd64"
    assert inspect_image(source, ACCESS).platform == "linux/amd64"


def test_without_a_platform_a_single_platform_image_of_any_platform_is_read(tmp_path: Path) -> None:
    arm = build_image([build_layer([file("arch", "arm64")])], ConfigSpec(architecture="arm64", variant="v8"))
    write_oci_layout(tmp_path / "layout", arm)
    source = f"oci-dir:{tmp_path / 'layout'}"
    assert inspect_image(source, ACCESS).platform == "linux/arm64/v8"
    assert inspect_image(source, ACCESS, platform="linux/arm64").platform == "linux/arm64/v8"
    with pytest.raises(PlatformNotFoundError, match="linux/arm64/v8 only"):
        inspect_image(source, ACCESS, platform="linux/arm64/v7")


def test_a_docker_archive_layer_that_does_not_match_its_diff_id_is_refused(tmp_path: Path) -> None:
    # Uncompressed docker-save layers take the config's diff_id as their digest (no second read of
    # the archive): the reader must still check the bytes against it.
    import tarfile

    image = two_layer_image(style="docker", compression="none")
    archive = write_docker_archive(tmp_path / "image.tar", image)  # type: ignore[arg-type]
    layer = image.layers[1]  # type: ignore[attr-defined]
    with tarfile.open(archive) as tar:
        member = tar.getmember(layer.diff_id.split(":")[1] + ".tar")
    data = bytearray(archive.read_bytes())
    data[member.offset_data + 700] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError, match=layer.diff_id):
        list_files(f"docker-archive:{archive}", ACCESS)
