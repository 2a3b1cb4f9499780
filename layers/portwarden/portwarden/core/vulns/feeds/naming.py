"""Namespaces, comparator keys and package-name normalization, shared by the feed parsers and the matcher.

A namespace says where a package comes from: ``debian:12``, ``alpine:3.20`` and ``ubuntu:22.04`` for
distributions, the lowercase ecosystem name (``pypi``, ``npm``, ``maven``, ``go``…) for language
packages. Each namespace family has a version format, the key of its comparator in
``portwarden.core.vulns.versions``. Package names are normalized the same way on both sides (feed
records and cataloged packages), so a lookup is a plain equality.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from portwarden.core.ecosystems import LANGUAGE_FEED_ECOSYSTEMS


class NamespaceInfo(NamedTuple):
    namespace: str
    version_format: str
    # Set for distro channels whose fixes are not in the public archive (Ubuntu Pro / ESM).
    channel: str | None = None


# OSV ecosystem name -> (namespace, comparator), from the ecosystem descriptor. OSV spells
# ecosystems case-sensitively.
LANGUAGE_ECOSYSTEMS: dict[str, NamespaceInfo] = {
    e.feed_ecosystem: NamespaceInfo(e.namespace, e.comparator)
    for e in LANGUAGE_FEED_ECOSYSTEMS
    if e.feed_ecosystem is not None and e.namespace is not None
}

# OSV distro ecosystem prefix -> (namespace prefix, comparator). The release follows the colon.
DISTRO_ECOSYSTEMS: dict[str, tuple[str, str]] = {
    "Debian": ("debian", "dpkg"),
    "Ubuntu": ("ubuntu", "dpkg"),
    "Alpine": ("alpine", "apk"),
    "AlmaLinux": ("almalinux", "rpm"),
    "Rocky Linux": ("rocky", "rpm"),
}

# Rolling distributions have no release: one namespace each.
ROLLING_DISTROS: dict[str, NamespaceInfo] = {
    "Wolfi": NamespaceInfo("wolfi:rolling", "apk"),
    "Chainguard": NamespaceInfo("chainguard:rolling", "apk"),
}

# Debian codenames as the security tracker spells releases. Extend when a release is named.
DEBIAN_CODENAMES: dict[str, str] = {
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
    "duke": "15",
    "sid": "unstable",
}

_RELEASE_NUMBER = re.compile(r"^\d+(\.\d+)*$")


def osv_namespace(ecosystem: str) -> NamespaceInfo | None:
    """The namespace of an OSV ``affected[].package.ecosystem``, or None for ecosystems we cannot match.

    ``Debian:12`` -> ``debian:12``; ``Alpine:v3.20`` -> ``alpine:3.20``; ``Ubuntu:22.04:LTS`` and
    ``Ubuntu:Pro:22.04:LTS`` -> ``ubuntu:22.04`` (the latter on the ``pro`` channel).
    """
    known = LANGUAGE_ECOSYSTEMS.get(ecosystem) or ROLLING_DISTROS.get(ecosystem)
    if known is not None:
        return known
    family, _, rest = ecosystem.partition(":")
    distro = DISTRO_ECOSYSTEMS.get(family)
    if distro is None or not rest:
        return None
    prefix, version_format = distro
    parts = rest.split(":")
    releases = [part.removeprefix("v") for part in parts if _RELEASE_NUMBER.match(part.removeprefix("v"))]
    release = releases[0] if releases else None
    if release is None:
        return None
    channel = "pro" if "Pro" in parts else None
    return NamespaceInfo(f"{prefix}:{release}", version_format, channel)


def debian_namespace(codename: str) -> str | None:
    release = DEBIAN_CODENAMES.get(codename.strip().lower())
    return f"debian:{release}" if release else None


def alpine_namespace(distroversion: str) -> str | None:
    """``v3.20`` -> ``alpine:3.20``; ``edge`` -> ``alpine:edge``."""
    release = distroversion.strip().removeprefix("v")
    if release == "edge" or _RELEASE_NUMBER.match(release):
        return f"alpine:{release}"
    return None


_PEP503_SEPARATORS = re.compile(r"[-_.]+")


def normalize_pypi_name(name: str) -> str:
    """PEP 503: lowercase, each run of ``-_.`` becomes ``-`` (``Foo.Bar_baz`` -> ``foo-bar-baz``)."""
    return _PEP503_SEPARATORS.sub("-", name.strip()).lower()


def normalize_npm_name(name: str) -> str:
    """npm names are lowercase; the ``@scope/`` prefix is part of the name and is kept."""
    return name.strip().lower()


def normalize_maven_name(name: str) -> str:
    """``groupId:artifactId``. Accepts ``group/artifact`` (purl style) and drops a trailing ``:version``."""
    cleaned = name.strip().replace("/", ":")
    parts = [part for part in cleaned.split(":") if part]
    return ":".join(parts[:2]).lower() if len(parts) >= 2 else cleaned.lower()


def normalize_go_name(name: str) -> str:
    """Go module paths are case-sensitive (``github.com/Sirupsen/logrus`` is another module): kept as is."""
    return name.strip()


def _lowercase_name(name: str) -> str:
    return name.strip().lower()


_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "pypi": normalize_pypi_name,
    "npm": normalize_npm_name,
    "maven": normalize_maven_name,
    "go": normalize_go_name,
    # Registries that treat names case-insensitively.
    "nuget": _lowercase_name,
    "packagist": _lowercase_name,
    "crates.io": _lowercase_name,
}


def normalize_package_name(namespace: str, name: str) -> str:
    """The name under which a package of ``namespace`` is stored and looked up.

    Language ecosystems apply their registry's equivalence rules; distro packages (and RubyGems,
    whose names are case-sensitive) are only trimmed.
    """
    family = namespace.split(":", 1)[0]
    normalizer = _NORMALIZERS.get(family)
    return normalizer(name) if normalizer else name.strip()
