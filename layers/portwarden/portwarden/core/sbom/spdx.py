"""SPDX 2.3 JSON, built with spdx-tools.

Shape (close to what Syft emits for images):

* ``SPDXRef-DOCUMENT DESCRIBES`` one package for the image (purpose ``CONTAINER``, version = manifest
  digest, purl ``pkg:oci/…`` when the image has a registry reference);
* the image ``CONTAINS`` an ``OPERATING-SYSTEM`` package for the distro and one ``LIBRARY`` package per
  cataloged package;
* each package carries its purl (``PACKAGE-MANAGER purl``) and CPEs (``SECURITY cpe23Type``), its declared
  licenses as one SPDX expression (free-text licenses become ``LicenseRef-`` entries listed under
  ``hasExtractedLicensingInfos``), ``NOASSERTION`` for download location and concluded license, and where
  it was found in ``sourceInfo``.

The document namespace is derived from the manifest digest and analysis time (``identity.document_uuid``)
and ``created`` is the analysis time, so the same analysis always encodes to the same bytes. An analysis
without a time (not yet stored) gets the current time, because SPDX requires a creation time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from packageurl import PackageURL
from spdx_tools.spdx.jsonschema.document_converter import DocumentConverter
from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.extracted_licensing_info import ExtractedLicensingInfo
from spdx_tools.spdx.model.package import (
    ExternalPackageRef,
    ExternalPackageRefCategory,
    Package,
    PackagePurpose,
)
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion

import portwarden
from portwarden.core.model.analysis import ImageAnalysis
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package as CatalogedPackage
from portwarden.core.sbom.cpe import is_cpe23
from portwarden.core.sbom.identity import (
    analysis_time,
    document_uuid,
    element_id_part,
    image_name,
    image_purl,
    package_ids,
    sha1_of,
)
from portwarden.core.sbom.licenses import LicenseRefAllocator, combined_expression

SPDX_VERSION = "SPDX-2.3"
DOCUMENT_ID = "SPDXRef-DOCUMENT"
DEFAULT_NAMESPACE_BASE = "https://portwarden.dev/spdx"
# spdx-tools writes enum names (PACKAGE_MANAGER); the SPDX 2.3 specification and its JSON schema spell the
# categories with a hyphen, which is also what Syft and most consumers expect. Readers accept both.
_JSON_REFERENCE_CATEGORIES = {"PACKAGE_MANAGER": "PACKAGE-MANAGER", "PERSISTENT_ID": "PERSISTENT-ID"}
_CPE22_RE = re.compile(r"^c[pP][eE]:/[AHOaho]?(?::[A-Za-z0-9._\-~%]*){0,6}$")


def to_spdx_json(
    analysis: ImageAnalysis, *, namespace_base: str = DEFAULT_NAMESPACE_BASE, indent: int = 2
) -> str:
    """The analysis as an SPDX 2.3 JSON document."""
    document = to_spdx_document(analysis, namespace_base=namespace_base)
    converter = DocumentConverter()  # type: ignore[no-untyped-call]
    converted: dict[str, Any] = converter.convert(document)
    for package in converted.get("packages", []):
        for reference in package.get("externalRefs", []):
            category = reference["referenceCategory"]
            reference["referenceCategory"] = _JSON_REFERENCE_CATEGORIES.get(category, category)
    return json.dumps(converted, indent=indent, ensure_ascii=False)


def to_spdx_document(analysis: ImageAnalysis, *, namespace_base: str = DEFAULT_NAMESPACE_BASE) -> Document:
    """The spdx-tools model of the analysis (validate it with ``validate_full_spdx_document``)."""
    name = image_name(analysis.source)
    image_id = f"SPDXRef-DocumentRoot-Image-{element_id_part(name)}"
    license_refs = LicenseRefAllocator()
    packages = [_image_package(analysis, image_id)]
    relationships = [Relationship(DOCUMENT_ID, RelationshipType.DESCRIBES, image_id)]
    if analysis.distro is not None:
        distro_package = _distro_package(analysis.distro)
        packages.append(distro_package)
        relationships.append(Relationship(image_id, RelationshipType.CONTAINS, distro_package.spdx_id))
    for package, package_id in zip(analysis.packages, package_ids(analysis.packages), strict=True):
        spdx_package = _package(package, f"SPDXRef-Package-{package_id}", license_refs)
        packages.append(spdx_package)
        relationships.append(Relationship(image_id, RelationshipType.CONTAINS, spdx_package.spdx_id))
    creation_info = CreationInfo(
        spdx_version=SPDX_VERSION,
        spdx_id=DOCUMENT_ID,
        name=name,
        document_namespace=_namespace(namespace_base, name, analysis),
        creators=[Actor(ActorType.TOOL, f"portwarden-{portwarden.__version__}")],
        created=_created(analysis.analyzed_at),
    )
    return Document(
        creation_info=creation_info,
        packages=packages,
        relationships=relationships,
        extracted_licensing_info=[
            ExtractedLicensingInfo(
                license_id=ref,
                extracted_text=text,
                license_name=text,
                comment="License declared by a package, not on the SPDX license list.",
            )
            for ref, text in license_refs.allocated.items()
        ],
    )


def _namespace(base: str, name: str, analysis: ImageAnalysis) -> str:
    return f"{base.rstrip('/')}/image/{element_id_part(name)}-{document_uuid(analysis)}"


def _created(analyzed_at: str | None) -> datetime:
    # spdx-tools writes naive datetimes as UTC with second precision (YYYY-MM-DDThh:mm:ssZ).
    moment = analysis_time(analyzed_at) or datetime.now(UTC).replace(microsecond=0)
    return moment.replace(tzinfo=None)


def _image_package(analysis: ImageAnalysis, spdx_id: str) -> Package:
    source = analysis.source
    purl = image_purl(source)
    return Package(
        spdx_id=spdx_id,
        name=image_name(source),
        version=source.manifest_digest,
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        source_info=f"{source.type} image {source.location}, config {source.config_digest}, "
        f"platform {source.platform}",
        external_references=_purl_refs(purl),
        primary_package_purpose=PackagePurpose.CONTAINER,
    )


def _distro_package(distro: Distro) -> Package:
    version_part = f"-{element_id_part(distro.version_id)}" if distro.version_id else ""
    return Package(
        spdx_id=f"SPDXRef-OperatingSystem-{element_id_part(distro.id)}{version_part}",
        name=distro.id,
        version=distro.version_id,
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        description=distro.pretty_name,
        external_references=_cpe_refs([distro.cpe_name] if distro.cpe_name else []),
        primary_package_purpose=PackagePurpose.OPERATING_SYSTEM,
    )


def _package(package: CatalogedPackage, spdx_id: str, license_refs: LicenseRefAllocator) -> Package:
    references = _purl_refs(package.purl) + _cpe_refs(package.cpes)
    dropped = [package.purl] if package.purl and not _purl_refs(package.purl) else []
    dropped += [cpe for cpe in package.cpes if not _cpe_refs([cpe])]
    expression = combined_expression(package.licenses, license_refs)
    sha1 = sha1_of(package)
    return Package(
        spdx_id=spdx_id,
        name=package.name,
        version=package.version or None,
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        checksums=[Checksum(ChecksumAlgorithm.SHA1, sha1)] if sha1 else None,
        source_info=_source_info(package),
        license_concluded=SpdxNoAssertion(),
        license_declared=_parse_expression(expression) if expression else SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        comment=f"identifiers not expressible as SPDX external references: {', '.join(dropped)}"
        if dropped
        else None,
        external_references=references,
        primary_package_purpose=PackagePurpose.LIBRARY,
    )


def _source_info(package: CatalogedPackage) -> str:
    found_in = ", ".join(location.path for location in package.locations) or "the image"
    info = f"acquired package info from {package.type.value} cataloger {package.found_by}: {found_in}"
    source_name = package.metadata.get("source_name")
    if source_name:
        source_version = package.metadata.get("source_version")
        info += f"; source package {source_name}" + (f" {source_version}" if source_version else "")
    return info


def _purl_refs(purl: str | None) -> list[ExternalPackageRef]:
    if not purl:
        return []
    try:
        PackageURL.from_string(purl)
    except ValueError:
        return []
    return [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl)]


def _cpe_refs(cpes: Iterable[str]) -> list[ExternalPackageRef]:
    references: list[ExternalPackageRef] = []
    for cpe in cpes:
        if is_cpe23(cpe):
            references.append(ExternalPackageRef(ExternalPackageRefCategory.SECURITY, "cpe23Type", cpe))
        elif _CPE22_RE.match(cpe):
            references.append(ExternalPackageRef(ExternalPackageRefCategory.SECURITY, "cpe22Type", cpe))
    return references


@cache
def _licensing() -> Any:
    from spdx_tools.common.spdx_licensing import spdx_licensing

    return spdx_licensing


def _parse_expression(expression: str) -> Any:
    # Parsed without validation: LicenseRef- ids are defined in this document, not on the SPDX list.
    return _licensing().parse(expression)
