"""Identities shared by the CycloneDX and SPDX encoders: element ids, the image's name and purl, and the
properties that carry Portwarden-specific facts about a package.

Everything here is a pure function of the analysis, so the same analysis always yields the same ids,
serial numbers and namespaces, and SBOMs can be compared byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from packageurl import PackageURL

from portwarden.core.errors import InvalidReferenceError
from portwarden.core.image.reference import ImageReference
from portwarden.core.model.analysis import AnalysisSource, ImageAnalysis
from portwarden.core.model.package import Package

PROPERTY_PREFIX = "portwarden"
# A fixed namespace for name-based UUIDs: the same analysis always yields the same serial number.
SBOM_UUID_NAMESPACE = uuid.UUID("6f0c5cf4-0a55-5d2b-9a7c-2f6f1d0b7e51")
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9.-]+")
_MAX_NAME_IN_ID = 64


def image_name(source: AnalysisSource) -> str:
    """How the image is called in an SBOM: its reference, or where it was read from (archive, directory)."""
    return source.reference or source.location


def document_uuid(analysis: ImageAnalysis) -> uuid.UUID:
    """A name-based UUID for one analysis of an image: the manifest digest, plus the analysis time when it
    is known, so re-encoding an analysis is reproducible while two analyses of one image (say, with newer
    catalogers) still get distinct CycloneDX serial numbers and SPDX namespaces."""
    name = analysis.source.manifest_digest
    if analysis.analyzed_at:
        name += f"@{analysis.analyzed_at}"
    return uuid.uuid5(SBOM_UUID_NAMESPACE, name)


def analysis_time(analyzed_at: str | None) -> datetime | None:
    """``analyzed_at`` as an aware UTC datetime with second precision; a time without offset is UTC.
    None when there is no time or it is not ISO 8601 (an SBOM is still worth writing without one)."""
    if not analyzed_at:
        return None
    try:
        parsed = datetime.fromisoformat(analyzed_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(microsecond=0)


def image_purl(source: AnalysisSource) -> str | None:
    """``pkg:oci/<name>@<manifest digest>?arch=…&repository_url=…&tag=…`` for images that have a registry
    reference; None for images known only by a file path, which have no portable identity."""
    if not source.reference or not source.manifest_digest:
        return None
    try:
        reference = ImageReference.parse(source.reference)
    except InvalidReferenceError:
        return None
    qualifiers = {"repository_url": f"{reference.registry}/{reference.repository}"}
    architecture = platform_architecture(source.platform)
    if architecture:
        qualifiers["arch"] = architecture
    if reference.tag:
        qualifiers["tag"] = reference.tag
    return str(
        PackageURL(
            type="oci",
            name=reference.repository.rsplit("/", 1)[-1],
            version=source.manifest_digest,
            qualifiers=qualifiers,
        ).to_string()
    )


def platform_architecture(platform: str) -> str | None:
    """``linux/arm64/v8`` → ``arm64``."""
    parts = platform.split("/")
    return parts[1] if len(parts) > 1 and parts[1] else None


def element_id_part(text: str) -> str:
    """``@scope/name`` → ``scope-name``: only the characters SPDX allows in an element id."""
    return _NOT_IN_ID.sub("-", text).strip("-.")[:_MAX_NAME_IN_ID] or "unnamed"


def package_fingerprint(package: Package) -> str:
    """A digest of what identifies a package in an image: the same package found at another path, or by
    another cataloger, is a different SBOM element."""
    identity = [
        package.type.value,
        package.name,
        package.version,
        package.purl,
        [location.path for location in package.locations],
        package.found_by,
    ]
    return hashlib.sha256(json.dumps(identity, separators=(",", ":")).encode()).hexdigest()


def package_ids(packages: Sequence[Package]) -> list[str]:
    """One readable, unique id per package, in input order: ``<type>-<name>-<16 hex digits>``.

    Exact duplicates (same fingerprint) get ``-2``, ``-3``… so every element stays addressable.
    """
    seen: dict[str, int] = {}
    ids: list[str] = []
    for package in packages:
        base = f"{package.type.value}-{element_id_part(package.name)}-{package_fingerprint(package)[:16]}"
        count = seen.get(base, 0) + 1
        seen[base] = count
        ids.append(base if count == 1 else f"{base}-{count}")
    return ids


def package_properties(package: Package) -> list[tuple[str, str]]:
    """Portwarden facts about a package as (name, value) pairs, names spelled like Syft's
    (``portwarden:location:0:path``), in a fixed order."""
    properties: list[tuple[str, str]] = [
        (f"{PROPERTY_PREFIX}:package:foundBy", package.found_by),
        (f"{PROPERTY_PREFIX}:package:type", package.type.value),
    ]
    source_name = package.metadata.get("source_name")
    source_version = package.metadata.get("source_version")
    if source_name:
        properties.append((f"{PROPERTY_PREFIX}:package:sourceName", str(source_name)))
    if source_version:
        properties.append((f"{PROPERTY_PREFIX}:package:sourceVersion", str(source_version)))
    modularity_label = package.metadata.get("modularity_label")
    if modularity_label:
        # An rpm of a module stream is matched by its stream: an SBOM must keep it to match the same.
        properties.append((f"{PROPERTY_PREFIX}:package:modularityLabel", str(modularity_label)))
    for index, location in enumerate(package.locations):
        properties.append((f"{PROPERTY_PREFIX}:location:{index}:path", location.path))
        if location.layer_digest:
            properties.append((f"{PROPERTY_PREFIX}:location:{index}:layerDigest", location.layer_digest))
    return properties


def sha1_of(package: Package) -> str | None:
    """The archive SHA-1 some catalogers record (Java archives), when it looks like one."""
    value = package.metadata.get("sha1")
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{40}", value):
        return value
    return None
