"""The strict layout resolution (``core.replay.layout``) against the full one (``OciLayoutSource`` and the
models): on every layout it accepts, the same image, reads, rendering name and own members, byte for
byte; every layout outside its subset (or that the full resolution refuses) it leaves to the full
resolution (None).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from portwarden.core.image import manifest as mf
from portwarden.core.image.limits import SafetyLimits
from portwarden.core.image.reference import SourceSpec
from portwarden.core.image.rendering import rendering_id
from portwarden.core.image.sources import OciLayoutSource, layout_reads, open_source
from portwarden.core.image.stacks import FRESH_MEMBERS
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.replay.encode import compact, member
from portwarden.core.replay.layout import LAYER_TYPES, LayoutLimits, image_member, resolve_layout
from portwarden.core.sbom.native import native_members
from portwarden.core.services.analyze import image_metadata_of
from portwarden.core.services.plan import analysis_source, document_rendering

LIMITS = SafetyLimits()
STRICT = LayoutLimits(LIMITS.max_manifest_bytes, LIMITS.max_config_bytes)
LAYER_A = "sha256:" + "a" * 64
LAYER_B = "sha256:" + "b" * 64
SUMMARIES = [
    {"digest": LAYER_A, "diff_id": "sha256:" + "c" * 64, "size": 10, "uncompressed_size": 20, "entries": 3},
    {"digest": LAYER_B, "diff_id": "sha256:" + "d" * 64, "size": 11, "uncompressed_size": 21, "entries": 4},
]
AT = "2026-12-04T12:00:00+00:00"


def _blob(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def _config() -> dict[str, Any]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [SUMMARIES[0]["diff_id"], SUMMARIES[1]["diff_id"]]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:x in / "}],
    }


def _manifest(config_digest: str, config_size: int, config_type: str = mf.OCI_CONFIG) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": mf.OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": config_digest, "size": config_size},
        "layers": [
            {"mediaType": mf.OCI_LAYER_GZIP, "digest": LAYER_A, "size": 10},
            {"mediaType": mf.OCI_LAYER_GZIP, "digest": LAYER_B, "size": 11},
        ],
    }


def write_layout(
    root: Path,
    *,
    config: dict[str, Any] | None = None,
    manifest: Any = None,
    descriptor: dict[str, Any] | None = None,
    index: Any = None,
    raw_config: bytes | None = None,
) -> Path:
    """A layout whose documents are given (or derived from the defaults above) as JSON values; a
    callable ``manifest`` or ``index`` changes the default one in place."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    config_bytes = raw_config if raw_config is not None else json.dumps(config or _config()).encode()
    config_digest = _blob(root, config_bytes)
    document = _manifest(config_digest, len(config_bytes))
    if callable(manifest):
        manifest(document)
    elif manifest is not None:
        document = manifest
    manifest_bytes = json.dumps(document).encode()
    manifest_digest = _blob(root, manifest_bytes)
    entry = {"mediaType": mf.OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes)}
    entry.update(descriptor or {})
    top = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [entry]}
    if callable(index):
        index(top)
    elif index is not None:
        top = index
    (root / "index.json").write_text(json.dumps(top))
    return root


def _full(root: Path) -> tuple[Any, Any]:
    source = open_source(SourceSpec.parse(f"oci-dir:{root}"), LIMITS)
    assert isinstance(source, OciLayoutSource)
    return source.resolve(None), layout_reads(source)


def assert_same_as_full(root: Path) -> None:
    resolved, reads = _full(root)
    image = resolve_layout(str(root), STRICT)
    assert image is not None
    assert image.reads == reads
    assert image.manifest_digest == resolved.manifest_digest and image.platform == resolved.platform
    assert list(image.layers) == [layer.digest for layer in resolved.layers]
    assert image.diff_ids == resolved.config_document.rootfs.diff_ids
    assert rendering_id("json", compact(image.source())) == document_rendering("json", resolved)
    fresh = ImageAnalysis.model_construct(
        source=analysis_source(resolved),
        image=image_metadata_of(resolved, tuple(SUMMARIES)),
        analyzed_at=AT,
    )
    expected = native_members(fresh, FRESH_MEMBERS)
    assert member("source", image.source()) == expected["source"]
    assert member("image", image_member(image, SUMMARIES)) == expected["image"]
    assert member("analyzed_at", AT) == expected["analyzed_at"]
    assert member("schema_version", 1) == expected["schema_version"]


