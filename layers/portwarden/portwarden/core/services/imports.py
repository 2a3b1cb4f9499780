"""SBOM import (Anchore's ``/imports/images``): an analysis made elsewhere, as a Syft JSON document.

The uploaded parts (the Syft packages document, and optionally the manifest, image config and
Dockerfile) become an ImageAnalysis with the same package model the analyzers produce, so matching,
policy evaluation and every image route treat an imported image like an analyzed one. Nothing is
pulled: the image's files are not known, only its packages (and whatever the config says).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from portwarden.core.errors import InvalidRequestError
from portwarden.core.model.analysis import AnalysisSource, AnalyzerRun, ImageAnalysis, ImageMetadata
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location, Package, PackageType

IMPORTER_NAME = "syft-import"
IMPORTER_VERSION = 1
_PACKAGE_TYPES = {t.value: t for t in PackageType}
# Syft's names for the fields our OS matchers read through (the source package).
_SOURCE_NAME_KEYS = ("source", "sourceRpm", "originPackage")
_SOURCE_VERSION_KEYS = ("sourceVersion",)


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise InvalidRequestError(f"{what} is not JSON: {exc}") from exc


def _licenses(value: Any) -> tuple[str, ...]:
    names: list[str] = []
    for item in value or ():
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("value"), str):
            names.append(item["value"])
    return tuple(names)


def _package(artifact: Mapping[str, Any]) -> Package | None:
    """One Syft artifact as a Package; None for types Portwarden does not model (skipped, counted)."""
    kind = _PACKAGE_TYPES.get(str(artifact.get("type", "")))
    name, version = artifact.get("name"), artifact.get("version")
    if kind is None or not isinstance(name, str) or not isinstance(version, str) or not name:
        return None
    raw_metadata = artifact.get("metadata") if isinstance(artifact.get("metadata"), Mapping) else {}
    assert isinstance(raw_metadata, Mapping)
    metadata: dict[str, Any] = {}
    for key in _SOURCE_NAME_KEYS:
        if isinstance(raw_metadata.get(key), str) and raw_metadata[key]:
            # rpm's sourceRpm is a file name (name-version-release.src.rpm): its name part is what matches.
            metadata["source_name"] = (
                raw_metadata[key].rsplit("-", 2)[0] if key == "sourceRpm" else raw_metadata[key]
            )
            break
    for key in _SOURCE_VERSION_KEYS:
        if isinstance(raw_metadata.get(key), str) and raw_metadata[key]:
            metadata["source_version"] = raw_metadata[key]
    locations = tuple(
        Location(path=location["path"], layer_digest=location.get("layerID"))
        for location in artifact.get("locations") or ()
        if isinstance(location, Mapping) and isinstance(location.get("path"), str)
    )
    cpes = tuple(
        cpe if isinstance(cpe, str) else str(cpe.get("cpe"))
        for cpe in artifact.get("cpes") or ()
        if isinstance(cpe, str) or (isinstance(cpe, Mapping) and cpe.get("cpe"))
    )
    purl = artifact.get("purl")
    return Package(
        name=name,
        version=version,
        type=kind,
        purl=purl if isinstance(purl, str) and purl else None,
        cpes=cpes,
        licenses=_licenses(artifact.get("licenses")),
        locations=locations,
        found_by=IMPORTER_NAME,
        metadata=metadata,
    )


def analysis_from_syft(
    packages_document: bytes,
    *,
    image_digest: str,
    image_id: str | None,
    manifest: bytes | None = None,
    image_config: bytes | None = None,
    dockerfile: bytes | None = None,
    now: datetime | None = None,
) -> ImageAnalysis:
    """The ImageAnalysis of an imported image; InvalidRequestError when the document is not Syft's."""
    document = _json(packages_document, "the packages document")
    if not isinstance(document, Mapping) or not isinstance(document.get("artifacts"), list):
        raise InvalidRequestError(
            "the packages document must be Syft JSON (an object with an 'artifacts' list)"
        )
    converted = [_package(artifact) for artifact in document["artifacts"] if isinstance(artifact, Mapping)]
    packages = tuple(package for package in converted if package is not None)
    skipped = len(document["artifacts"]) - len(packages)
    distro_doc = document.get("distro") if isinstance(document.get("distro"), Mapping) else None
    distro = None
    if distro_doc and isinstance(distro_doc.get("id") or distro_doc.get("name"), str):
        id_like = distro_doc.get("idLike") or ()
        distro = Distro(
            id=str(distro_doc.get("id") or distro_doc.get("name")).lower(),
            version_id=str(distro_doc["versionID"])
            if distro_doc.get("versionID")
            else distro_doc.get("version"),
            id_like=tuple(str(item) for item in id_like) if isinstance(id_like, list) else (),
            pretty_name=distro_doc.get("prettyName")
            if isinstance(distro_doc.get("prettyName"), str)
            else None,
        )
    config = _json(image_config, "the image config") if image_config else {}
    history = config.get("history") if isinstance(config, Mapping) else None
    source = document.get("source") if isinstance(document.get("source"), Mapping) else {}
    assert isinstance(source, Mapping)
    target = source.get("target")
    reference = target.get("userInput") if isinstance(target, Mapping) else None
    warnings = [f"{skipped} artifact(s) of types Portwarden does not model were skipped"] if skipped else []
    return ImageAnalysis(
        source=AnalysisSource(
            type="import",
            reference=reference if isinstance(reference, str) else None,
            location=f"import:{image_digest}",
            manifest_digest=image_digest,
            config_digest=image_id or image_digest,
            platform=_platform(config),
        ),
        distro=distro,
        packages=packages,
        image=ImageMetadata(
            config={k: v for k, v in config.items() if k != "history"} if isinstance(config, Mapping) else {},
            history=tuple(h for h in history if isinstance(h, dict)) if isinstance(history, list) else (),
            dockerfile=dockerfile.decode("utf-8", errors="replace") if dockerfile else "",
            manifest=_json(manifest, "the manifest") if manifest else {},
        ),
        analyzers=(AnalyzerRun(name=IMPORTER_NAME, version=IMPORTER_VERSION),),
        warnings=tuple(warnings),
        analyzed_at=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def _platform(config: Any) -> str:
    if (
        isinstance(config, Mapping)
        and isinstance(config.get("os"), str)
        and isinstance(config.get("architecture"), str)
    ):
        return f"{config['os']}/{config['architecture']}"
    return "unknown/unknown"
