"""What every SBOM decoder shares: package types from purls, the facts matching needs (source package,
Maven coordinates, distro) recovered from purl qualifiers, and the assembly of the analysis document.

A decoded SBOM becomes an :class:`ImageAnalysis` with the packages and distro the document states and
no files: matching, triage and policy then work on it exactly as on an analyzed image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from packageurl import PackageURL

from portwarden.core.analyzers.rpm import split_source_rpm
from portwarden.core.ecosystems import ECOSYSTEMS, OS_PACKAGE_TYPES
from portwarden.core.errors import InvalidReferenceError, SbomFormatError
from portwarden.core.image.reference import ImageReference
from portwarden.core.model.analysis import AnalysisSource, ImageAnalysis, ImageMetadata
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location, Package, PackageType
from portwarden.core.sbom.cpe import cpe_candidates

SOURCE_TYPE = "sbom"
UNKNOWN_PLATFORM = "unknown"

# purl type -> the package type its ecosystem is matched as (from the ecosystem descriptors).
PURL_TYPES: Mapping[str, PackageType] = {e.purl_type: e.package_type for e in ECOSYSTEMS.values()}
# Versions that name nothing: such a package cannot be matched, and is reported as skipped.
_NO_VERSION = frozenset({"", "unknown", "noassertion", "none"})


def parse_json_object(data: bytes, where: str) -> dict[str, Any]:
    import json

    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SbomFormatError(f"{where} is not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise SbomFormatError(f"{where} is JSON but not an SBOM document (the top level is not an object)")
    return document


def parse_purl(text: object) -> PackageURL | None:
    if not isinstance(text, str) or not text.startswith("pkg:"):
        return None
    return _parse_purl(text)


@lru_cache(maxsize=16384)
def _parse_purl(text: str) -> PackageURL | None:
    # Parsing is the costly part of decoding a package, and each is asked for more than once.
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def distro_from_qualifier(value: str | None) -> Distro | None:
    """``debian-12.5`` -> debian 12.5; ``opensuse-leap-15.5`` -> opensuse-leap 15.5; ``wolfi`` -> wolfi."""
    if not value:
        return None
    head, sep, tail = value.rpartition("-")
    if sep and head and tail[:1].isdigit():
        return Distro(id=head.lower(), version_id=tail)
    return Distro(id=value.lower())


@dataclass
class PackageDraft:
    """A package as a document states it, before the checks that make it a Package."""

    name: str
    version: str
    purl: str | None = None
    type_hint: str | None = None  # the document's own type word (Syft's ``deb``, ``java-archive``…)
    cpes: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    locations: tuple[Location, ...] = ()
    found_by: str | None = None
    source_name: str | None = None
    source_version: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class DecodeReport:
    """Packages kept and, per package that could not be used, one warning."""

    packages: list[Package] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seen: int = 0
    distros: list[Distro] = field(default_factory=list)


def package_type(draft: PackageDraft, purl: PackageURL | None) -> PackageType | None:
    if draft.type_hint:
        try:
            return PackageType(draft.type_hint)
        except ValueError:
            pass
    if purl is not None:
        return PURL_TYPES.get(purl.type)
    return None


def add_package(report: DecodeReport, draft: PackageDraft, found_by_default: str) -> None:
    """Checks ``draft`` and adds it as a Package, or records why it was skipped."""
    report.seen += 1
    label = draft.purl or draft.name or "(unnamed)"
    purl = parse_purl(draft.purl)
    if draft.purl and purl is None:
        report.warnings.append(f"package {draft.name!r}: purl {draft.purl!r} is not a package URL; ignored")
    name = draft.name.strip()
    version = draft.version.strip()
    if not name and purl is not None:
        name = purl.name
    if version.lower() in _NO_VERSION and purl is not None and purl.version:
        version = purl.version
    if not name:
        report.warnings.append(f"skipped a package without a name ({label})")
        return
    if version.lower() in _NO_VERSION:
        report.warnings.append(f"skipped package {name} ({label}): no version, it cannot be matched")
        return
    kind = package_type(draft, purl)
    if kind is None:
        report.warnings.append(
            f"skipped package {name} {version} ({label}): its type is not one Portwarden matches"
        )
        return
    metadata = dict(draft.metadata)
    qualifiers = purl.qualifiers if purl is not None and isinstance(purl.qualifiers, dict) else {}
    if kind in OS_PACKAGE_TYPES:
        source_name, source_version = draft.source_name, draft.source_version
        if not source_name:
            source_name, source_version = _upstream(kind, name, version, qualifiers)
        metadata["source_name"] = source_name or name
        metadata["source_version"] = source_version or version
        distro = distro_from_qualifier(qualifiers.get("distro"))
        if distro is not None:
            report.distros.append(distro)
    elif kind is PackageType.JAVA_ARCHIVE and purl is not None and purl.namespace:
        metadata.setdefault("group_id", purl.namespace)
        metadata.setdefault("artifact_id", purl.name)
    report.packages.append(
        Package(
            name=name,
            version=version,
            type=kind,
            purl=draft.purl if purl is not None else None,
            cpes=draft.cpes,
            licenses=draft.licenses,
            locations=draft.locations,
            found_by=draft.found_by or found_by_default,
            metadata=metadata,
        )
    )


def _upstream(
    kind: PackageType, name: str, version: str, qualifiers: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The source package from a purl's ``upstream`` qualifier, spelled as Syft and Portwarden write it:
    deb ``name`` or ``name@version``, apk the origin name, rpm the source rpm file name."""
    upstream = qualifiers.get("upstream")
    if not upstream:
        return None, None
    if kind is PackageType.RPM:
        parts = split_source_rpm(upstream)
        if parts is None:
            return None, None
        source_version = f"{parts[1]}-{parts[2]}"
        epoch = qualifiers.get("epoch")
        if epoch:
            source_version = f"{epoch}:{source_version}"
        return parts[0], source_version
    source_name, sep, source_version = upstream.partition("@")
    return source_name, (source_version if sep else version)