def _set(path: str, value: Any) -> Any:
    keys = path.split(".")

    def change(document: dict[str, Any]) -> None:
        target = document
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[keys[-1]] = value

    return change


ODD_TEXT = 'quote " backslash \\ newline \n tab \t bell \x07 del \x7f é \u2028 \U0001f600 </script>'
ACCEPTED_CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": _config(),
    "odd labels and env": {
        **_config(),
        "config": {
            "Env": [ODD_TEXT, "A=1"],
            "Labels": {"z": ODD_TEXT, "a": "", "é": "1"},
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": None,
            "User": "",
            "WorkingDir": "/srv",
            "ExposedPorts": {"8080/tcp": {}, "443/tcp": {"x": 1.5}, "53/udp": None},
            "Volumes": {"/data": {}},
            "StopSignal": "SIGTERM",
            "Unknown": [1, 2.5],
        },
    },
    "no container config": {k: v for k, v in _config().items() if k != "config"},
    "null container config and platform fields": {
        **_config(),
        "config": None,
        "os": None,
        "architecture": None,
    },
    "variant and author": {**_config(), "variant": "v8", "architecture": "arm64", "author": ODD_TEXT},
    "history of every kind": {
        **_config(),
        "history": [
            {"created_by": "/bin/sh -c apt-get update", "empty_layer": False, "comment": "c", "author": "a"},
            {"created_by": "ENV A=1 # buildkit", "empty_layer": True, "created": None},
            {"created_by": "RUN echo hi # buildkit"},
            {"created_by": "lowercase thing"},
            {"created_by": ""},
            {"comment": ODD_TEXT, "extra": {"nested": 1.25}},
            {},
        ],
    },
    "no history, no created": {k: v for k, v in _config().items() if k not in ("history", "created")},
    "extra top-level fields": {**_config(), "os.features": ["x"], "container": "abc", "size": 1.5},
}


@pytest.mark.parametrize("name", sorted(ACCEPTED_CONFIGS))
def test_every_accepted_config_gives_the_models_members(tmp_path: Path, name: str) -> None:
    assert_same_as_full(write_layout(tmp_path / "layout", config=ACCEPTED_CONFIGS[name]))


ACCEPTED_MANIFESTS: dict[str, Any] = {
    "docker manifest and config": lambda d: d.update(
        mediaType=mf.DOCKER_MANIFEST,
        config={**d["config"], "mediaType": mf.DOCKER_CONFIG},
        layers=[{**layer, "mediaType": mf.DOCKER_LAYER_GZIP} for layer in d["layers"]],
    ),
    "no media type on the manifest": lambda d: d.pop("mediaType"),
    "null media type on the manifest": _set("mediaType", None),
    "annotations and platform on descriptors": lambda d: d.update(
        annotations={"org.opencontainers.image.created": ODD_TEXT},
        config={
            **d["config"],
            "annotations": {"k": "v"},
            "platform": {"os": "linux", "architecture": "amd64"},
        },
        layers=[{**d["layers"][0], "urls": ["https://x"]}, {**d["layers"][1], "annotations": {}}],
    ),
    "config descriptor without a media type": lambda d: d["config"].pop("mediaType"),
    "every layer media type": lambda d: d.update(
        layers=[{**d["layers"][0], "mediaType": t} for t in sorted(LAYER_TYPES)][:1] + d["layers"][1:]
    ),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED_MANIFESTS))
def test_every_accepted_manifest_gives_the_models_members(tmp_path: Path, name: str) -> None:
    assert_same_as_full(write_layout(tmp_path / "layout", manifest=ACCEPTED_MANIFESTS[name]))


def test_layer_media_types_are_the_models(tmp_path: Path) -> None:
    assert frozenset(mf.LAYER_COMPRESSION) == LAYER_TYPES


ACCEPTED_INDEXES: dict[str, Any] = {
    "one image for linux/amd64": {"platform": {"os": "linux", "architecture": "amd64"}},
    "one image with a variant": {"platform": {"os": "linux", "architecture": "amd64", "variant": "v2"}},
    "annotated": {"annotations": {"org.opencontainers.image.ref.name": "latest"}},
    "media type by the document": {"mediaType": ""},
    "a generic media type": {"mediaType": "application/octet-stream"},
    "media type by the shape": {"mediaType": "application/json"},
    "media type with parameters": {"mediaType": mf.OCI_MANIFEST + "; charset=utf-8"},
}


