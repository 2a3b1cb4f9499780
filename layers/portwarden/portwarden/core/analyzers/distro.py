"""Which Linux distribution an image is built on.

The release files are tried in the order Syft uses, the first one that identifies something wins:
``/etc/os-release``, ``/usr/lib/os-release``, ``/etc/system-release-cpe``, ``/etc/redhat-release``
(and its ``centos-release``/``system-release`` siblings), then the legacy ``/etc/alpine-release`` and
``/etc/debian_version``, and finally the version string inside ``/bin/busybox``. ``/etc/debian_version``
also refines a Debian ``VERSION_ID`` to its point release (``13`` -> ``13.5``), so consumers that
build per-release namespaces must use the major component of a Debian ``version_id``.
"""

from __future__ import annotations

import re
import shlex
from typing import ClassVar

from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOutput
from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.distro import Distro

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
SYSTEM_RELEASE_CPE_PATH = "/etc/system-release-cpe"
REDHAT_RELEASE_PATHS = ("/etc/redhat-release", "/etc/centos-release", "/etc/system-release")
ALPINE_RELEASE_PATH = "/etc/alpine-release"
DEBIAN_VERSION_PATH = "/etc/debian_version"
BUSYBOX_PATH = "/bin/busybox"

# Release files are a few hundred bytes; the cap only protects against a hostile image.
MAX_RELEASE_FILE_BYTES = 64 * 1024
# The version banner sits in the data section of the busybox binary, which is about 1 MiB.
MAX_BUSYBOX_BYTES = 8 * 1024 * 1024

_BUSYBOX_VERSION = re.compile(rb"BusyBox v(?P<version>[0-9]+(?:\.[0-9]+)+)")
_REDHAT_RELEASE = re.compile(
    r"^(?P<name>.+?)\s+release\s+(?P<version>[0-9][0-9.]*)(?:\s*\((?P<codename>[^)]*)\))?"
)
_NUMERIC_VERSION = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")

# ``NAME release X`` lines only carry a human name; these are the os-release ids those names stand for.
_REDHAT_FAMILY_IDS = {
    "red hat enterprise linux": "rhel",
    "red hat enterprise linux server": "rhel",
    "red hat enterprise linux workstation": "rhel",
    "centos": "centos",
    "centos linux": "centos",
    "centos stream": "centos",
    "rocky linux": "rocky",
    "almalinux": "almalinux",
    "scientific linux": "scientific",
    "oracle linux server": "ol",
    "oracle linux": "ol",
    "fedora": "fedora",
    "amazon linux": "amzn",
    "amazon linux ami": "amzn",
}
# CPE vendors whose os-release id differs from the vendor string.
_CPE_VENDOR_IDS = {"redhat": "rhel", "amazon": "amzn", "oracle": "ol", "fedoraproject": "fedora"}


def parse_os_release(text: str) -> dict[str, str]:
    """The assignments of an os-release file (shell-style quoting, comments and blank lines skipped)."""
    fields: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw_value = line.partition("=")
        key = key.strip()
        if not key.replace("_", "").isalnum():
            continue
        fields[key] = _unquote(raw_value.strip())
    return fields


def _unquote(value: str) -> str:
    try:
        return " ".join(shlex.split(value, posix=True)) if value else ""
    except ValueError:
        # An unbalanced quote: keep the text without its outer quote characters.
        return value.strip("\"'")


def distro_from_os_release(fields: dict[str, str]) -> Distro | None:
    """A Distro from os-release fields, or None when the file identifies nothing.

    Our Distro requires an id; when ``ID`` is missing but ``ID_LIKE`` names a family, the first family
    member stands in (that is also the family a vulnerability matcher would fall back to).
    """
    id_like = tuple(part.lower() for part in fields.get("ID_LIKE", "").split() if part)
    distro_id = fields.get("ID", "").strip().lower() or (id_like[0] if id_like else "")
    if not distro_id:
        return None
    return Distro(
        id=distro_id,
        version_id=fields.get("VERSION_ID") or None,
        version_codename=fields.get("VERSION_CODENAME") or fields.get("UBUNTU_CODENAME") or None,
        id_like=id_like,
        cpe_name=fields.get("CPE_NAME") or None,
        pretty_name=fields.get("PRETTY_NAME") or None,
    )