def pick_distro(stated: Distro | None, report: DecodeReport) -> Distro | None:
    """The document's own distro, else the one its OS packages' purls agree on (the most common)."""
    if stated is not None:
        return stated
    if not report.distros:
        return None
    counts: dict[tuple[str, str | None], int] = {}
    for distro in report.distros:
        key = (distro.id, distro.version_id)
        counts[key] = counts.get(key, 0) + 1
    (distro_id, version_id), _ = max(counts.items(), key=lambda item: item[1])
    return Distro(id=distro_id, version_id=version_id)


@dataclass(frozen=True)
class ImageFacts:
    """What a document says about the image it describes (all optional)."""

    reference: str | None = None
    manifest_digest: str | None = None
    config_digest: str | None = None
    platform: str | None = None
    analyzed_at: str | None = None
    # The image's layers (``digest``/``diff_id``) and history, when the document carries them (Syft):
    # what ``explain`` needs to name the layer a package was found in.
    layers: tuple[dict[str, Any], ...] = ()
    history: tuple[dict[str, Any], ...] = ()


def build_analysis(
    data: bytes,
    location: str,
    format_name: str,
    image: ImageFacts,
    distro: Distro | None,
    report: DecodeReport,
) -> ImageAnalysis:
    """The analysis document of a decoded SBOM; an error when it lists packages and none is usable."""
    if report.seen and not report.packages:
        first = report.warnings[0] if report.warnings else "no usable package"
        raise SbomFormatError(
            f"{location}: none of the {report.seen} packages of this {format_name} SBOM can be matched "
            f"(first: {first})"
        )
    warnings = list(report.warnings)
    if not report.seen:
        warnings.append(f"{location}: the {format_name} SBOM lists no packages")
    skipped = report.seen - len(report.packages)
    if skipped:
        warnings.append(f"{location}: {skipped} of {report.seen} packages skipped")
    # Without an image digest in the document, the document's own digest identifies what was scanned.
    manifest_digest = image.manifest_digest or f"sha256:{hashlib.sha256(data).hexdigest()}"
    # CPE candidates for packages the document gave none, as assembly does for analyzed images.
    packages = [
        package.model_copy(update={"cpes": cpe_candidates(package)}) if not package.cpes else package
        for package in report.packages
    ]
    packages.sort(key=_package_key)
    return ImageAnalysis(
        source=AnalysisSource(
            type=SOURCE_TYPE,
            reference=_reference(image.reference),
            location=location,
            manifest_digest=manifest_digest,
            config_digest=image.config_digest or "",
            platform=image.platform or UNKNOWN_PLATFORM,
        ),
        distro=distro,
        packages=tuple(packages),
        image=ImageMetadata(layers=image.layers, history=image.history),
        warnings=tuple(warnings),
        analyzed_at=image.analyzed_at,
    )


def _reference(text: str | None) -> str | None:
    """The image reference, normalized, when the document names one (not a path or a source string)."""
    if not text:
        return None
    scheme, sep, rest = text.partition(":")
    if sep and scheme in _REGISTRY_SCHEMES:
        text = rest
    elif sep and scheme in _PATH_SCHEMES:
        return None
    try:
        return str(ImageReference.parse(text))
    except InvalidReferenceError:
        return None


_REGISTRY_SCHEMES = frozenset({"registry", "docker", "podman"})
_PATH_SCHEMES = frozenset({"docker-archive", "oci-dir", "oci-archive", "dir", "file", "sbom", "singularity"})


def _package_key(package: Package) -> tuple[str, str, str, str]:
    location = package.locations[0].path if package.locations else ""
    return (package.type.value, package.name, package.version, location)


def strings(values: object) -> tuple[str, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(value for value in values if isinstance(value, str) and value)


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def dicts(values: object) -> Iterable[dict[str, Any]]:
    if isinstance(values, list):
        for value in values:
            if isinstance(value, dict):
                yield value