@pytest.mark.parametrize("name", sorted(ACCEPTED_INDEXES))
def test_every_accepted_index_entry_gives_the_models_members(tmp_path: Path, name: str) -> None:
    assert_same_as_full(write_layout(tmp_path / "layout", descriptor=ACCEPTED_INDEXES[name]))


def test_an_index_of_several_platforms_gives_linux_amd64(tmp_path: Path) -> None:
    root = write_layout(tmp_path / "layout")
    top = json.loads((root / "index.json").read_text())
    amd64 = {**top["manifests"][0], "platform": {"os": "linux", "architecture": "amd64"}}
    others = [
        {
            **top["manifests"][0],
            "digest": "sha256:" + "e" * 64,
            "platform": {"os": "unknown", "architecture": "x"},
        },
        {
            **top["manifests"][0],
            "digest": "sha256:" + "f" * 64,
            "platform": {"os": "linux", "architecture": "arm64"},
        },
    ]
    top["manifests"] = [*others, amd64]
    (root / "index.json").write_text(json.dumps(top))
    assert_same_as_full(root)


REFUSED: dict[str, dict[str, Any]] = {
    "a size as a string": {"manifest": lambda d: d["layers"][0].update(size="10")},
    "a negative size": {"manifest": lambda d: d["layers"][0].update(size=-1)},
    "a field by its Python name": {"manifest": lambda d: d["layers"][0].update(media_type=mf.OCI_LAYER)},
    "schema version 1": {"manifest": _set("schemaVersion", 1)},
    "schema version 3": {"manifest": _set("schemaVersion", 3)},
    "an unknown layer type": {"manifest": lambda d: d["layers"][0].update(mediaType="text/plain")},
    "a config that is not an image's": {"manifest": lambda d: d["config"].update(mediaType="application/x")},
    "a layer digest that is not one": {"manifest": lambda d: d["layers"][0].update(digest="sha256:xyz")},
    "a config digest that does not match": {"manifest": lambda d: d["config"].update(digest=LAYER_A)},
    "a label that is not a string": {"config": {**_config(), "config": {"Labels": {"a": 1}}}},
    "an env that is not a list": {"config": {**_config(), "config": {"Env": "A=1"}}},
    "a container field by its Python name": {"config": {**_config(), "config": {"env": ["A=1"]}}},
    "an empty_layer that is not a boolean": {"config": {**_config(), "history": [{"empty_layer": "yes"}]}},
    "a null history": {"config": {**_config(), "history": None}},
    "no rootfs": {"config": {k: v for k, v in _config().items() if k != "rootfs"}},
    "fewer diff_ids than layers": {"config": {**_config(), "rootfs": {"type": "layers", "diff_ids": []}}},
    "a created time that is a number": {"config": {**_config(), "created": 5}},
    "a config that is not an object": {"raw_config": b"[]"},
    "a config that is not JSON": {"raw_config": b"{"},
    "an index entry naming another platform": {
        "descriptor": {"platform": {"os": "linux", "architecture": "s390x"}}
    },
    "an index entry that is an index": {"descriptor": {"mediaType": mf.OCI_INDEX}},
    "an index of no image": {"index": lambda d: d.update(manifests=[])},
    "an index without a schema version": {"index": lambda d: d.pop("schemaVersion")},
    "an index entry digest that does not match": {"descriptor": {"digest": LAYER_A}},
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_the_strict_subset_leaves_out_goes_to_the_full_resolution(tmp_path: Path, name: str) -> None:
    root = write_layout(tmp_path / "layout", **REFUSED[name])
    assert resolve_layout(str(root), STRICT) is None


def test_a_layout_without_its_marker_or_with_an_oversized_index_is_left_to_the_full_resolution(
    tmp_path: Path,
) -> None:
    root = write_layout(tmp_path / "layout")
    assert resolve_layout(str(root), LayoutLimits(len((root / "index.json").read_bytes()) - 1, 10**6)) is None
    assert resolve_layout(str(root), STRICT) is not None
    (root / "oci-layout").unlink()
    assert resolve_layout(str(root), STRICT) is None
    assert resolve_layout(str(tmp_path / "missing"), STRICT) is None


def test_a_manifest_known_by_its_shape_alone_gives_the_models_members(tmp_path: Path) -> None:
    root = write_layout(
        tmp_path / "layout", manifest=lambda d: d.pop("mediaType"), descriptor={"mediaType": ""}
    )
    assert_same_as_full(root)
