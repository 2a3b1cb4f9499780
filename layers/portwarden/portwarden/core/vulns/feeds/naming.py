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
    "openSUSE:Tumbleweed": NamespaceInfo("opensuse-tumbleweed:rolling", "rpm"),
}

# SUSE files an advisory under the *product* that ships the package: ``SUSE:Linux Enterprise Server 15
# SP5``, its support-phase spellings (``… 15 SP5-LTSS``) and, for most base packages of SLE 15, the module
# (``SUSE:Linux Enterprise Module for Basesystem 15 SP5``). Every one of them is a package set of the
# SLES release, so they all map to ``sles:<major>.<service pack>`` (an SLES GA release, os-release
# ``VERSION_ID="15"``, is ``sles:15``). Other SLE products (Micro, Desktop, Real Time) are other
# distributions and are not matched.
_SLE_PRODUCT = re.compile(
    r"^Linux Enterprise (?:Server(?: for SAP Applications)?|Module for [A-Za-z0-9 &+-]+?) "
    r"(?P<major>\d+)(?: SP(?P<sp>\d+))?(?:-[A-Z-]+)?$"
)
_OPENSUSE_LEAP = re.compile(r"^Leap (?P<release>\d+\.\d+)$")
# Red Hat's OSV ecosystems name the CPE of the repository: ``Red Hat:enterprise_linux:9::appstream``.
# Only the main stream of a major release is an image's repository set; EUS, E4S, AUS… are not.
_RED_HAT_STREAM = re.compile(r"^enterprise_linux:(?P<major>\d+)(?::|$)")

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
    if family in ("SUSE", "openSUSE", "Red Hat"):
        namespace = _product_namespace(family, rest.strip())
        if namespace is None:
            return None
        # A fix published for LTSS subscribers only: kept, and said so on the match.
        channel = "ltss" if rest.strip().endswith("-LTSS") else None
        return NamespaceInfo(namespace, "rpm", channel)
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


def _product_namespace(family: str, product: str) -> str | None:
    """The namespace of a SUSE, openSUSE or Red Hat product named in an OSV ecosystem, or None."""
    if family == "SUSE":
        sle = _SLE_PRODUCT.match(product)
        if sle is None:
            return None
        service_pack = sle.group("sp")
        return f"sles:{sle.group('major')}" + (f".{int(service_pack)}" if service_pack else "")
    if family == "openSUSE":
        leap = _OPENSUSE_LEAP.match(product)
        return f"opensuse-leap:{leap.group('release')}" if leap else None
    stream = _RED_HAT_STREAM.match(product)
    return f"rhel:{int(stream.group('major'))}" if stream else None


def red_hat_cpe_namespace(cpe: str) -> str | None:
    """``cpe:/a:redhat:enterprise_linux:9::appstream`` -> ``rhel:9``; None for any other product.

    The extended-support streams (``rhel_eus``, ``rhel_e4s``, ``rhel_aus``…) and layered products are
    not what a RHEL or UBI image installs from, so their statements are not matched.
    """
    parts = cpe.strip().split(":")
    if len(parts) < 5 or parts[0] != "cpe" or parts[2] != "redhat" or parts[3] != "enterprise_linux":
        return None
    return f"rhel:{int(parts[4])}" if parts[4].isdigit() else None


def amazon_namespace(release: str) -> str | None:
    """``2`` -> ``amzn:2``, ``2023`` -> ``amzn:2023``; ``2022`` (2023's preview, os-release
    ``VERSION_ID="2022"``) keeps its own namespace. The original Amazon Linux AMI (2018.03) is not matched."""
    cleaned = release.strip().lower().removeprefix("al")
    return f"amzn:{cleaned}" if cleaned in ("2", "2022", "2023") else None


def modular_package_name(module_stream: str, name: str) -> str:
    """The name a package of an rpm module stream is stored and looked up under: ``nodejs:18::nodejs``.

    A modular package is only affected by what its stream's advisories say (``nodejs`` of stream 18 is
    not fixed by the stream 20 update), so the stream is part of its name on both sides.
    """
    return f"{module_stream}::{name}"


def module_stream(modularity_label: str) -> str | None:
    """``nodejs:18:8090020231019152822:a75119d5`` (rpm's label or a purl ``rpmmod``) -> ``nodejs:18``."""
    parts = modularity_label.strip().split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    return f"{parts[0]}:{parts[1]}"


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
