"""Syft's own JSON (``syft -o syft-json``, schema 1 to 16).

Packages are the ``artifacts``; the source package comes from the cataloger metadata (dpkg ``source`` /
``sourceVersion``, apk ``originPackage``, rpm ``sourceRpm`` and ``epoch``) and else from the purl; the
distro from ``distro``; the image from ``source`` (``metadata`` since schema 11, ``target`` before).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from portwarden.core.analyzers.rpm import split_source_rpm
from portwarden.core.errors import SbomFormatError
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location
from portwarden.core.sbom.decode.common import (
    DecodeReport,
    ImageFacts,
    PackageDraft,
    add_package,
    build_analysis,
    dicts,
    pick_distro,
    strings,
    text,
)

FORMAT_NAME = "Syft JSON"


def is_syft(document: dict[str, Any]) -> bool:
    schema = document.get("schema")
    url = schema.get("url") if isinstance(schema, dict) else None
    return (isinstance(url, str) and "anchore/syft" in url) or (
        isinstance(document.get("artifacts"), list) and isinstance(document.get("descriptor"), dict)
    )


def decode_syft(document: dict[str, Any], data: bytes, location: str) -> ImageAnalysis:
    schema = document.get("schema")
    version = text(schema.get("version")) if isinstance(schema, dict) else ""
    major = version.split(".", 1)[0]
    if not major.isdigit():
        raise SbomFormatError(f"{location}: Syft JSON without a schema version")
    artifacts = document.get("artifacts")
    if not isinstance(artifacts, list):
        raise SbomFormatError(f"{location}: Syft JSON without an artifacts list")
    report = DecodeReport()
    for artifact in artifacts:
        if not isinstance(artifact, dict):
            report.seen += 1
            report.warnings.append("skipped an artifact that is not a JSON object")
            continue
        add_package(report, _draft(artifact), "syft")
    return build_analysis(
        data, location, FORMAT_NAME, _image(document), pick_distro(_distro(document), report), report
    )


def _draft(artifact: dict[str, Any]) -> PackageDraft:
    metadata = artifact.get("metadata") if isinstance(artifact.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    source_name, source_version = _source_package(text(artifact.get("type")), metadata)
    draft = PackageDraft(
        name=text(artifact.get("name")),
        version=text(artifact.get("version")),
        purl=text(artifact.get("purl")) or None,
        type_hint=text(artifact.get("type")) or None,
        cpes=_cpes(artifact.get("cpes")),
        licenses=_licenses(artifact.get("licenses")),
        locations=tuple(
            Location(path=path, layer_digest=text(entry.get("layerID")) or None)
            for entry in dicts(artifact.get("locations"))
            if (path := text(entry.get("path")))
        ),
        found_by=text(artifact.get("foundBy")) or None,
        source_name=source_name,
        source_version=source_version,
    )
    pom = metadata.get("pomProperties")
    if isinstance(pom, dict) and text(pom.get("groupId")):
        draft.metadata["group_id"] = text(pom.get("groupId"))
        draft.metadata["artifact_id"] = text(pom.get("artifactId")) or draft.name
    if text(metadata.get("modularityLabel")):
        # The module stream an rpm was built for: Red Hat's data is matched by stream.
        draft.metadata["modularity_label"] = text(metadata.get("modularityLabel"))
    return draft


def _source_package(kind: str, metadata: dict[str, Any]) -> tuple[str | None, str | None]:
    if kind == "deb":
        source = text(metadata.get("source"))
        if source:
            # Older schemas wrote "name (version)" in one field.
            name, _, rest = source.partition(" (")
            return name, text(metadata.get("sourceVersion")) or rest.rstrip(")") or None
    elif kind == "apk":
        origin = text(metadata.get("originPackage"))
        if origin:
            return origin, None
    elif kind == "rpm":
        source_rpm = text(metadata.get("sourceRpm"))
        parts = split_source_rpm(source_rpm) if source_rpm else None
        if parts is not None:
            epoch = metadata.get("epoch")
            prefix = f"{epoch}:" if isinstance(epoch, int) else ""
            return parts[0], f"{prefix}{parts[1]}-{parts[2]}"
    return None, None


def _cpes(values: object) -> tuple[str, ...]:
    found: list[str] = []
    if isinstance(values, list):
        for value in values:
            if isinstance(value, str) and value:
                found.append(value)  # schema < 13: plain strings
            elif isinstance(value, dict) and text(value.get("cpe")):
                found.append(text(value.get("cpe")))
    return tuple(found)


def _licenses(values: object) -> tuple[str, ...]:
    found: list[str] = []
    if isinstance(values, list):
        for value in values:
            if isinstance(value, str) and value:
                found.append(value)
            elif isinstance(value, dict):
                chosen = text(value.get("spdxExpression")) or text(value.get("value"))
                if chosen:
                    found.append(chosen)
    return tuple(found)


def _distro(document: dict[str, Any]) -> Distro | None:
    distro = document.get("distro")
    if not isinstance(distro, dict) or not text(distro.get("id")):
        return None
    return Distro(
        id=text(distro.get("id")).lower(),
        version_id=text(distro.get("versionID")) or None,
        version_codename=text(distro.get("versionCodename")) or None,
        id_like=strings(distro.get("idLike")),
        cpe_name=text(distro.get("cpeName")) or None,
        pretty_name=text(distro.get("prettyName")) or None,
    )


def _image(document: dict[str, Any]) -> ImageFacts:
    source = document.get("source")
    if not isinstance(source, dict):
        return ImageFacts()
    details = source.get("metadata") if isinstance(source.get("metadata"), dict) else source.get("target")
    if not isinstance(details, dict) or text(source.get("type")) != "image":
        return ImageFacts()
    config = _config(details.get("config"))
    architecture = text(details.get("architecture")) or text(config.get("architecture"))
    system = text(details.get("os")) or text(config.get("os"))
    digest = text(details.get("manifestDigest"))
    history = config.get("history")
    return ImageFacts(
        reference=text(details.get("userInput")) or None,
        manifest_digest=digest if digest.startswith("sha256:") else None,
        config_digest=text(details.get("imageID")) or None,
        platform=f"{system}/{architecture}" if system and architecture else None,
        # Syft names layers by diff id, as its package locations do.
        layers=tuple(
            {"diff_id": layer_digest, "size": layer.get("size")}
            for layer in dicts(details.get("layers"))
            if (layer_digest := text(layer.get("digest")))
        ),
        history=tuple(dicts(history)),
    )


def _config(encoded: object) -> dict[str, Any]:
    """The image config Syft embeds (base64 JSON); empty when absent or unreadable."""
    if not isinstance(encoded, str) or not encoded:
        return {}
    try:
        config = json.loads(base64.b64decode(encoded, validate=True))
    except (ValueError, UnicodeDecodeError):
        return {}
    return config if isinstance(config, dict) else {}
