"""Whether a VEX product identifier names the scanned image or one of its packages.

An image is named by its digest (``sha256:…``, ``registry/repo@sha256:…``, ``pkg:oci/name@sha256:…``), by
its repository (``registry/repo``, ``pkg:oci/name?repository_url=registry/repo``) or by a tag
(``registry/repo:tag``). A package is named by its purl: type, namespace and name must be equal, the
version too when the identifier has one, and every qualifier the identifier states must be the package's
(``pkg:deb/debian/libssl3`` names every version and architecture of libssl3). A CycloneDX bom-ref (or a
BOM-Link ending in ``#bom-ref``) names the package the Portwarden CycloneDX encoder gave that ref.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from packageurl import PackageURL

from portwarden.core.errors import InvalidReferenceError
from portwarden.core.image.reference import ImageReference
from portwarden.core.model.analysis import ImageAnalysis


@dataclass(frozen=True)
class ImageIdentity:
    """Every name the scanned image answers to."""

    digests: frozenset[str]
    repositories: frozenset[str]
    tags: frozenset[str]
    short_names: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, analysis: ImageAnalysis, repo_tag: str | None = None) -> ImageIdentity:
        source = analysis.source
        digests = {d for d in (source.manifest_digest, source.index_digest) if d}
        repositories: set[str] = set()
        tags: set[str] = set()
        for text in (source.reference, repo_tag):
            if not text:
                continue
            try:
                reference = ImageReference.parse(text)
            except InvalidReferenceError:
                continue
            repository = f"{reference.registry}/{reference.repository}"
            repositories.add(repository)
            if reference.tag:
                tags.add(f"{repository}:{reference.tag}")
            if reference.digest:
                digests.add(reference.digest)
        return cls(
            digests=frozenset(digests),
            repositories=frozenset(repositories),
            tags=frozenset(tags),
            short_names=frozenset(repository.rsplit("/", 1)[-1] for repository in repositories),
        )

    def named_by(self, identifier: str) -> bool:
        text = identifier.strip()
        if text.startswith("pkg:"):
            purl = _purl(text)
            return purl is not None and purl.type == "oci" and self._named_by_oci_purl(purl)
        if text.startswith(("sha256:", "sha512:")):
            return text in self.digests
        try:
            reference = ImageReference.parse(text)
        except InvalidReferenceError:
            return False
        repository = f"{reference.registry}/{reference.repository}"
        if reference.digest:
            return reference.digest in self.digests and (
                not self.repositories or repository in self.repositories
            )
        if _has_explicit_tag(text):
            return f"{repository}:{reference.tag}" in self.tags
        return repository in self.repositories

    def _named_by_oci_purl(self, purl: PackageURL) -> bool:
        qualifiers = _qualifiers(purl)
        if purl.version:
            return purl.version in self.digests
        repository_url = qualifiers.get("repository_url")
        if repository_url:
            try:
                reference = ImageReference.parse(repository_url)
            except InvalidReferenceError:
                return False
            repository = f"{reference.registry}/{reference.repository}"
            if repository not in self.repositories:
                return False
            tag = qualifiers.get("tag")
            return tag is None or f"{repository}:{tag}" in self.tags
        return purl.name in self.short_names


def _has_explicit_tag(text: str) -> bool:
    return ":" in text.rsplit("/", 1)[-1]


@lru_cache(maxsize=8192)
def _purl(text: str) -> PackageURL | None:
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def _qualifiers(purl: PackageURL) -> dict[str, str]:
    qualifiers = purl.qualifiers
    return dict(qualifiers) if isinstance(qualifiers, dict) else {}


def _normalized_name(purl: PackageURL) -> str:
    if purl.type == "pypi":
        return purl.name.lower().replace("_", "-").replace(".", "-")
    return purl.name


def purl_names_package(identifier: str, package_purl: str | None) -> bool:
    """Whether the purl ``identifier`` names the package whose purl is ``package_purl``."""
    if not package_purl or not identifier.startswith("pkg:"):
        return False
    if identifier == package_purl:
        return True
    wanted, actual = _purl(identifier), _purl(package_purl)
    if wanted is None or actual is None:
        return False
    if (wanted.type, (wanted.namespace or "").lower(), _normalized_name(wanted)) != (
        actual.type,
        (actual.namespace or "").lower(),
        _normalized_name(actual),
    ):
        return False
    if wanted.version and wanted.version != actual.version:
        return False
    stated, present = _qualifiers(wanted), _qualifiers(actual)
    return all(present.get(key) == value for key, value in stated.items())


def names_package(identifier: str, package_purl: str | None, bom_ref: str | None) -> bool:
    text = identifier.strip()
    if text.startswith("pkg:"):
        return purl_names_package(text, package_purl)
    if bom_ref is None:
        return False
    return text == bom_ref or text.endswith(f"#{bom_ref}")
