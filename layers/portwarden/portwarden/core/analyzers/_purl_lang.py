"""Identity and construction of language-ecosystem packages (the shared evidence scan is ``globs``).

Every language analyzer builds its packages through ``language_package`` so that purls come from one
place (packageurl-python, which applies each ecosystem's canonical form: lower-case PyPI names,
``%40`` for npm scopes, …) and locations carry the layer that provided the evidence file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from portwarden.core.ecosystems import ECOSYSTEMS
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import Location, Package, PackageType


def purl(
    package_type: PackageType,
    name: str,
    version: str | None,
    namespace: str | None = None,
    qualifiers: Mapping[str, str] | None = None,
) -> str | None:
    """A package URL (its type from the ecosystem descriptor), or None when the name is empty."""
    if not name:
        return None
    # Imported on first use: a rescan answered from a stored document loads the analyzers only for
    # their names and versions.
    from packageurl import PackageURL

    try:
        return str(
            PackageURL(
                type=ECOSYSTEMS[package_type].purl_type,
                namespace=namespace or None,
                name=name,
                version=version or None,
                qualifiers=dict(qualifiers) if qualifiers else None,
            ).to_string()
        )
    except ValueError:
        return None


def npm_purl(name: str, version: str | None) -> str | None:
    """``@scope/name`` becomes namespace ``@scope`` (encoded ``%40scope``)."""
    namespace, _, bare = name.rpartition("/") if name.startswith("@") else ("", "", name)
    return purl(PackageType.NPM, bare, version, namespace=namespace or None)


def golang_purl(module_path: str, version: str | None) -> str | None:
    """The module path's last element is the purl name, the rest its namespace."""
    namespace, _, name = module_path.rpartition("/")
    return purl(PackageType.GO_MODULE, name, version, namespace=namespace or None)


def maven_purl(group_id: str | None, artifact_id: str, version: str | None) -> str | None:
    return purl(PackageType.JAVA_ARCHIVE, artifact_id, version, namespace=group_id or None)


def composer_purl(name: str, version: str | None) -> str | None:
    vendor, _, project = name.rpartition("/")
    return purl(PackageType.PHP_COMPOSER, project, version, namespace=vendor or None)


def locate(resolver: FileResolver, path: str) -> Location:
    """A Location for ``path`` carrying the digest of the layer that provided it (when known)."""
    record = resolver.lstat(path)
    return Location(path=path, layer_digest=record.layer_digest if record is not None else None)


def language_package(
    *,
    resolver: FileResolver,
    name: str,
    version: str,
    package_type: PackageType,
    package_url: str | None,
    found_by: str,
    evidence: Iterable[str],
    licenses: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    owned_files: Iterable[str] = (),
) -> Package:
    """Build a Package; ``evidence`` lists the files it was read from, the primary one first."""
    seen: dict[str, None] = {}
    for path in evidence:
        seen.setdefault(path, None)
    unique_licenses = tuple(dict.fromkeys(item.strip() for item in licenses if item and item.strip()))
    return Package(
        name=name,
        version=version,
        type=package_type,
        purl=package_url,
        licenses=unique_licenses,
        locations=tuple(locate(resolver, path) for path in seen),
        found_by=found_by,
        metadata=_without_empty(dict(metadata or {})),
        owned_files=tuple(dict.fromkeys(owned_files)),
    )


def _without_empty(metadata: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values so analysis documents stay small."""
    return {key: value for key, value in metadata.items() if value not in (None, "", [], {}, ())}
