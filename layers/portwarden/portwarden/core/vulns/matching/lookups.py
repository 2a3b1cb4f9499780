"""Which namespace, name and version each cataloged package is searched under.

OS packages (the ecosystem descriptor says which types are) are looked up in their distro's namespace
(``debian:12``…) through their **source** package (dpkg ``Source:``, apk origin, rpm source rpm), with
the source version; the binary name is searched too when it differs, since some advisories name
binaries. Language packages are looked up in their ecosystem namespace under their normalized name
(PEP 503, Maven ``groupId:artifactId``, npm lowercase with its scope, Go module path as is).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from portwarden.core.ecosystems import OS_PACKAGE_TYPES
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package, PackageType
from portwarden.core.vulns.feeds.naming import modular_package_name, module_stream
from portwarden.core.vulns.namespaces import (
    distro_namespace,
    language_lookup_name,
    language_namespace,
    lookup_name,
)

# Versions that name no release: nothing can be said about them.
UNVERSIONED = frozenset({"", "(devel)", "unknown"})
GO_STDLIB = "stdlib"
# Namespace families whose feeds name a modular rpm by its module stream (``nodejs:18::nodejs``): a
# package of a stream is looked up only under that name there. Elsewhere (Alma, Rocky OSV) advisories
# name the plain package, which is searched too.
STREAM_QUALIFIED_FAMILIES = frozenset({"rhel"})


class Lookup(NamedTuple):
    """One search: a package, the name it is searched under, and the version to compare."""

    package_index: int
    namespace: str
    name: str
    version: str
    searched_by: str
    # A search by the package's own (or source) name, rather than a binary name of an OS package.
    primary: bool


def language_version(package: Package) -> str | None:
    """The version a language package is compared as, or None when it names no release.

    The Go toolchain spells its releases ``go1.22.1`` while advisories for ``stdlib`` (and grype)
    compare ``1.22.1``; a development toolchain (``devel``) names no release.
    """
    version = package.version.strip()
    if package.type is PackageType.GO_MODULE and package.name == GO_STDLIB:
        version = version.removeprefix("go")
        if not version[:1].isdigit():
            return None
    return None if version in UNVERSIONED else version


def plan_lookups(packages: Sequence[Package], distro: Distro | None) -> list[Lookup]:
    """The searches to run for ``packages``; packages no namespace covers are left out."""
    os_namespace = distro_namespace(distro)
    lookups: list[Lookup] = []
    for index, package in enumerate(packages):
        if package.type in OS_PACKAGE_TYPES:
            if os_namespace is None:
                continue
            source_name = str(package.metadata.get("source_name") or "").strip()
            source_version = str(package.metadata.get("source_version") or "").strip()
            stream = module_stream(str(package.metadata.get("modularity_label") or ""))
            if stream is not None and package.type is PackageType.RPM:
                lookups.extend(
                    _modular_lookups(index, package, os_namespace, stream, source_name, source_version)
                )
                if os_namespace.split(":", 1)[0] in STREAM_QUALIFIED_FAMILIES:
                    continue
            if source_name:
                lookups.append(
                    Lookup(
                        index,
                        os_namespace,
                        lookup_name(os_namespace, source_name),
                        source_version or package.version,
                        f"source-package:{source_name}",
                        True,
                    )
                )
            if source_name != package.name:
                lookups.append(
                    Lookup(
                        index,
                        os_namespace,
                        lookup_name(os_namespace, package.name),
                        package.version,
                        f"binary-package:{package.name}",
                        False,
                    )
                )
            continue
        namespace = language_namespace(package.type)
        version = language_version(package)
        if namespace is None or version is None:
            continue
        name = language_lookup_name(package, namespace)
        if name is None:
            continue
        lookups.append(Lookup(index, namespace, name, version, f"package-name:{name}", True))
    return lookups


def _modular_lookups(
    index: int, package: Package, namespace: str, stream: str, source_name: str, source_version: str
) -> list[Lookup]:
    """The searches of a package built for a module stream, under its stream-qualified names."""
    lookups: list[Lookup] = []
    if source_name:
        name = modular_package_name(stream, source_name)
        lookups.append(
            Lookup(
                index,
                namespace,
                lookup_name(namespace, name),
                source_version or package.version,
                f"source-package:{name}",
                True,
            )
        )
    if source_name != package.name:
        name = modular_package_name(stream, package.name)
        lookups.append(
            Lookup(
                index,
                namespace,
                lookup_name(namespace, name),
                package.version,
                f"binary-package:{name}",
                False,
            )
        )
    return lookups
