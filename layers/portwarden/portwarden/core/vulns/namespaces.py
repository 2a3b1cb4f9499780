"""Which namespace of the vulnerability database a cataloged package is looked up in.

Feed records are stored under the namespaces ``portwarden.core.vulns.feeds.naming`` gives them
(``debian:12``, ``alpine:3.20``, ``ubuntu:22.04``, ``pypi``…). This module makes the same names from the
other side: an image's distro (from os-release) and a package's type.
"""

from __future__ import annotations

import re
from functools import lru_cache

from portwarden.core.ecosystems import LANGUAGE_NAMESPACES, OS_PACKAGE_TYPES
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package, PackageType
from portwarden.core.vulns.feeds.naming import DEBIAN_CODENAMES, normalize_package_name

# Which types are OS packages (matched through the distro namespace) and the namespace of each
# language type come from the ecosystem descriptor; re-exported for the modules that read them here.
__all__ = [
    "LANGUAGE_NAMESPACES",
    "OS_PACKAGE_TYPES",
    "distro_namespace",
    "language_lookup_name",
    "language_namespace",
    "lookup_name",
]

# Distros whose namespace is the major release (``12.5`` -> ``12``, ``9.4`` -> ``9``).
_MAJOR_RELEASE = {
    "debian": "debian",
    "rhel": "rhel",
    "centos": "rhel",  # CentOS rebuilds RHEL: Red Hat's data applies, as grype and trivy read it
    "rocky": "rocky",
    "almalinux": "almalinux",
    "ol": "ol",
    "amzn": "amzn",
}
# Distros whose namespace is major.minor.
_MINOR_RELEASE = {"alpine": "alpine", "sles": "sles", "opensuse-leap": "opensuse-leap"}
# Distros whose namespace is the whole version id.
_FULL_RELEASE = {"ubuntu": "ubuntu"}
_ROLLING = {
    "wolfi": "wolfi:rolling",
    "chainguard": "chainguard:rolling",
    "opensuse-tumbleweed": "opensuse-tumbleweed:rolling",
}

_NUMBERS = re.compile(r"\d+")


def distro_namespace(distro: Distro | None) -> str | None:
    """The namespace of an image's distro release, or None when there is none we can name.

    ``debian 12.5`` -> ``debian:12`` (a Debian without a VERSION_ID is testing/unstable: its codename
    decides), ``ubuntu 22.04`` -> ``ubuntu:22.04``, ``alpine 3.20.3`` -> ``alpine:3.20`` (an ``_alpha``
    or ``_rc`` release is edge), ``rhel``/``centos`` 9.x -> ``rhel:9``, ``rocky`` -> ``rocky:9``,
    ``almalinux`` -> ``almalinux:9``, ``ol`` -> ``ol:9``, ``amzn 2023`` -> ``amzn:2023``, ``sles 15.5`` ->
    ``sles:15.5``, ``wolfi``/``chainguard``/``opensuse-tumbleweed`` -> ``<id>:rolling``.
    """
    if distro is None:
        return None
    distro_id = distro.id.strip().lower()
    if distro_id in _ROLLING:
        return _ROLLING[distro_id]
    version = (distro.version_id or "").strip()
    numbers = _NUMBERS.findall(version)
    if distro_id == "debian":
        if not numbers:
            codename = (distro.version_codename or "").strip().lower()
            release = DEBIAN_CODENAMES.get(codename)
            return f"debian:{release}" if release else "debian:unstable"
        return f"debian:{int(numbers[0])}"
    if distro_id == "alpine":
        if "_" in version or not numbers:
            return "alpine:edge"
        return f"alpine:{'.'.join(str(int(n)) for n in numbers[:2])}"
    if not numbers:
        return None
    if distro_id in _MAJOR_RELEASE:
        return f"{_MAJOR_RELEASE[distro_id]}:{int(numbers[0])}"
    if distro_id in _MINOR_RELEASE:
        return f"{_MINOR_RELEASE[distro_id]}:{'.'.join(str(int(n)) for n in numbers[:2])}"
    if distro_id in _FULL_RELEASE:
        return f"{_FULL_RELEASE[distro_id]}:{version}"
    return None


@lru_cache(maxsize=65536)
def lookup_name(namespace: str, name: str) -> str:
    """``normalize_package_name``, remembered: an image (and the next one) asks for the same names."""
    return normalize_package_name(namespace, name)


def language_namespace(package_type: PackageType) -> str | None:
    return LANGUAGE_NAMESPACES.get(package_type)


def language_lookup_name(package: Package, namespace: str) -> str | None:
    """The normalized name a language package is stored under, or None when it cannot be named.

    Maven advisories name ``groupId:artifactId``; the Java cataloger records the artifact as the name and
    the group in its metadata (or only in the purl), so the group is found there.
    """
    if namespace == "maven":
        group = str(package.metadata.get("group_id") or "").strip()
        artifact = str(package.metadata.get("artifact_id") or package.name).strip()
        if not group and package.purl and package.purl.startswith("pkg:maven/"):
            path = package.purl[len("pkg:maven/") :].split("@", 1)[0].split("?", 1)[0]
            group, _, purl_artifact = path.rpartition("/")
            artifact = purl_artifact or artifact
        if not group or not artifact:
            return None
        return lookup_name(namespace, f"{group}:{artifact}")
    return lookup_name(namespace, package.name)
