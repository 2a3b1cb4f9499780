"""CycloneDX JSON, spec versions 1.4 to 1.6.

Packages are the components (nested ones included) of types library, framework and application; the
``operating-system`` component is the distro; ``metadata.component`` is the image. Facts beyond the
purl come from properties as Portwarden (``portwarden:…``) and Syft (``syft:…``) write them: package
type, cataloger, source package, locations with their layers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

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
    parse_purl,
    pick_distro,
    text,
)

FORMAT_NAME = "CycloneDX"
SUPPORTED_SPEC_VERSIONS = ("1.4", "1.5", "1.6")
_PACKAGE_TYPES = frozenset({"library", "framework", "application"})
_PREFIXES = ("portwarden", "syft")


def is_cyclonedx(document: dict[str, Any]) -> bool:
    return document.get("bomFormat") == "CycloneDX"


def check_spec_version(document: dict[str, Any], location: str) -> str:
    version = text(document.get("specVersion"))
    if version not in SUPPORTED_SPEC_VERSIONS:
        raise SbomFormatError(
            f"{location}: CycloneDX spec version {version or '(none)'} is not supported "
            f"(Portwarden reads {', '.join(SUPPORTED_SPEC_VERSIONS)})"
        )
    return version


def decode_cyclonedx(document: dict[str, Any], data: bytes, location: str) -> ImageAnalysis:
    version = check_spec_version(document, location)
    components = document.get("components", [])
    if not isinstance(components, list):
        raise SbomFormatError(f"{location}: CycloneDX components is not a list")
    report = DecodeReport()
    stated_distro: Distro | None = None
    for component in walk_components(components):
        kind = text(component.get("type"))
        if kind == "operating-system":
            stated_distro = stated_distro or _distro(component)
        elif kind in _PACKAGE_TYPES:
            add_package(report, _draft(component), "cyclonedx")
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    return build_analysis(
        data,
        location,
        f"{FORMAT_NAME} {version}",
        _image(metadata),
        pick_distro(stated_distro, report),
        report,
    )


def walk_components(components: list[Any]) -> Iterator[dict[str, Any]]:
    """Every component, nested ones after their parent (depth-first, document order)."""
    stack = list(reversed(list(dicts(components))))
    while stack:
        component = stack.pop()
        yield component
        stack.extend(reversed(list(dicts(component.get("components")))))


def properties_of(component: Mapping[str, Any]) -> dict[str, str]:
    """Properties by name, the first value of each; ``portwarden:x`` and ``syft:x`` both as ``x``."""
    found: dict[str, str] = {}
    for entry in dicts(component.get("properties")):
        name, value = text(entry.get("name")), text(entry.get("value"))
        prefix, sep, rest = name.partition(":")
        if sep and prefix in _PREFIXES and value:
            found.setdefault(rest, value)
    return found


def _draft(component: dict[str, Any]) -> PackageDraft:
    properties = properties_of(component)
    purl = text(component.get("purl")) or properties.get("package:unparsedPurl") or None
    cpes = [text(component.get("cpe"))] if text(component.get("cpe")) else []
    cpes += [value for key, value in sorted(properties.items()) if key.startswith(("cpe23:", "cpe23"))]
    name = text(component.get("name"))
    group = text(component.get("group"))
    parsed = parse_purl(purl)
    if group and parsed is not None and parsed.type == "maven":
        name = parsed.name
    draft = PackageDraft(
        name=name,
        version=text(component.get("version")),
        purl=purl,
        type_hint=properties.get("package:type"),
        cpes=tuple(dict.fromkeys(cpes)),
        licenses=_licenses(component.get("licenses")),
        locations=_locations(properties),
        found_by=properties.get("package:foundBy"),
        source_name=properties.get("package:sourceName") or _syft_source(properties),
        source_version=properties.get("package:sourceVersion") or properties.get("metadata:sourceVersion"),
    )
    if group and parsed is not None and parsed.type == "maven":
        draft.metadata["group_id"] = group
        draft.metadata["artifact_id"] = parsed.name
    # Portwarden's property, or Syft's rpm metadata: the module stream an rpm was built for.
    modularity_label = properties.get("package:modularityLabel") or properties.get("metadata:modularityLabel")
    if modularity_label:
        draft.metadata["modularity_label"] = modularity_label
    return draft


def _syft_source(properties: Mapping[str, str]) -> str | None:
    # Syft writes cataloger metadata as properties: dpkg's source, apk's origin.
    return properties.get("metadata:source") or properties.get("metadata:originPackage") or None


def _locations(properties: Mapping[str, str]) -> tuple[Location, ...]:
    locations: list[Location] = []
    index = 0
    while (path := properties.get(f"location:{index}:path")) is not None:
        layer = properties.get(f"location:{index}:layerDigest") or properties.get(f"location:{index}:layerID")
        locations.append(Location(path=path, layer_digest=layer or None))
        index += 1
    return tuple(locations)


def _licenses(values: object) -> tuple[str, ...]:
    found: list[str] = []
    for entry in dicts(values):
        expression = text(entry.get("expression"))
        if expression:
            found.append(expression)
            continue
        license_ = entry.get("license")
        if isinstance(license_, dict):
            chosen = text(license_.get("id")) or text(license_.get("name"))
            if chosen:
                found.append(chosen)
    return tuple(found)


def _distro(component: dict[str, Any]) -> Distro | None:
    properties = properties_of(component)
    distro_id = properties.get("distro:id") or text(component.get("name"))
    if not distro_id:
        return None
    id_like = []
    index = 0
    while (like := properties.get(f"distro:idLike:{index}")) is not None:
        id_like.append(like)
        index += 1
    return Distro(
        id=distro_id.lower(),
        version_id=properties.get("distro:versionID") or text(component.get("version")) or None,
        version_codename=properties.get("distro:versionCodename") or None,
        id_like=tuple(id_like),
        cpe_name=text(component.get("cpe")) or None,
        pretty_name=properties.get("distro:prettyName") or text(component.get("description")) or None,
    )


def _image(metadata: dict[str, Any]) -> ImageFacts:
    component = metadata.get("component")
    timestamp = text(metadata.get("timestamp")) or None
    if not isinstance(component, dict) or text(component.get("type")) != "container":
        return ImageFacts(analyzed_at=timestamp)
    properties = properties_of(component)
    digest = text(component.get("version"))
    purl = parse_purl(text(component.get("purl")))
    if not digest.startswith("sha256:") and purl is not None and (purl.version or "").startswith("sha256:"):
        digest = str(purl.version)
    return ImageFacts(
        reference=text(component.get("name")) or None,
        manifest_digest=digest if digest.startswith("sha256:") else None,
        config_digest=properties.get("image:configDigest"),
        platform=properties.get("image:platform"),
        analyzed_at=timestamp,
    )