def distro_from_system_release_cpe(text: str) -> Distro | None:
    """``cpe:/o:centos:linux:6:GA`` or ``cpe:2.3:o:amazon:amazon_linux:2`` -> Distro."""
    cpe = text.strip().splitlines()[0].strip() if text.strip() else ""
    if cpe.startswith("cpe:2.3:"):
        parts = cpe.split(":")[2:]
    elif cpe.startswith("cpe:/"):
        parts = cpe[len("cpe:/") :].split(":")
    else:
        return None
    if len(parts) < 3 or parts[0] != "o" or not parts[1]:
        return None
    vendor = parts[1].lower()
    distro_id = _CPE_VENDOR_IDS.get(vendor, vendor)
    version = parts[3] if len(parts) > 3 and parts[3] not in ("", "*", "-") else None
    return Distro(id=distro_id, version_id=version, id_like=(distro_id,), cpe_name=cpe, pretty_name=vendor)


def distro_from_redhat_release(text: str) -> Distro | None:
    """``Rocky Linux release 8.10 (Green Obsidian)`` -> rocky 8.10, like (rocky, rhel)."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    match = _REDHAT_RELEASE.match(line)
    if match is None:
        return None
    name = match.group("name").strip()
    distro_id = _REDHAT_FAMILY_IDS.get(name.lower(), name.split()[0].lower())
    id_like = tuple(dict.fromkeys((distro_id, "rhel")))
    return Distro(
        id=distro_id, version_id=match.group("version").rstrip("."), id_like=id_like, pretty_name=line
    )


def distro_from_busybox(binary: bytes) -> Distro | None:
    match = _BUSYBOX_VERSION.search(binary)
    if match is None:
        return None
    version = match.group("version").decode("ascii")
    return Distro(id="busybox", version_id=version, id_like=("busybox",), pretty_name=f"BusyBox v{version}")


def _read_text(resolver: FileResolver, path: str) -> str | None:
    if not resolver.has_content(path):
        return None
    try:
        return resolver.read_text(path, limit=MAX_RELEASE_FILE_BYTES)
    except (OSError, ContentUnavailableError):
        return None


def _with_debian_point_release(distro: Distro, resolver: FileResolver) -> Distro:
    """Debian's os-release only has the major release; ``/etc/debian_version`` has the point release."""
    if distro.id != "debian":
        return distro
    text = _read_text(resolver, DEBIAN_VERSION_PATH)
    point_release = text.strip() if text else ""
    if not _NUMERIC_VERSION.match(point_release):
        return distro  # "bookworm/sid" on testing/unstable says nothing about the release number
    if distro.version_id and point_release.split(".")[0] != distro.version_id.split(".")[0]:
        return distro
    return distro.model_copy(update={"version_id": point_release})


def identify_distro(resolver: FileResolver) -> Distro | None:
    """The distro of the image behind ``resolver``, or None when nothing identifies it."""
    distro: Distro | None = None
    for path in OS_RELEASE_PATHS:
        text = _read_text(resolver, path)
        if text is not None and (distro := distro_from_os_release(parse_os_release(text))) is not None:
            break
    if distro is None and (text := _read_text(resolver, SYSTEM_RELEASE_CPE_PATH)) is not None:
        distro = distro_from_system_release_cpe(text)
    if distro is None:
        for path in REDHAT_RELEASE_PATHS:
            text = _read_text(resolver, path)
            if text is not None and (distro := distro_from_redhat_release(text)) is not None:
                break
    if distro is None and (text := _read_text(resolver, ALPINE_RELEASE_PATH)) is not None:
        version = text.strip()
        distro = Distro(id="alpine", version_id=version) if _NUMERIC_VERSION.match(version) else None
    if distro is None and (text := _read_text(resolver, DEBIAN_VERSION_PATH)) is not None:
        version = text.strip()
        distro = Distro(id="debian", version_id=version) if _NUMERIC_VERSION.match(version) else None
    if distro is None and resolver.has_content(BUSYBOX_PATH):
        try:
            distro = distro_from_busybox(resolver.read_bytes(BUSYBOX_PATH, limit=MAX_BUSYBOX_BYTES))
        except (OSError, ContentUnavailableError):
            distro = None
    return _with_debian_point_release(distro, resolver) if distro is not None else None


class DistroAnalyzer:
    """Identifies the distribution from its release files."""

    name: ClassVar[str] = "distro"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = (
        *OS_RELEASE_PATHS,
        SYSTEM_RELEASE_CPE_PATH,
        *REDHAT_RELEASE_PATHS,
        ALPINE_RELEASE_PATH,
        DEBIAN_VERSION_PATH,
        BUSYBOX_PATH,
    )

    def applies(self, resolver: FileResolver) -> bool:
        return any(resolver.lstat(path) is not None for path in self.capture_patterns)

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        return AnalyzerOutput(distro=identify_distro(context.resolver))
