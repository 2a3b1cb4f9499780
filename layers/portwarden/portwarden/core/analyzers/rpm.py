"""RPM packages, read from the rpm database in pure Python (rpm is never run).

One database is read per rpm directory (``/var/lib/rpm``, ``/usr/lib/sysimage/rpm``, ``/usr/share/rpm``;
a directory reached through a symlink is read once), preferring the format current rpm writes:
``rpmdb.sqlite`` (rpm >= 4.16), then ``Packages.db`` (ndb, SUSE), then ``Packages`` (Berkeley DB).
Images without any database but with CBL-Mariner's distroless manifest
(``/var/lib/rpmmanifest/container-manifest-2``) are read from that manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from portwarden.core.analyzers._purl_os import location_of, os_package_purl, read_capped
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOutput
from portwarden.core.errors import CorruptPackageDatabaseError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location, Package, PackageType

if TYPE_CHECKING:  # the database readers load when an image has an rpm database (most have none)
    from portwarden.core.analyzers.rpmdb import RpmPackageInfo

RPM_DIRECTORIES = ("/var/lib/rpm", "/usr/lib/sysimage/rpm", "/usr/share/rpm")
# Preferred first: the format a current rpm would open in a directory that holds several.
DATABASE_FILES = ("rpmdb.sqlite", "Packages.db", "Packages")


def database_reader(file_name: str) -> Callable[[bytes, list[str]], Iterator[bytes]]:
    """The reader of the rpm database format stored under ``file_name`` (one of ``DATABASE_FILES``)."""
    from portwarden.core.analyzers.rpmdb import read_bdb_hash_values, read_ndb_blobs, read_sqlite_blobs

    readers = {
        "rpmdb.sqlite": read_sqlite_blobs,
        "Packages.db": read_ndb_blobs,
        "Packages": read_bdb_hash_values,
    }
    return readers[file_name]


MANIFEST_PATH = "/var/lib/rpmmanifest/container-manifest-2"

# Large RHEL images carry rpm databases of a few hundred MiB at most.
MAX_DATABASE_BYTES = 1024 * 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
# GPG keys imported with ``rpm --import`` are stored as pseudo-packages; they are keys, not software.
PUBKEY_PACKAGE_NAME = "gpg-pubkey"
MANIFEST_FIELDS = 10


def split_source_rpm(source_rpm: str) -> tuple[str, str, str] | None:
    """``curl-7.76.0-6.cm2.src.rpm`` -> (``curl``, ``7.76.0``, ``6.cm2``); None when not in that form."""
    stem = source_rpm
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    else:
        return None
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


class RpmAnalyzer:
    """Installed rpm packages."""

    name: ClassVar[str] = "rpm"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = (
        *(f"{directory}/{file_name}" for directory in RPM_DIRECTORIES for file_name in DATABASE_FILES),
        MANIFEST_PATH,
    )

    def applies(self, resolver: FileResolver) -> bool:
        return any(resolver.lstat(path) is not None for path in self.capture_patterns)

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        resolver = context.resolver
        packages: list[Package] = []
        warnings: list[str] = []
        read_directories: set[str] = set()
        found_database = False
        for directory in RPM_DIRECTORIES:
            real_directory = resolver.realpath(directory)
            if real_directory is None or real_directory in read_directories:
                continue
            read_directories.add(real_directory)
            for file_name in DATABASE_FILES:
                path = f"{real_directory}/{file_name}"
                if not resolver.has_content(path):
                    continue
                found_database = True
                reader = database_reader(file_name)
                packages.extend(self._read_database(resolver, path, reader, context.distro, warnings))
                break
        if not found_database and resolver.has_content(MANIFEST_PATH):
            packages.extend(self._read_manifest(resolver, context.distro, warnings))
        return AnalyzerOutput(packages=tuple(packages), warnings=tuple(warnings))

    # -- rpm databases --------------------------------------------------------------------------
    def _read_database(
        self,
        resolver: FileResolver,
        path: str,
        reader: Callable[[bytes, list[str]], Iterator[bytes]],
        distro: Distro | None,
        warnings: list[str],
    ) -> list[Package]:
        from portwarden.core.analyzers.rpmdb import parse_header_blob

        data = read_capped(resolver, path, MAX_DATABASE_BYTES)
        location = location_of(resolver, path)
        problems: list[str] = []
        packages: list[Package] = []
        records = 0
        for blob in reader(data, problems):
            records += 1
            try:
                info = parse_header_blob(blob, file_details=False)
            except CorruptPackageDatabaseError as exc:
                problems.append(f"rpm header #{records} skipped: {exc}")
                continue
            if info.name == PUBKEY_PACKAGE_NAME:
                continue
            packages.append(self._package(info, distro, location))
        if not packages and problems:
            # Nothing readable at all: the database as a whole is unusable, say so as an error.
            raise CorruptPackageDatabaseError(f"{path}: no readable package; first problem: {problems[0]}")
        warnings.extend(f"{path}: {problem}" for problem in problems)
        return packages

    def _package(self, info: RpmPackageInfo, distro: Distro | None, location: Location) -> Package:
        source = split_source_rpm(info.source_rpm) if info.source_rpm else None
        if source is not None:
            source_name, source_version = source[0], f"{source[1]}-{source[2]}"
        else:
            source_name, source_version = info.name, f"{info.version}-{info.release}"
        # A source rpm's file name carries no epoch; the binary's epoch applies to the source it was
        # built from (Grype makes the same assumption when matching through the source package).
        if info.epoch is not None:
            source_version = f"{info.epoch}:{source_version}"
        metadata: dict[str, Any] = {
            "source_name": source_name,
            "source_version": source_version,
            "epoch": info.epoch,
            "release": info.release,
            "version": info.version,
            "architecture": info.arch,
            "source_rpm": info.source_rpm,
            "size": info.size,
            "vendor": info.vendor,
            "summary": info.summary,
            "modularity_label": info.modularity_label,
            "provides": list(info.provides),
            "requires": list(info.requires),
        }
        return Package(
            name=info.name,
            version=info.evr,
            type=PackageType.RPM,
            purl=self._purl(
                info.name, info.version, info.release, info.epoch, info.arch, info.source_rpm, distro
            ),
            licenses=(info.license,) if info.license else (),
            locations=(location,),
            found_by=self.name,
            metadata=metadata,
            owned_files=info.file_paths,
        )

    @staticmethod
    def _purl(
        name: str,
        version: str,
        release: str,
        epoch: int | None,
        arch: str | None,
        source_rpm: str | None,
        distro: Distro | None,
    ) -> str:
        """``pkg:rpm/<distro>/<name>@<version>-<release>?arch=..&epoch=..&upstream=<srpm>&distro=..``.

        As in the purl specification and Syft, the epoch is a qualifier, not part of the purl version.
        """
        qualifiers = {
            "arch": arch,
            "epoch": str(epoch) if epoch is not None else None,
            "upstream": source_rpm,
        }
        purl_version = f"{version}-{release}" if release else version
        return os_package_purl(PackageType.RPM, name, purl_version, distro, qualifiers)

    # -- CBL-Mariner distroless manifest --------------------------------------------------------
    def _read_manifest(
        self, resolver: FileResolver, distro: Distro | None, warnings: list[str]
    ) -> list[Package]:
        """One package a line, tab-separated: name, version-release, install time, build time, vendor,
        epoch (or ``(none)``), size, arch, numeric epoch, source rpm."""
        from portwarden.core.analyzers.rpmdb import RpmPackageInfo

        text = read_capped(resolver, MANIFEST_PATH, MAX_MANIFEST_BYTES).decode("utf-8", errors="replace")
        if "\x00" in text:
            raise CorruptPackageDatabaseError(f"{MANIFEST_PATH} is binary data, not an rpm manifest")
        location = location_of(resolver, MANIFEST_PATH)
        packages: list[Package] = []
        skipped = 0
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != MANIFEST_FIELDS or "-" not in fields[1] or not fields[0]:
                warnings.append(f"{MANIFEST_PATH}: line {number} is not a manifest entry; skipped")
                skipped += 1
                continue
            name, version_release, _, _, vendor, epoch_text, size_text, arch, _, source_rpm = fields
            version, release = version_release.rsplit("-", 1)
            info = RpmPackageInfo(
                name=name,
                version=version,
                release=release,
                epoch=int(epoch_text) if epoch_text.isdigit() else None,
                arch=arch or None,
                size=int(size_text) if size_text.isdigit() else None,
                vendor=vendor or None,
                source_rpm=source_rpm or None,
            )
            packages.append(self._package(info, distro, location))
        if not packages and skipped:
            raise CorruptPackageDatabaseError(f"{MANIFEST_PATH} has no readable entry")
        return packages
