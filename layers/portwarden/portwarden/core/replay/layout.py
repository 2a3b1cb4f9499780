"""An OCI layout directory resolved as ``image.sources.OciLayoutSource`` resolves it, without the models.

What the full resolution does for an ``oci-dir:`` source with no platform asked for, step for step:
the ``oci-layout`` file must exist; ``index.json`` (at most ``max_manifest_bytes``) is the layout's
own index, its one image taken when it names no platform, else the ``linux/amd64`` one (a missing
variant on either side matches); the manifest it names is read (capped, checked against its digest)
and must be an image manifest (schema 2, known layer and config media types); the config is read
(at most ``max_config_bytes``, checked against its digest). Every document is held to the shape the
models accept, more strictly: a value the models would coerce (a number written as a string, a
field spelled with its Python name), an index inside the index, or anything the full resolution
would refuse answers None, and the caller resolves the layout in full (which then says what is
wrong, or handles what is merely unusual). What is accepted gives the same image, the same reads
(``replay.LayoutRead``, in the same order) and, through ``image_member``, the same ``image``
member as the models' dumps (``tests/unit/replay`` compares them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portwarden.core.image.replay import LayoutRead

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
_INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
_CONFIG_TYPES = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
# ``manifest.LAYER_COMPRESSION``'s media types (a test holds the two to the same set).
LAYER_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)
_GENERIC_TYPES = ("", "application/json", "application/octet-stream", "text/plain")
_DIGEST_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = frozenset("0123456789abcdef")
# The models accept a field under its Python name too (``populate_by_name``): a document that uses
# one is left to them.
_DESCRIPTOR_NAMES = frozenset({"media_type"})
_PLATFORM_NAMES = frozenset({"os_version"})
_DOCUMENT_NAMES = frozenset({"schema_version", "media_type"})
_CONTAINER_NAMES = frozenset(
    {"user", "env", "cmd", "entrypoint", "working_dir", "exposed_ports", "labels", "volumes", "stop_signal"}
)
_CONTAINER_STRINGS = {"User": "user", "WorkingDir": "working_dir", "StopSignal": "stop_signal"}
_CONTAINER_LISTS = {"Env": "env", "Cmd": "cmd", "Entrypoint": "entrypoint"}


class _Refused(Exception):
    """The document is outside what this module reproduces: the full resolution takes it."""


@dataclass(frozen=True)
class LayoutLimits:
    max_manifest_bytes: int
    max_config_bytes: int


@dataclass(frozen=True)
class LayoutImage:
    """The image a layout directory resolved to (``sources.ResolvedImage``'s facts, as plain data)."""

    location: str
    manifest_digest: str
    # The manifest as the model dumps it (by alias, None left out), and its layers' descriptors.
    manifest: dict[str, Any]
    layers: tuple[str, ...]  # the layers' digests, in order
    config_digest: str
    diff_ids: tuple[str, ...]
    # ``manifest.ImageConfig``'s dump (history left out) and its history entries' dumps.
    config: dict[str, Any]
    history: list[dict[str, Any]]
    platform: str
    reads: tuple[LayoutRead, ...]

    def source(self) -> dict[str, Any]:
        """``analysis.AnalysisSource``'s fields for this image (``plan.analysis_source``)."""
        return {
            "type": "oci-dir",
            "reference": None,
            "location": self.location,
            "manifest_digest": self.manifest_digest,
            "config_digest": self.config_digest,
            "index_digest": None,
            "platform": self.platform,
        }


def resolve_layout(location: str, limits: LayoutLimits) -> LayoutImage | None:
    """The image of the layout directory ``location`` (no platform asked for), or None when the full
    resolution is to take it (see the module docstring)."""
    try:
        return _resolve(location, limits)
    except (_Refused, OSError, ValueError, UnicodeDecodeError):
        return None


def _resolve(location: str, limits: LayoutLimits) -> LayoutImage:
    root = Path(location)
    if not root.is_dir():
        raise _Refused
    reads: list[LayoutRead] = []
    present = (root / "oci-layout").is_file()
    reads.append(LayoutRead("oci-layout", present))
    if not present:
        raise _Refused
    index_bytes = _read(root, "index.json", limits.max_manifest_bytes, reads)
    index = _object(index_bytes)
    _schema1_refused(index)
    manifests = _index_manifests(index)
    if not manifests:
        raise _Refused
    if len(manifests) == 1 and manifests[0].get("platform") is None:
        chosen = manifests[0]
    else:
        chosen = _linux_amd64(manifests)
    digest = chosen["digest"]
    content = _read(root, _blob_path(digest), limits.max_manifest_bytes, reads)
    _verify(content, digest)
    document = _object(content)
    media_type = _detected(document, chosen["mediaType"])
    if media_type not in _MANIFEST_TYPES:
        raise _Refused  # an index inside the layout's index: the full resolution walks it
    manifest = _manifest(document)
    config_digest = manifest["config"]["digest"]
    config_bytes = _read(root, _blob_path(config_digest), limits.max_config_bytes, reads)
    _verify(config_bytes, config_digest)
    config_document = _config_document(_object(config_bytes))
    layers = tuple(layer["digest"] for layer in manifest["layers"])
    diff_ids = tuple(config_document["rootfs"]["diff_ids"])
    if len(diff_ids) != len(layers):
        raise _Refused
    return LayoutImage(
        location=location,
        manifest_digest=digest,
        manifest=manifest,
        layers=layers,
        config_digest=config_digest,
        diff_ids=diff_ids,
        config=_image_config(config_document),
        history=config_document["history"],
        platform=_platform_text(config_document),
        reads=tuple(reads),
    )


def _read(root: Path, relative: str, cap: int, reads: list[LayoutRead]) -> bytes:
    path = root / relative
    if not path.is_file():
        raise _Refused
    with path.open("rb") as handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise _Refused
    reads.append(LayoutRead.of_bytes(relative, data))
    return data


def _split_digest(digest: object) -> tuple[str, str]:
    if not isinstance(digest, str):
        raise _Refused
    algorithm, _, hexdigest = digest.partition(":")
    if len(hexdigest) != _DIGEST_LENGTHS.get(algorithm, -1) or not set(hexdigest) <= _HEX:
        raise _Refused
    return algorithm, hexdigest


def _blob_path(digest: str) -> str:
    algorithm, hexdigest = _split_digest(digest)
    return f"blobs/{algorithm}/{hexdigest}"


def _verify(data: bytes, digest: str) -> None:
    algorithm, hexdigest = _split_digest(digest)
    if hashlib.new(algorithm, data).hexdigest() != hexdigest:
        raise _Refused


def _object(content: bytes) -> dict[str, Any]:
    data = json.loads(content)
    if not isinstance(data, dict):
        raise _Refused
    return data


def _schema1_refused(data: dict[str, Any]) -> None:
    if data.get("schemaVersion") == 1:
        raise _Refused


def _detected(data: dict[str, Any], declared: str) -> str:
    """``manifest.detect_media_type`` for a document the layout's index declared as ``declared``."""
    media_type = declared.split(";")[0].strip()
    if media_type in _GENERIC_TYPES:
        inner = data.get("mediaType")
        media_type = inner if isinstance(inner, str) else ""
    if not media_type:
        if data.get("schemaVersion") == 1:
            raise _Refused
        if "manifests" in data:
            media_type = OCI_INDEX
        elif "layers" in data and "config" in data:
            media_type = OCI_MANIFEST
    if media_type in _SCHEMA1 or data.get("schemaVersion") == 1:
        raise _Refused
    if media_type not in _MANIFEST_TYPES + _INDEX_TYPES:
        raise _Refused
    return media_type


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _Refused
    return value


def _optional_string(value: object) -> str | None:
    return None if value is None else _string(value)


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Refused
    return value


def _no_python_names(data: dict[str, Any], names: frozenset[str]) -> None:
    if not names.isdisjoint(data):
        raise _Refused


def _platform(data: object) -> dict[str, Any]:
    """``manifest.Platform``'s dump by alias, None left out."""
    if not isinstance(data, dict):
        raise _Refused
    _no_python_names(data, _PLATFORM_NAMES)
    platform: dict[str, Any] = {
        "architecture": _string(data.get("architecture")),
        "os": _string(data.get("os")),
    }
    for key in ("variant", "os.version"):
        value = _optional_string(data.get(key))
        if value is not None:
            platform[key] = value
    return platform


def _descriptor(data: object) -> dict[str, Any]:
    """``manifest.Descriptor``'s dump by alias, None left out (``mediaType`` defaults to "")."""
    if not isinstance(data, dict):
        raise _Refused
    _no_python_names(data, _DESCRIPTOR_NAMES)
    size = _integer(data.get("size"))
    if size < 0:
        raise _Refused
    descriptor: dict[str, Any] = {
        "mediaType": _string(data.get("mediaType", "")),
        "digest": _string(data.get("digest")),
        "size": size,
    }
    if data.get("platform") is not None:
        descriptor["platform"] = _platform(data["platform"])
    annotations = data.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
            raise _Refused
        descriptor["annotations"] = dict(annotations)
    return descriptor


def _index_manifests(data: dict[str, Any]) -> list[dict[str, Any]]:
    """``manifest.parse_index``: the index's descriptors, each as its dump."""
    _no_python_names(data, _DOCUMENT_NAMES)
    _integer(data.get("schemaVersion"))
    _optional_string(data.get("mediaType"))
    manifests = data.get("manifests")
    if not isinstance(manifests, list):
        raise _Refused
    return [_descriptor(item) for item in manifests]


def _linux_amd64(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """``manifest.select_platform`` for ``linux/amd64`` (no variant asked for)."""
    loose = None
    for descriptor in manifests:
        platform = descriptor.get("platform")
        if platform is None or platform["os"] == "unknown":
            continue
        if platform["os"] != "linux" or platform["architecture"] != "amd64":
            continue
        if platform.get("variant") is None:
            return descriptor
        if loose is None:
            loose = descriptor
    if loose is None:
        raise _Refused
    return loose


def _manifest(data: dict[str, Any]) -> dict[str, Any]:
    """``manifest.parse_manifest``'s checks, and the model's dump (by alias, None left out)."""
    _no_python_names(data, _DOCUMENT_NAMES)
    schema_version = _integer(data.get("schemaVersion"))
    if schema_version != 2:
        raise _Refused
    dump: dict[str, Any] = {"schemaVersion": schema_version}
    media_type = _optional_string(data.get("mediaType"))
    if media_type is not None:
        dump["mediaType"] = media_type
    dump["config"] = _descriptor(data.get("config"))
    layers = data.get("layers")
    if not isinstance(layers, list):
        raise _Refused
    dump["layers"] = [_descriptor(layer) for layer in layers]
    for layer in dump["layers"]:
        _split_digest(layer["digest"])
        if layer["mediaType"] not in LAYER_TYPES:
            raise _Refused
    config_type = dump["config"]["mediaType"]
    if config_type and config_type not in _CONFIG_TYPES:
        raise _Refused
    return dump


def _config_document(data: dict[str, Any]) -> dict[str, Any]:
    """``manifest.ImageConfigDocument``'s fields, checked: the top-level strings, the container
    config (fields by their aliases), ``rootfs`` and the history entries' dumps (None left out)."""
    document: dict[str, Any] = {
        key: _optional_string(data.get(key)) for key in ("architecture", "os", "variant", "created", "author")
    }
    container = data.get("config")
    document["config"] = None if container is None else _container(container)
    rootfs = data.get("rootfs")
    if not isinstance(rootfs, dict):
        raise _Refused
    _string(rootfs.get("type"))
    diff_ids = rootfs.get("diff_ids", [])
    if not isinstance(diff_ids, list):
        raise _Refused
    document["rootfs"] = {"diff_ids": [_string(diff_id) for diff_id in diff_ids]}
    history = data.get("history", [])
    if not isinstance(history, list):
        raise _Refused
    document["history"] = [_history_entry(entry) for entry in history]
    return document


def _history_entry(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Refused
    entry: dict[str, Any] = {}
    for key in ("created", "created_by", "comment", "author"):
        value = _optional_string(data.get(key))
        if value is not None:
            entry[key] = value
    empty_layer = data.get("empty_layer", False)
    if not isinstance(empty_layer, bool):
        raise _Refused
    entry["empty_layer"] = empty_layer
    return entry


def _container(data: object) -> dict[str, Any]:
    """``manifest.ContainerConfig``'s fields (by their Python names)."""
    if not isinstance(data, dict):
        raise _Refused
    _no_python_names(data, _CONTAINER_NAMES)
    container: dict[str, Any] = {}
    for alias, name in _CONTAINER_STRINGS.items():
        container[name] = _optional_string(data.get(alias))
    for alias, name in _CONTAINER_LISTS.items():
        value = data.get(alias)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise _Refused
        container[name] = value
    for alias, name in (("ExposedPorts", "exposed_ports"), ("Volumes", "volumes"), ("Labels", "labels")):
        value = data.get(alias)
        if value is not None and not isinstance(value, dict):
            raise _Refused
        container[name] = value
    labels = container["labels"]
    if labels is not None and not all(isinstance(v, str) for v in labels.values()):
        raise _Refused
    return container


def _image_config(document: dict[str, Any]) -> dict[str, Any]:
    """``manifest.ImageConfig.from_document``'s dump (mode json), its history left out."""
    container = document["config"] or {}
    return {
        "architecture": document["architecture"],
        "os": document["os"],
        "created": document["created"],
        "env": list(container.get("env") or ()),
        "cmd": container.get("cmd"),
        "entrypoint": container.get("entrypoint"),
        "user": container.get("user") or None,
        "working_dir": container.get("working_dir") or None,
        "exposed_ports": sorted(container.get("exposed_ports") or {}),
        "labels": dict(container.get("labels") or {}),
    }


def _platform_text(document: dict[str, Any]) -> str:
    """``sources._platform_text`` with no platform asked for."""
    os_name, architecture, variant = document["os"], document["architecture"], document["variant"]
    if not (os_name and architecture):
        return "linux/amd64"
    return f"{os_name}/{architecture}/{variant}" if variant else f"{os_name}/{architecture}"


_NOP = "/bin/sh -c #(nop) "
_SHELL = "/bin/sh -c "


def dockerfile_from_history(history: Iterable[Mapping[str, Any]]) -> str:
    """A Dockerfile guessed from the image history, the way Anchore reconstructs one."""
    lines = []
    for entry in history:
        created_by = str(entry.get("created_by") or "").strip()
        if not created_by:
            continue
        if created_by.endswith("# buildkit"):
            created_by = created_by[: -len("# buildkit")].rstrip()
        if created_by.startswith(_NOP):
            instruction = created_by[len(_NOP) :].strip()
        elif created_by.startswith(_SHELL):
            instruction = "RUN " + created_by[len(_SHELL) :].strip()
        elif created_by.split(" ", 1)[0].isupper():
            instruction = created_by
        else:
            instruction = "RUN " + created_by
        lines.append(instruction)
    return "\n".join(lines) + ("\n" if lines else "")


def image_member(image: LayoutImage, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """``analysis.ImageMetadata``'s dump for ``image`` with its layers' summaries (``layers``)."""
    return {
        "config": image.config,
        "history": image.history,
        "dockerfile": dockerfile_from_history(image.history),
        "manifest": image.manifest,
        "layers": layers,
    }
