"""The one registry of version comparators, keyed by ecosystem, and the names that lead to them.

Package types (what the catalogers emit) and OSV ecosystem names (what the feeds carry) both map to
a comparator key here, so no other module decides how an ecosystem orders versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from portwarden.core.ecosystems import ECOSYSTEMS, LANGUAGE_FEED_ECOSYSTEMS
from portwarden.core.errors import UnknownEcosystemError
from portwarden.core.vulns.versions.apk import ApkComparator
from portwarden.core.vulns.versions.base import Comparator
from portwarden.core.vulns.versions.dpkg import DpkgComparator
from portwarden.core.vulns.versions.maven import MavenComparator
from portwarden.core.vulns.versions.packagist import PackagistComparator
from portwarden.core.vulns.versions.pypi import PypiComparator
from portwarden.core.vulns.versions.rpm import RpmComparator
from portwarden.core.vulns.versions.rubygems import RubyGemsComparator
from portwarden.core.vulns.versions.semver import NugetComparator, SemverComparator


def _build_registry() -> Mapping[str, Comparator]:
    comparators: list[Comparator] = [
        DpkgComparator(),
        RpmComparator(),
        ApkComparator(),
        PypiComparator(),
        SemverComparator(),
        # npm, Go and crates.io share the SemVer rules but get their own instance (and parse cache)
        SemverComparator("npm"),
        SemverComparator("go"),
        SemverComparator("crates.io"),
        MavenComparator(),
        RubyGemsComparator(),
        NugetComparator(),
        PackagistComparator(),
    ]
    registry: dict[str, Comparator] = {}
    for comparator in comparators:
        if comparator.name in registry:
            raise ValueError(f"duplicate version comparator {comparator.name!r}")
        registry[comparator.name] = comparator
    return MappingProxyType(registry)


COMPARATORS: Mapping[str, Comparator] = _build_registry()

# Portwarden package types (PackageType values) -> comparator key, from the ecosystem descriptor.
PACKAGE_TYPE_COMPARATORS: Mapping[str, str] = MappingProxyType(
    {package_type.value: e.comparator for package_type, e in ECOSYSTEMS.items()}
)

# OSV ecosystem names (the part before any ":release" suffix, compared case-insensitively)
# -> comparator key: the language ecosystems from the descriptor, then the distribution families
# (several distributions share a package format, so these are keyed by distro, not package type).
OSV_ECOSYSTEM_COMPARATORS: Mapping[str, str] = MappingProxyType(
    {
        **{e.feed_ecosystem.lower(): e.comparator for e in LANGUAGE_FEED_ECOSYSTEMS if e.feed_ecosystem},
        "debian": "dpkg",
        "ubuntu": "dpkg",
        "alpine": "apk",
        "wolfi": "apk",
        "chainguard": "apk",
        "alpaquita": "apk",
        "bellsoft hardened containers": "apk",
        "red hat": "rpm",
        "redhat": "rpm",
        "rocky linux": "rpm",
        "almalinux": "rpm",
        "suse": "rpm",
        "opensuse": "rpm",
        "mageia": "rpm",
        "openeuler": "rpm",
        "azure linux": "rpm",
        "cbl-mariner": "rpm",
        "mariner": "rpm",
        "amazon linux": "rpm",
        "oracle linux": "rpm",
        "hex": "semver",
        "semver": "semver",
    }
)


def get_comparator(key: str) -> Comparator:
    """The comparator registered under ``key`` (e.g. ``"dpkg"``); raises UnknownEcosystemError."""
    try:
        return COMPARATORS[key]
    except KeyError:
        raise UnknownEcosystemError(key) from None


def comparator_key_for_package_type(package_type: str) -> str:
    """Comparator key for a Portwarden package type (``"deb"`` -> ``"dpkg"``)."""
    try:
        return PACKAGE_TYPE_COMPARATORS[str(package_type)]
    except KeyError:
        raise UnknownEcosystemError(str(package_type)) from None


def comparator_key_for_osv_ecosystem(ecosystem: str) -> str:
    """Comparator key for an OSV ecosystem name, with or without a release suffix.

    ``"Debian:12"``, ``"Ubuntu:22.04:LTS"``, ``"Alpine:v3.20"``, ``"Red Hat:enterprise_linux:9"`` and
    ``"PyPI"`` all resolve; the match ignores case.
    """
    base = ecosystem.split(":", 1)[0].strip().lower()
    try:
        return OSV_ECOSYSTEM_COMPARATORS[base]
    except KeyError:
        raise UnknownEcosystemError(ecosystem) from None
