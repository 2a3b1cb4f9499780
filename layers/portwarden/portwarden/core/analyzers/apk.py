"""Alpine (and Wolfi/Chainguard) packages: the apk database ``/lib/apk/db/installed``.

The file is a list of blank-line separated records of ``X:value`` lines, one letter per field:
``P`` name, ``V`` version, ``A`` arch, ``o`` origin (the source package), ``L`` license, ``m``
maintainer, ``S``/``I`` package/installed size, ``C`` package checksum, ``c`` aports commit, ``D``
depends, ``p`` provides, ``U`` url, ``T`` description. Files follow as ``F:<dir>`` lines, each followed by
the ``R:<file>`` lines in it, with ``M:``/``a:`` ownership lines and ``Z:`` checksums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from portwarden.core.analyzers._purl_os import location_of, os_package_purl, read_capped
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOutput
from portwarden.core.errors import CorruptPackageDatabaseError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location, Package, PackageType

APK_INSTALLED_PATH = "/lib/apk/db/installed"
MAX_INSTALLED_BYTES = 128 * 1024 * 1024
MAX_FIELD_BYTES = 1024 * 1024

# SPDX operators mean the license field is one expression, not a list of names.
_SPDX_OPERATORS = frozenset({"AND", "OR", "WITH"})


@dataclass(slots=True)
class ApkFile:
    path: str
    owner_uid: str | None = None
    owner_gid: str | None = None
    permissions: str | None = None
    digest: str | None = None
    is_directory: bool = False


@dataclass(slots=True)
class ApkEntry:
    """One record of the installed database."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[ApkFile] = field(default_factory=list)
    line: int = 0

    @property
    def name(self) -> str:
        return self.fields.get("P", "")

    @property
    def version(self) -> str:
        return self.fields.get("V", "")

    @property
    def origin(self) -> str:
        return self.fields.get("o", "")

    def integer(self, key: str) -> int | None:
        raw = self.fields.get(key, "").strip()
        return int(raw) if raw.isdigit() else None

    def words(self, key: str) -> list[str]:
        return self.fields.get(key, "").split()

    @property
    def licenses(self) -> list[str]:
        """Space-separated license names, as Syft reads them, unless the field is an SPDX expression."""
        raw = self.fields.get("L", "").strip()
        if not raw:
            return []
        words = raw.split()
        if _SPDX_OPERATORS.intersection(words) or "(" in raw:
            return [" ".join(words)]
        return words


@dataclass(slots=True)
class ApkParseResult:
    entries: list[ApkEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_installed(text: str, source: str = APK_INSTALLED_PATH) -> ApkParseResult:
    """Parse the installed database; a record with a malformed line is skipped with a warning."""
    if "\x00" in text:
        raise CorruptPackageDatabaseError(f"{source} is binary data, not an apk installed database")
    result = ApkParseResult()
    entry = ApkEntry(line=1)
    directory = ""
    broken: str | None = None
    malformed = 0

    def finish() -> None:
        nonlocal malformed
        if broken is not None:
            malformed += 1
            result.warnings.append(f"{source}: skipped the record starting at line {entry.line}: {broken}")
        elif entry.name:
            result.entries.append(entry)

    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.rstrip("\r")
        if not line.strip():
            if entry.fields or entry.files or broken is not None:
                finish()
            entry, directory, broken = ApkEntry(line=number + 1), "", None
            continue
        if broken is not None:
            continue
        if len(line) < 2 or line[1] != ":":
            broken = f"line {number} is not an 'X:value' line"
            continue
        if len(line) > MAX_FIELD_BYTES:
            broken = f"line {number} is larger than {MAX_FIELD_BYTES} bytes"
            continue
        key, value = line[0], line[2:]
        if key == "F":
            directory = value.strip("/")
            entry.files.append(ApkFile(path="/" + directory, is_directory=True))
        elif key == "R":
            entry.files.append(ApkFile(path=f"/{directory}/{value}" if directory else f"/{value}"))
        elif key in ("a", "M"):
            # ``a:`` follows the R line it describes, ``M:`` the F line; both are uid:gid:mode.
            if entry.files:
                parts = value.split(":")
                if len(parts) == 3:
                    described = entry.files[-1]
                    described.owner_uid, described.owner_gid, described.permissions = parts
        elif key == "Z":
            if entry.files and not entry.files[-1].is_directory:
                entry.files[-1].digest = value
        else:
            entry.fields[key] = value
    if entry.fields or entry.files or broken is not None:
        finish()

    if not result.entries and malformed:
        raise CorruptPackageDatabaseError(f"{source} has no readable record ({malformed} malformed)")
    return result


class ApkAnalyzer:
    """Installed apk packages."""

    name: ClassVar[str] = "apk"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = (APK_INSTALLED_PATH,)

    def applies(self, resolver: FileResolver) -> bool:
        return resolver.lstat(APK_INSTALLED_PATH) is not None

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        resolver = context.resolver
        if not resolver.has_content(APK_INSTALLED_PATH):
            return AnalyzerOutput()
        text = read_capped(resolver, APK_INSTALLED_PATH, MAX_INSTALLED_BYTES).decode(
            "utf-8", errors="replace"
        )
        parsed = parse_installed(text)
        location = location_of(resolver, APK_INSTALLED_PATH)
        packages = tuple(self._package(entry, context.distro, location) for entry in parsed.entries)
        return AnalyzerOutput(packages=packages, warnings=tuple(parsed.warnings))

    def _package(self, entry: ApkEntry, distro: Distro | None, location: Location) -> Package:
        name, version = entry.name, entry.version
        origin = entry.origin or name
        arch = entry.fields.get("A", "")
        metadata: dict[str, Any] = {
            "source_name": origin,
            # apk builds every subpackage of an origin with the origin's version.
            "source_version": version,
            "origin": entry.origin or None,
            "architecture": arch or None,
            "maintainer": entry.fields.get("m") or None,
            "description": entry.fields.get("T") or None,
            "url": entry.fields.get("U") or None,
            "size": entry.integer("S"),
            "installed_size": entry.integer("I"),
            "checksum": entry.fields.get("C") or None,
            "git_commit": entry.fields.get("c") or None,
            "depends": entry.words("D"),
            "provides": entry.words("p"),
        }
        return Package(
            name=name,
            version=version,
            type=PackageType.APK,
            purl=os_package_purl(
                PackageType.APK,
                name,
                version,
                distro,
                {"arch": arch, "upstream": origin if origin != name else None},
            ),
            licenses=tuple(entry.licenses),
            locations=(location,),
            found_by=self.name,
            metadata=metadata,
            owned_files=tuple(f.path for f in entry.files),
        )
