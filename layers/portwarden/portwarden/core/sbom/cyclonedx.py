"""CycloneDX 1.6 JSON, built with cyclonedx-python-lib.

Shape (mirroring what Syft emits for images, with ``portwarden:`` property names):

* ``metadata.component``: the image (type ``container``, name = reference or location, version = manifest
  digest, purl ``pkg:oci/…`` when the image has a registry reference);
* ``metadata.tools``: Portwarden and its version; ``metadata.timestamp``: when the analysis ran;
* ``components``: the distro as an ``operating-system`` component, then one ``library`` per package with
  purl, first CPE, licenses and properties (cataloger, package type, source package, locations);
* ``dependencies``: the image depends on every component it contains.

The serial number is a name-based UUID of the manifest digest and analysis time
(``identity.document_uuid``), so encoding the same analysis twice yields identical bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependable, Dependency
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.spdx import is_supported_id
from packageurl import PackageURL

import portwarden
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package, PackageType
from portwarden.core.sbom.identity import (
    PROPERTY_PREFIX,
    analysis_time,
    document_uuid,
    image_name,
    image_purl,
    package_ids,
    package_properties,
    sha1_of,
)
from portwarden.core.sbom.licenses import (
    LicenseKind,
    LicenseRefAllocator,
    classify_license,
    combined_expression,
)

TOOL_NAME = "portwarden"
IMAGE_BOM_REF = "image"
DISTRO_BOM_REF = "distro"


def to_cyclonedx_json(analysis: ImageAnalysis, *, indent: int = 2) -> str:
    """The analysis as a CycloneDX 1.6 JSON document."""
    image = _image_component(analysis)
    analyzed_at = analysis_time(analysis.analyzed_at)
    bom = Bom(
        serial_number=document_uuid(analysis),
        metadata=BomMetaData(
            component=image,
            tools=ToolRepository(components=[_tool_component()]),
            timestamp=analyzed_at,
        ),
    )
    _index_dependencies(bom)
    if analyzed_at is None:
        # The library stamps "now" by default, which would make the output differ on every run.
        bom.metadata.timestamp = None  # type: ignore[assignment]
    contained: list[Component] = []
    if analysis.distro is not None:
        contained.append(_distro_component(analysis.distro))
    refs = package_ids(analysis.packages)
    contained.extend(
        _package_component(package, ref) for package, ref in zip(analysis.packages, refs, strict=True)
    )
    bom.components = contained
    if contained:
        bom.register_dependency(image, contained)
    text: str = JsonV1Dot6(bom).output_as_string(indent=indent)
    return text


class _DependencyIndex:
    """``Bom.register_dependency`` with a dictionary instead of a linear scan.

    The library looks a target up by scanning every registered dependency, and serializing a BOM
    registers each component once, which makes encoding quadratic: about 5 seconds of 9 for an image with
    3000 packages. This keeps the library's semantics (register the target, add its dependencies, register
    those as leaves) with constant-time lookups, for the one Bom instance it is attached to.
    """

    def __init__(self, bom: Bom) -> None:
        self._bom = bom
        self._by_ref: dict[str, Dependency] = {}

    def register(self, target: Dependable, depends_on: Iterable[Dependable] | None = None) -> None:
        dependables = list(depends_on or ())
        key = target.bom_ref.value or str(id(target))
        known = self._by_ref.get(key)
        if known is None:
            leaves = [Dependency(ref=d.bom_ref) for d in dependables]
            known = Dependency(ref=target.bom_ref, dependencies=leaves)
            self._by_ref[key] = known
            self._bom.dependencies.add(known)
        elif dependables:
            known.dependencies.update(Dependency(ref=d.bom_ref) for d in dependables)
        for dependable in dependables:
            self.register(dependable)


def _index_dependencies(bom: Bom) -> None:
    # Shadowing the method on this instance only; every Bom elsewhere keeps the library's behaviour.
    bom.register_dependency = _DependencyIndex(bom).register  # type: ignore[method-assign]


def _tool_component() -> Component:
    return Component(
        type=ComponentType.APPLICATION,
        name=TOOL_NAME,
        version=portwarden.__version__,
        bom_ref=f"{TOOL_NAME}-{portwarden.__version__}",
    )


def _image_component(analysis: ImageAnalysis) -> Component:
    source = analysis.source
    properties = [
        Property(name=f"{PROPERTY_PREFIX}:image:sourceType", value=source.type),
        Property(name=f"{PROPERTY_PREFIX}:image:configDigest", value=source.config_digest),
        Property(name=f"{PROPERTY_PREFIX}:image:platform", value=source.platform),
    ]
    if source.index_digest:
        properties.append(Property(name=f"{PROPERTY_PREFIX}:image:indexDigest", value=source.index_digest))
    if source.reference and source.location != source.reference:
        properties.append(Property(name=f"{PROPERTY_PREFIX}:image:location", value=source.location))
    purl = image_purl(source)
    return Component(
        type=ComponentType.CONTAINER,
        name=image_name(source),
        version=source.manifest_digest,
        bom_ref=IMAGE_BOM_REF,
        purl=PackageURL.from_string(purl) if purl else None,
        properties=properties,
    )


def _distro_component(distro: Distro) -> Component:
    properties = [Property(name=f"{PROPERTY_PREFIX}:distro:id", value=distro.id)]
    if distro.version_codename:
        properties.append(
            Property(name=f"{PROPERTY_PREFIX}:distro:versionCodename", value=distro.version_codename)
        )
    for index, like in enumerate(distro.id_like):
        properties.append(Property(name=f"{PROPERTY_PREFIX}:distro:idLike:{index}", value=like))
    return Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=distro.id,
        version=distro.version_id,
        description=distro.pretty_name,
        cpe=distro.cpe_name,
        bom_ref=DISTRO_BOM_REF,
        properties=properties,
    )


def _package_component(package: Package, bom_ref: str) -> Component:
    purl = _parse_purl(package.purl)
    properties = [Property(name=name, value=value) for name, value in package_properties(package)]
    if package.purl and purl is None:
        # Keep an identity the purl field cannot hold rather than dropping it silently.
        properties.append(Property(name=f"{PROPERTY_PREFIX}:package:unparsedPurl", value=package.purl))
    for index, extra_cpe in enumerate(package.cpes[1:], start=1):
        properties.append(Property(name=f"{PROPERTY_PREFIX}:cpe23:{index}", value=extra_cpe))
    sha1 = sha1_of(package)
    group = package.metadata.get("group_id") if package.type is PackageType.JAVA_ARCHIVE else None
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version or None,
        group=str(group) if group else None,
        bom_ref=bom_ref,
        purl=purl,
        cpe=package.cpes[0] if package.cpes else None,
        licenses=component_licenses(package.licenses),
        hashes=[HashType(alg=HashAlgorithm.SHA_1, content=sha1)] if sha1 else None,
        properties=properties,
    )


def _parse_purl(text: str | None) -> PackageURL | None:
    if not text:
        return None
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def component_licenses(licenses: Iterable[str]) -> list[License]:
    """CycloneDX licenses for a package's declared license strings.

    SPDX ids known to the CycloneDX schema become ``license.id``, free text ``license.name``. A compound
    SPDX expression must stand alone (the schema forbids mixing an expression with other entries), so
    when one is present every declared license is folded into a single AND expression.
    """
    declared = list(dict.fromkeys(text for text in licenses if text.strip()))
    classified = [classify_license(text) for text in declared]
    needs_expression = any(
        item.kind is LicenseKind.SPDX_EXPRESSION
        or (item.kind is LicenseKind.SPDX_ID and item.spdx is not None and not is_supported_id(item.spdx))
        for item in classified
    )
    if needs_expression:
        expression = combined_expression(declared, LicenseRefAllocator())
        return [LicenseExpression(expression)] if expression else []
    result: list[License] = []
    for item in classified:
        if item.kind is LicenseKind.SPDX_ID and item.spdx is not None:
            result.append(DisjunctiveLicense(id=item.spdx))
        else:
            result.append(DisjunctiveLicense(name=item.text.strip()))
    return result
