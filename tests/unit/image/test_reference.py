from __future__ import annotations

import pytest

from portwarden.core.errors import InvalidReferenceError
from portwarden.core.image.reference import ImageReference, SourceKind, SourceSpec

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("bitnami/redis", "docker.io", "bitnami/redis", "latest", None),
        ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/library/alpine:3.20", "docker.io", "library/alpine", "3.20", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/team/app:v1", "localhost:5000", "team/app", "v1", None),
        ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", None),
        ("ghcr.io/org/tool@" + DIGEST, "ghcr.io", "org/tool", None, DIGEST),
        ("ghcr.io/org/tool:1.0@" + DIGEST, "ghcr.io", "org/tool", "1.0", DIGEST),
        (
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:prod",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "app",
            "prod",
            None,
        ),
    ],
)
def test_references_parse_like_docker(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_docker_hub_is_reached_through_its_api_host() -> None:
    assert ImageReference.parse("alpine").api_host == "registry-1.docker.io"
    assert ImageReference.parse("quay.io/a/b").api_host == "quay.io"


def test_digest_wins_over_tag_for_fetching() -> None:
    ref = ImageReference.parse("ghcr.io/org/tool:1.0@" + DIGEST)
    assert ref.reference == DIGEST
    assert str(ref) == "ghcr.io/org/tool:1.0@" + DIGEST


@pytest.mark.parametrize(
    "text", ["", "UPPER/case", "nginx:bad tag", "nginx@sha256:short", "a//b", "nginx:" + "x" * 200, "-lead"]
)
def test_invalid_references_are_rejected_with_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        ImageReference.parse(text)


def test_names_are_limited_to_255_characters_once_normalized_as_docker_does() -> None:
    # "docker.io/library/" is 18 characters: the name itself may have 237.
    longest = ImageReference.parse("a" * 237 + ":1")
    assert len(f"{longest.registry}/{longest.repository}") == 255

    with pytest.raises(InvalidReferenceError, match="longer than 255 characters"):
        ImageReference.parse("a" * 238 + ":1")
    with pytest.raises(InvalidReferenceError, match="longer than 255 characters"):
        ImageReference.parse("ghcr.io/" + "/".join(["abcdefg"] * 32))


@pytest.mark.parametrize(
    ("text", "kind", "location"),
    [
        ("registry:alpine:3.20", SourceKind.REGISTRY, "alpine:3.20"),
        ("alpine:3.20", SourceKind.REGISTRY, "alpine:3.20"),
        ("docker-archive:img.tar", SourceKind.DOCKER_ARCHIVE, "img.tar"),
        ("oci-dir:some/dir", SourceKind.OCI_DIR, "some/dir"),
        ("oci-archive:img.oci.tar", SourceKind.OCI_ARCHIVE, "img.oci.tar"),
        ("localhost:5000/app", SourceKind.REGISTRY, "localhost:5000/app"),
    ],
)
def test_source_strings_use_syft_spelling(text: str, kind: SourceKind, location: str) -> None:
    spec = SourceSpec.parse(text)
    assert (spec.kind, spec.location) == (kind, location)


def test_source_without_location_is_an_error() -> None:
    with pytest.raises(InvalidReferenceError):
        SourceSpec.parse("oci-dir:")
