"""One descriptor per package type: everything the rest of Portwarden needs to know about an ecosystem.

Whether a type is an OS package, its purl type, where its vulnerabilities are looked up, how its versions
compare, what Anchore calls it and what the feeds call it used to be decided in a table per module;
those modules now read them here, so adding an ecosystem is one entry in :data:`ECOSYSTEMS` (plus, for
a new version scheme, its comparator in ``core.vulns.versions``).

Pure data: this module imports only the package model, so any layer of core can read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from portwarden.core.model.package import PackageType


@dataclass(frozen=True)
class Ecosystem:
    """The facts of one package type."""

    package_type: PackageType
    # Installed by the distribution's package manager: matched through the distro's namespace (by source
    # package), reported as "os" by Anchore's API and gates, and its files own what language
    # catalogers find inside them.
    os_package: bool
    # The purl type (``pkg:<type>/…``) of packages of this type.
    purl_type: str
    # The vulnerability-database namespace of a language ecosystem; None for OS packages, whose
    # namespace is their distro release (``core.vulns.namespaces.distro_namespace``).
    namespace: str | None
    # The key of the version comparator in ``core.vulns.versions.registry``.
    comparator: str
    # Anchore's content type name for the type (``GET /images/{digest}/content/{type}``, ``package_type``).
    anchore_type: str
    # The OSV ecosystem name of a language ecosystem (feeds spell it so; the sync downloads it). None for
    # OS packages: their feeds are per distribution.
    feed_ecosystem: str | None
    # The matcher name grype gives matches of this type, reported in ``matched_by.matcher``.
    matcher: str
    # Components are compiled into executables (Go modules, Rust crates): an OS package owning the
    # executable accounts for its main component only, not for what was linked into it.
    compiled_in: bool = False


# The table. Language ecosystems are listed in the order their feeds are synced by default.
_TABLE: tuple[Ecosystem, ...] = (
    Ecosystem(
        PackageType.DEB,
        os_package=True,
        purl_type="deb",
        namespace=None,
        comparator="dpkg",
        anchore_type="dpkg",
        feed_ecosystem=None,
        matcher="dpkg-matcher",
    ),
    Ecosystem(
        PackageType.APK,
        os_package=True,
        purl_type="apk",
        namespace=None,
        comparator="apk",
        anchore_type="apkg",
        feed_ecosystem=None,
        matcher="apk-matcher",
    ),
    Ecosystem(
        PackageType.RPM,
        os_package=True,
        purl_type="rpm",
        namespace=None,
        comparator="rpm",
        anchore_type="rpm",
        feed_ecosystem=None,
        matcher="rpm-matcher",
    ),
    Ecosystem(
        PackageType.PYTHON,
        os_package=False,
        purl_type="pypi",
        namespace="pypi",
        comparator="pypi",
        anchore_type="python",
        feed_ecosystem="PyPI",
        matcher="python-matcher",
    ),
    Ecosystem(
        PackageType.NPM,
        os_package=False,
        purl_type="npm",
        namespace="npm",
        comparator="npm",
        anchore_type="npm",
        feed_ecosystem="npm",
        matcher="javascript-matcher",
    ),
    Ecosystem(
        PackageType.JAVA_ARCHIVE,
        os_package=False,
        purl_type="maven",
        namespace="maven",
        comparator="maven",
        anchore_type="java",
        feed_ecosystem="Maven",
        matcher="java-matcher",
    ),
    Ecosystem(
        PackageType.GO_MODULE,
        os_package=False,
        purl_type="golang",
        namespace="go",
        comparator="go",
        anchore_type="go",
        feed_ecosystem="Go",
        matcher="go-module-matcher",
        compiled_in=True,
    ),
    Ecosystem(
        PackageType.GEM,
        os_package=False,
        purl_type="gem",
        namespace="rubygems",
        comparator="rubygems",
        anchore_type="gem",
        feed_ecosystem="RubyGems",
        matcher="ruby-gem-matcher",
    ),
    Ecosystem(
        PackageType.RUST_CRATE,
        os_package=False,
        purl_type="cargo",
        namespace="crates.io",
        comparator="crates.io",
        anchore_type="rust",
        feed_ecosystem="crates.io",
        matcher="rust-matcher",
        compiled_in=True,
    ),
    Ecosystem(
        PackageType.DOTNET,
        os_package=False,
        purl_type="nuget",
        namespace="nuget",
        comparator="nuget",
        anchore_type="nuget",
        feed_ecosystem="NuGet",
        matcher="dotnet-matcher",
    ),
    Ecosystem(
        PackageType.PHP_COMPOSER,
        os_package=False,
        purl_type="composer",
        namespace="packagist",
        comparator="packagist",
        anchore_type="composer",
        feed_ecosystem="Packagist",
        matcher="php-composer-matcher",
    ),
)
ECOSYSTEMS: Mapping[PackageType, Ecosystem] = MappingProxyType({e.package_type: e for e in _TABLE})


def _check_complete() -> None:
    if len(ECOSYSTEMS) != len(_TABLE):
        raise RuntimeError("a package type has two ecosystem descriptors")
    missing = sorted(t.value for t in PackageType if t not in ECOSYSTEMS)
    if missing:
        raise RuntimeError(f"package types without an ecosystem descriptor: {', '.join(missing)}")
    for field in ("purl_type", "anchore_type", "matcher"):
        values = [getattr(e, field) for e in ECOSYSTEMS.values()]
        if len(set(values)) != len(values):
            raise RuntimeError(f"two ecosystems share a {field}")


_check_complete()


def ecosystem(package_type: PackageType | str) -> Ecosystem | None:
    """The descriptor of a package type (an enum member or its value); None for an unknown type."""
    try:
        return ECOSYSTEMS.get(PackageType(package_type))
    except ValueError:
        return None


def is_os_package_type(package_type: PackageType | str) -> bool:
    found = ecosystem(package_type)
    return found is not None and found.os_package


OS_PACKAGE_TYPES: frozenset[PackageType] = frozenset(t for t, e in ECOSYSTEMS.items() if e.os_package)
# Language namespaces in the vulnerability database, by package type.
LANGUAGE_NAMESPACES: Mapping[PackageType, str] = MappingProxyType(
    {t: e.namespace for t, e in ECOSYSTEMS.items() if e.namespace is not None}
)
# OSV ecosystem names of the language ecosystems, in table order.
LANGUAGE_FEED_ECOSYSTEMS: tuple[Ecosystem, ...] = tuple(
    e for e in ECOSYSTEMS.values() if e.feed_ecosystem is not None
)
