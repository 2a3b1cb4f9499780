"""SPDX 2.3 JSON.

Packages are the SPDX packages other than the image (purpose ``CONTAINER``) and the distro (purpose
``OPERATING-SYSTEM``); each needs a purl (``PACKAGE-MANAGER purl`` external reference) to be typed. CPEs
come from ``SECURITY cpe23Type``/``cpe22Type`` references, locations from ``sourceInfo`` as Syft and
Portwarden write it (``acquired package info from …: /path, /path``).
"""

from __future__ import annotations

import re
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

FORMAT_NAME = "SPDX 2.3"
SUPPORTED_VERSION = "SPDX-2.3"
_SKIPPED_PURPOSES = frozenset({"CONTAINER", "OPERATING-SYSTEM", "OPERATING_SYSTEM", "FILE", "SOURCE"})
_FOUND_BY = re.compile(r"cataloger (\S+):")
_NO_ASSERTION = frozenset({"NOASSERTION", "NONE", ""})


def is_spdx(document: dict[str, Any]) -> bool:
    return isinstance(document.get("spdxVersion"), str) or "SPDXID" in document


def decode_spdx(document: dict[str, Any], data: bytes, location: str) -> ImageAnalysis:
    version = text(document.get("spdxVersion"))
    if version != SUPPORTED_VERSION:
        raise SbomFormatError(
            f"{location}: SPDX version {version or '(none)'} is not supported "
            "(Portwarden reads SPDX 2.3 JSON)"
        )
    packages = document.get("packages", [])
    if not isinstance(packages, list):
        raise SbomFormatError(f"{location}: SPDX packages is not a list")
    report = DecodeReport()
    stated_distro: Distro | None = None
    image = ImageFacts()
    for package in dicts(packages):
        purpose = text(package.get("primaryPackagePurpose")).upper()
        if purpose in ("OPERATING-SYSTEM", "OPERATING_SYSTEM"):
            stated_distro = stated_distro or _distro(package)
        elif purpose == "CONTAINER":
            image = _image(package)
        if purpose in _SKIPPED_PURPOSES:
            continue
        add_package(report, _draft(package), "spdx")
    creation = document.get("creationInfo")
    created = text(creation.get("created")) if isinstance(creation, dict) else ""
    if created and image.analyzed_at is None:
        image = ImageFacts(
            reference=image.reference,
            manifest_digest=image.manifest_digest,
            config_digest=image.config_digest,
            platform=image.platform,
            analyzed_at=created,
        )
    return build_analysis(data, location, FORMAT_NAME, image, pick_distro(stated_distro, report), report)


def _references(package: dict[str, Any], kinds: tuple[str, ...]) -> list[str]:
    return [
        text(reference.get("referenceLocator"))
        for reference in dicts(package.get("externalRefs"))
        if text(reference.get("referenceType")) in kinds and text(reference.get("referenceLocator"))
    ]


def _draft(package: dict[str, Any]) -> PackageDraft:
    purls = _references(package, ("purl",))
    source_info = text(package.get("sourceInfo"))
    found_by = _FOUND_BY.search(source_info)
    license_declared = text(package.get("licenseDeclared"))
    return PackageDraft(
        name=text(package.get("name")),
        version=text(package.get("versionInfo")),
        purl=purls[0] if purls else None,
        cpes=tuple(_references(package, ("cpe23Type", "cpe22Type"))),
        licenses=() if license_declared in _NO_ASSERTION else (license_declared,),
        locations=_locations(source_info),
        found_by=found_by.group(1) if found_by else None,
    )


def _locations(source_info: str) -> tuple[Location, ...]:
    # "acquired package info from <what>: /a, /b[; source package …]"
    head, sep, tail = source_info.partition(": ")
    if not sep or not head.startswith("acquired package info from"):
        return ()
    paths = tail.split(";", 1)[0]
    return tuple(Location(path=path.strip()) for path in paths.split(", ") if path.strip().startswith("/"))


def _distro(package: dict[str, Any]) -> Distro | None:
    name = text(package.get("name"))
    if not name:
        return None
    cpes = _references(package, ("cpe23Type", "cpe22Type"))
    return Distro(
        id=name.lower(),
        version_id=text(package.get("versionInfo")) or None,
        cpe_name=cpes[0] if cpes else None,
        pretty_name=text(package.get("description")) or None,
    )


def _image(package: dict[str, Any]) -> ImageFacts:
    digest = text(package.get("versionInfo"))
    for purl_text in _references(package, ("purl",)):
        purl = parse_purl(purl_text)
        if (
            purl is not None
            and (purl.version or "").startswith("sha256:")
            and not digest.startswith("sha256:")
        ):
            digest = str(purl.version)
    return ImageFacts(
        reference=text(package.get("name")) or None,
        manifest_digest=digest if digest.startswith("sha256:") else None,
    )
