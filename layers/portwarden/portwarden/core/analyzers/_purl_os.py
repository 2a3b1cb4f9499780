"""Helpers shared by the OS package analyzers (dpkg, apk, rpm): package URLs, locations, bounded reads.

Package URLs follow the Syft/Anchore convention for OS packages: the namespace is the distro id,
``arch`` and ``distro=<id>-<version_id>`` are qualifiers, and ``upstream`` names the source package
when it differs from the binary one (that is what vulnerability matching goes through).
"""

from __future__ import annotations

from collections.abc import Mapping

from portwarden.core.ecosystems import ECOSYSTEMS
from portwarden.core.errors import CorruptPackageDatabaseError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location, PackageType


def distro_qualifier(distro: Distro | None) -> str | None:
    """``debian-12``, ``alpine-3.20.1``; just the id for releases without a version (rolling distros)."""
    if distro is None or not distro.id:
        return None
    return f"{distro.id}-{distro.version_id}" if distro.version_id else distro.id


def os_package_purl(
    package_type: PackageType,
    name: str,
    version: str,
    distro: Distro | None,
    qualifiers: Mapping[str, str | None],
) -> str:
    """The package URL of an OS package; empty qualifiers are left out and the namespace is the distro
    id when the distro is known (a purl without namespace is still valid, merely less specific)."""
    kept = {key: value for key, value in qualifiers.items() if value}
    qualifier = distro_qualifier(distro)
    if qualifier:
        kept["distro"] = qualifier
    namespace = distro.id.lower() if distro is not None and distro.id else None
    from packageurl import PackageURL  # on first use (see _purl_lang.purl)

    return str(
        PackageURL(
            type=ECOSYSTEMS[package_type].purl_type,
            namespace=namespace,
            name=name,
            version=version or None,
            qualifiers=kept or None,
        ).to_string()
    )


def location_of(resolver: FileResolver, path: str) -> Location:
    """A location for ``path`` carrying the layer that provided the file, when the resolver knows it."""
    record = resolver.stat(path)
    return Location(path=path, layer_digest=record.layer_digest if record is not None else None)


def read_capped(resolver: FileResolver, path: str, max_bytes: int) -> bytes:
    """The content of ``path``, refusing files larger than ``max_bytes`` instead of loading them."""
    data = resolver.read_bytes(path, limit=max_bytes + 1)
    if len(data) > max_bytes:
        raise CorruptPackageDatabaseError(
            f"{path} is larger than the {max_bytes}-byte limit for this database"
        )
    return data
