"""Manifests, indexes and image configs: Docker v2 schema 2 and OCI, parsed strictly.

Schema 1 manifests are rejected with a clear message (they are deprecated, unsigned-by-digest and
carry v1 JSON instead of a config). Unknown media types are errors that name the type.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from portwarden.core.errors import ManifestError, PlatformNotFoundError
from portwarden.core.model.base import ValueObject

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
SCHEMA1_TYPES = (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED)
# What we ask registries for, best first.
ACCEPT = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)

LAYER_COMPRESSION: dict[str, str] = {
    OCI_LAYER: "none",
    OCI_LAYER_NONDIST: "none",
    "application/vnd.docker.image.rootfs.diff.tar": "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_NONDIST_GZIP: "gzip",
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_LAYER_FOREIGN: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_NONDIST_ZSTD: "zstd",
}


class _Lenient(BaseModel):
    """Registry documents carry fields we do not model (annotations, urls…): ignore, don't fail."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)


class Platform(_Lenient):
    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = Field(default=None, alias="os.version")

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


class Descriptor(_Lenient):
    media_type: str = Field(alias="mediaType", default="")
    digest: str
    size: int = Field(ge=0)
    platform: Platform | None = None
    annotations: dict[str, str] | None = None


class Manifest(_Lenient):
    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    config: Descriptor
    layers: tuple[Descriptor, ...]


class Index(_Lenient):
    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    manifests: tuple[Descriptor, ...]


class HistoryEntry(_Lenient):
    created: str | None = None
    created_by: str | None = None
    comment: str | None = None
    author: str | None = None
    empty_layer: bool = False


class ContainerConfig(_Lenient):
    user: str | None = Field(default=None, alias="User")
    env: tuple[str, ...] | None = Field(default=None, alias="Env")
    cmd: tuple[str, ...] | None = Field(default=None, alias="Cmd")
    entrypoint: tuple[str, ...] | None = Field(default=None, alias="Entrypoint")
    working_dir: str | None = Field(default=None, alias="WorkingDir")
    exposed_ports: dict[str, Any] | None = Field(default=None, alias="ExposedPorts")
    labels: dict[str, str] | None = Field(default=None, alias="Labels")
    volumes: dict[str, Any] | None = Field(default=None, alias="Volumes")
    stop_signal: str | None = Field(default=None, alias="StopSignal")


class RootFs(_Lenient):
    type: str
    diff_ids: tuple[str, ...] = ()


class ImageConfigDocument(_Lenient):
    architecture: str | None = None
    os: str | None = None
    variant: str | None = None
    created: str | None = None
    author: str | None = None
    config: ContainerConfig | None = None
    rootfs: RootFs
    history: tuple[HistoryEntry, ...] = ()


class ImageConfig(ValueObject):
    """The parts of the image config users and policies care about, in Portwarden's spelling."""

    architecture: str | None = None
    os: str | None = None
    created: str | None = None
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    user: str | None = None
    working_dir: str | None = None
    exposed_ports: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)
    history: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_document(cls, doc: ImageConfigDocument) -> ImageConfig:
        container = doc.config or ContainerConfig()
        return cls(
            architecture=doc.architecture,
            os=doc.os,
            created=doc.created,
            env=container.env or (),
            cmd=container.cmd,
            entrypoint=container.entrypoint,
            user=container.user or None,
            working_dir=container.working_dir or None,
            exposed_ports=tuple(sorted(container.exposed_ports or {})),
            labels=dict(container.labels or {}),
            history=tuple(h.model_dump(exclude_none=True) for h in doc.history),
        )


def _load_json(content: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"malformed {what}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"malformed {what}: expected a JSON object")
    return data


def detect_media_type(content: bytes, declared: str | None) -> str:
    """The media type of a manifest document: the declared one, else the document's own, else by shape."""
    data = _load_json(content, "manifest")
    inner = data.get("mediaType")
    media_type = (declared or "").split(";")[0].strip()
    if media_type in ("", "application/json", "application/octet-stream", "text/plain"):
        media_type = inner if isinstance(inner, str) else ""
    if not media_type:
        if data.get("schemaVersion") == 1:
            media_type = DOCKER_SCHEMA1
        elif "manifests" in data:
            media_type = OCI_INDEX
        elif "layers" in data and "config" in data:
            media_type = OCI_MANIFEST
    if media_type in SCHEMA1_TYPES or data.get("schemaVersion") == 1:
        raise ManifestError(
            "Docker image manifest schema 1 is not supported (deprecated format); "
            "re-push the image with a current client to get a schema 2 or OCI manifest"
        )
    if media_type not in MANIFEST_TYPES + INDEX_TYPES:
        raise ManifestError(f"unsupported manifest media type {media_type or '(none)'!r}")
    return media_type


def parse_manifest(content: bytes) -> Manifest:
    data = _load_json(content, "image manifest")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"malformed image manifest: {_first_error(exc)}") from exc
    if manifest.schema_version != 2:
        raise ManifestError(f"unsupported manifest schemaVersion {manifest.schema_version}")
    for layer in manifest.layers:
        if layer.media_type not in LAYER_COMPRESSION:
            raise ManifestError(f"unsupported layer media type {layer.media_type!r} for {layer.digest}")
    if manifest.config.media_type and manifest.config.media_type not in CONFIG_TYPES:
        raise ManifestError(
            f"unsupported config media type {manifest.config.media_type!r} (not a container image?)"
        )
    return manifest


def parse_index(content: bytes) -> Index:
    data = _load_json(content, "image index")
    try:
        return Index.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"malformed image index: {_first_error(exc)}") from exc


def parse_config(content: bytes) -> ImageConfigDocument:
    data = _load_json(content, "image config")
    try:
        return ImageConfigDocument.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(f"malformed image config: {_first_error(exc)}") from exc


def parse_platform(text: str) -> Platform:
    """``linux/amd64``, ``linux/arm64/v8``, ``linux/arm/v7``."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ManifestError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT]")
    return Platform(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None)


def select_platform(index: Index, wanted: Platform) -> Descriptor:
    """The index entry for ``wanted``. A missing variant on either side matches any variant
    (``linux/arm64`` finds ``linux/arm64/v8``), an exact variant match wins."""
    available: list[str] = []
    loose: Descriptor | None = None
    for descriptor in index.manifests:
        platform = descriptor.platform
        if platform is None or platform.os == "unknown":
            continue  # attestation manifests and the like
        available.append(str(platform))
        if platform.os != wanted.os or platform.architecture != wanted.architecture:
            continue
        if platform.variant == wanted.variant:
            return descriptor
        if loose is None and (wanted.variant is None or platform.variant is None):
            loose = descriptor
    if loose is not None:
        return loose
    raise PlatformNotFoundError(str(wanted), sorted(set(available)))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "document"
    return f"{where}: {error['msg']}"
