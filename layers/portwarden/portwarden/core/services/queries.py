"""Questions across an account's analyzed images: which are affected by a vulnerability, which
contain a package. Both read the stored analyses and matches (no re-analysis, no re-match)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from portwarden.core.model.match import Match
from portwarden.core.model.package import Package
from portwarden.core.model.records import AnalysisStatus, ImageRecord
from portwarden.core.ports import AnalysisStore, CatalogStore

# Every analyzed image of an account is looked at; a local store holds thousands, not millions.
MAX_IMAGES = 100_000


@dataclass(frozen=True)
class VulnerableImage:
    image: ImageRecord
    matches: tuple[Match, ...]


@dataclass(frozen=True)
class ImageWithPackages:
    image: ImageRecord
    packages: tuple[Package, ...]


def _analyzed(catalog: CatalogStore) -> list[ImageRecord]:
    return catalog.list_images_by_status(AnalysisStatus.ANALYZED, limit=MAX_IMAGES)


def images_by_vulnerability(
    catalog: CatalogStore,
    analyses: AnalysisStore,
    vulnerability_id: str,
    *,
    namespace: str | None = None,
    affected_package: str | None = None,
    severity: str | None = None,
    vendor_only: bool = True,
) -> Iterator[VulnerableImage]:
    """Analyzed images with a match of ``vulnerability_id`` (or of an alias of it), newest first."""
    from portwarden.core.model.vulnerability import FixState

    for image in _analyzed(catalog):
        found = tuple(
            match
            for match in analyses.get_matches(image.image_digest) or ()
            if (match.id == vulnerability_id or vulnerability_id in match.aliases)
            and (namespace is None or match.namespace == namespace)
            and (affected_package is None or match.package.name == affected_package)
            and (severity is None or match.severity.value.lower() == severity.lower())
            and not (vendor_only and match.fix.state is FixState.WONT_FIX)
        )
        if found:
            yield VulnerableImage(image, found)


def images_by_package(
    catalog: CatalogStore,
    analyses: AnalysisStore,
    name: str,
    *,
    package_type: str | None = None,
    version: str | None = None,
) -> Iterator[ImageWithPackages]:
    """Analyzed images containing a package named ``name`` (optionally of a type and version)."""
    for image in _analyzed(catalog):
        analysis = analyses.get_analysis(image.image_digest)
        if analysis is None:
            continue
        found = tuple(
            package
            for package in analysis.packages
            if package.name == name
            and (package_type is None or package.type.value == package_type)
            and (version is None or package.version == version)
        )
        if found:
            yield ImageWithPackages(image, found)
