"""Debian packages: the dpkg status database (and opkg's, which uses the same format).

Sources, in the order they are read:

* ``/var/lib/dpkg/status`` — one deb822 stanza per package;
* ``/var/lib/dpkg/status.d/<name>`` — distroless images write one status stanza per file there, next
  to ``<name>.md5sums``;
* ``/var/lib/opkg/status`` and ``/usr/lib/opkg/status`` — OpenWrt/Yocto opkg.

Owned files come from ``info/<pkg>.list`` (or ``<pkg>:<arch>.list`` for multi-arch packages), falling
back to the ``.md5sums`` listing and the conffiles; licenses come from the machine-readable
``/usr/share/doc/<pkg>/copyright`` (DEP-5 ``License:`` fields, else ``/usr/share/common-licenses``
references). A malformed stanza is skipped with a warning; a file with no usable stanza at all is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from portwarden.core.analyzers._purl_os import location_of, os_package_purl, read_capped
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOutput
from portwarden.core.errors import ContentUnavailableError, CorruptPackageDatabaseError
from portwarden.core.image import paths
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Location, Package, PackageType

DPKG_STATUS_PATH = "/var/lib/dpkg/status"
DPKG_STATUS_DIR = "/var/lib/dpkg/status.d"
DPKG_INFO_DIR = "/var/lib/dpkg/info"
OPKG_DATABASES = (
    ("/var/lib/opkg/status", "/var/lib/opkg/info"),
    ("/usr/lib/opkg/status", "/usr/lib/opkg/info"),
)
DOC_DIR = "/usr/share/doc"

# A Debian status file with a few thousand packages is a few MiB; anything far beyond is not one.
MAX_STATUS_BYTES = 128 * 1024 * 1024
MAX_LISTING_BYTES = 32 * 1024 * 1024
MAX_COPYRIGHT_BYTES = 4 * 1024 * 1024
# One field value larger than this is corruption, not a description.
MAX_FIELD_BYTES = 4 * 1024 * 1024

# dpkg states in which the package's files are not on disk (see dpkg-query(1), "Package states").
NOT_INSTALLED_STATES = frozenset({"not-installed", "config-files"})

_SOURCE_FIELD = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?\s*$")
_SIZE_FIELD = re.compile(r"^\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)\s*$")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
}
_FIELD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# The line boundaries of ``str.splitlines``, and the rest of a line.
_LINE_BOUNDARIES = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_REST_OF_LINE = re.compile(f"[^{_LINE_BOUNDARIES}]*")
_COMMON_LICENSE_REFERENCE = re.compile(r"/usr/share/common-licenses/(?P<license>[0-9A-Za-z_.+-]+)")


@dataclass(frozen=True, slots=True)
class Conffile:
    path: str
    md5: str | None


@dataclass(slots=True)
class DpkgEntry:
    """One parsed status stanza (field names are lower-cased, values as written)."""

    fields: dict[str, str]
    line: int

    @property
    def package(self) -> str:
        return self.fields.get("package", "").strip()

    @property
    def version(self) -> str:
        return self.fields.get("version", "").strip()

    @property
    def architecture(self) -> str:
        return self.fields.get("architecture", "").strip()

    @property
    def source(self) -> tuple[str, str]:
        """(name, version) of the source: ``Source: name (version)``, ``Source: name`` or the binary."""
        raw = self.fields.get("source", "").strip()
        match = _SOURCE_FIELD.match(raw) if raw else None
        if match is None:
            return self.package, self.version
        return match.group("name"), (match.group("version") or self.version).strip()

    @property
    def installed_size(self) -> int | None:
        """``Installed-Size`` in KiB as dpkg writes it; some tools write a unit (``4KB`` = 4000)."""
        raw = self.fields.get("installed-size", "")
        match = _SIZE_FIELD.match(raw) if raw else None
        if match is None:
            return None
        multiplier = _SIZE_UNITS.get(match.group("unit").lower())
        return None if multiplier is None else int(float(match.group("number")) * multiplier)

    @property
    def is_installed(self) -> bool:
        """False when dpkg's state says the files are gone (``deinstall ok config-files``, ``purge ...``).

        Distroless ``status.d`` stanzas carry no Status at all and describe installed packages. A
        package selected for removal whose state is still ``installed`` keeps its files on disk, so it
        stays in the inventory.
        """
        words = self.fields.get("status", "").split()
        return not (len(words) >= 3 and words[2] in NOT_INSTALLED_STATES)

    def relations(self, name: str) -> list[str]:
        raw = self.fields.get(name, "")
        return [part.strip() for part in raw.replace("\n", " ").split(",") if part.strip()]

    @property
    def conffiles(self) -> list[Conffile]:
        found: list[Conffile] = []
        for line in self.fields.get("conffiles", "").splitlines():
            parts = line.split()
            if parts and parts[0].startswith("/"):
                found.append(Conffile(path=parts[0], md5=parts[1] if len(parts) > 1 else None))
        return found


@dataclass(slots=True)
class StatusParseResult:
    entries: list[DpkgEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_status(text: str, source: str = "status") -> StatusParseResult:
    """Parse a dpkg/opkg status file into stanzas.

    Continuation lines are joined the way Syft joins them (``"\\n " + stripped line``) so multi-line
    values such as ``Description`` and ``Conffiles`` keep their line structure. A stanza with a line
    that is neither ``Field: value`` nor a continuation is dropped with a warning; stanzas without a
    ``Package`` name are dropped silently (dpkg itself never writes them).
    """
    if "\x00" in text:
        raise CorruptPackageDatabaseError(f"{source} is binary data, not a dpkg status file")
    result = StatusParseResult()
    # Each field's lines are collected in a list and joined once at the end of the stanza: appending
    # to a growing string would make a long multi-line field quadratic.
    fields: dict[str, list[str]] = {}
    field_sizes: dict[str, int] = {}
    current_key: str | None = None
    stanza_start = 1
    broken: str | None = None
    malformed = 0

    def finish() -> None:
        nonlocal malformed
        if broken is not None:
            malformed += 1
            result.warnings.append(f"{source}: skipped the stanza starting at line {stanza_start}: {broken}")
            return
        joined = {key: "\n ".join(lines) for key, lines in fields.items()}
        if joined.get("package", "").strip():
            result.entries.append(DpkgEntry(fields=joined, line=stanza_start))

    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.rstrip("\r")
        if not line.strip():
            if fields or broken is not None:
                finish()
            fields, field_sizes, current_key, broken = {}, {}, None, None
            stanza_start = number + 1
            continue
        if broken is not None:
            continue
        if line[0] in " \t":
            if current_key is None:
                broken = f"line {number} continues a field that was never started"
                continue
            continued = line.strip()
            field_sizes[current_key] += len(continued) + 2
            if field_sizes[current_key] > MAX_FIELD_BYTES:
                broken = f"field {current_key!r} is larger than {MAX_FIELD_BYTES} bytes"
                continue
            fields[current_key].append(continued)
            continue
        key, separator, value = line.partition(":")
        key = key.strip()
        if not separator or not _FIELD_NAME.match(key):
            broken = f"line {number} is not a 'Field: value' line"
            continue
        if len(value) > MAX_FIELD_BYTES:
            broken = f"field {key!r} is larger than {MAX_FIELD_BYTES} bytes"
            continue
        current_key = key.lower()
        fields[current_key] = [value.strip()]
        field_sizes[current_key] = len(value)
    if fields or broken is not None:
        finish()

    if not result.entries and malformed:
        raise CorruptPackageDatabaseError(f"{source} has no readable stanza ({malformed} malformed)")
    return result


def parse_copyright_licenses(text: str) -> list[str]:
    """License names from a copyright file: DEP-5 ``License:`` short names, else common-licenses references.

    The first line of a DEP-5 ``License:`` field is the license expression (``GPL-2+ or Artistic``);
    it is kept whole, since splitting it would lose the ``or``/``and`` semantics.
    """
    found: dict[str, None] = {}
    # A lower-cased copy with one byte per character (each non-ASCII one replaced by "?"): a position
    # in it is the same position in the text, and no non-ASCII character lowers to a letter of
    # "license:" (U+0130 lowers to "i" and a combining dot, which never made one either). Lowering
    # the text itself cost most of the dpkg cataloger's time on texts with any non-ASCII character.
    # "license:" is found there with C-speed searches and kept at the start of a line: the lines a
    # reading line by line finds, without a Python step per line of copyright files thousands long.
    lowered = text.encode("ascii", "replace").lower()
    position = lowered.find(b"license:")
    while position >= 0:
        if position == 0 or text[position - 1] in _LINE_BOUNDARIES:
            rest = _REST_OF_LINE.match(text, position + 8)
            expression = " ".join(rest.group().split()) if rest else ""
            if expression:
                found[expression] = None
        position = lowered.find(b"license:", position + 8)
    if not found:
        for match in _COMMON_LICENSE_REFERENCE.finditer(text):
            name = match.group("license").rstrip(".")
            if name:
                found[name] = None
    return list(found)


@dataclass(frozen=True, slots=True)
class _Database:
    """One status source: the file, the info directory holding ``.list``/``.md5sums``, opkg or dpkg."""

    status_path: str
    info_dir: str | None
    is_opkg: bool = False
    # status.d files keep their md5sums next to them as ``<file>.md5sums``.
    sibling_md5sums: bool = False


class DpkgAnalyzer:
    """Debian (dpkg) and opkg installed packages."""

    name: ClassVar[str] = "dpkg"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = (
        DPKG_STATUS_PATH,
        f"{DPKG_STATUS_DIR}/*",
        f"{DPKG_INFO_DIR}/*.list",
        f"{DPKG_INFO_DIR}/*.md5sums",
        f"{DOC_DIR}/*/copyright",
        *(status for status, _ in OPKG_DATABASES),
        *(f"{info}/*.list" for _, info in OPKG_DATABASES),
    )

    def applies(self, resolver: FileResolver) -> bool:
        candidates = (DPKG_STATUS_PATH, DPKG_STATUS_DIR, *(status for status, _ in OPKG_DATABASES))
        return any(resolver.lstat(path) is not None for path in candidates)

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        resolver = context.resolver
        packages: list[Package] = []
        warnings: list[str] = []
        seen: set[tuple[str, str, str]] = set()
        for database in self._databases(resolver):
            text = read_capped(resolver, database.status_path, MAX_STATUS_BYTES).decode(
                "utf-8", errors="replace"
            )
            parsed = parse_status(text, source=database.status_path)
            warnings.extend(parsed.warnings)
            status_location = location_of(resolver, database.status_path)
            for entry in parsed.entries:
                if not entry.is_installed:
                    continue
                key = (entry.package, entry.version, entry.architecture)
                if key in seen:
                    continue
                seen.add(key)
                packages.append(
                    self._package(resolver, database, status_location, entry, context.distro, warnings)
                )
        return AnalyzerOutput(packages=tuple(packages), warnings=tuple(warnings))

    # -- internals ----------------------------------------------------------------------------
    def _databases(self, resolver: FileResolver) -> Iterator[_Database]:
        if resolver.has_content(DPKG_STATUS_PATH):
            yield _Database(DPKG_STATUS_PATH, DPKG_INFO_DIR)
        status_dir = resolver.realpath(DPKG_STATUS_DIR)
        if status_dir is not None:
            for record in resolver.walk(status_dir):
                path = record.path
                if paths.parent(path) != status_dir or path.endswith((".md5sums", ".list")):
                    continue
                if resolver.has_content(path):
                    yield _Database(path, None, sibling_md5sums=True)
        for status_path, info_dir in OPKG_DATABASES:
            if resolver.has_content(status_path):
                yield _Database(status_path, info_dir, is_opkg=True)

    def _package(
        self,
        resolver: FileResolver,
        database: _Database,
        status_location: Location,
        entry: DpkgEntry,
        distro: Distro | None,
        warnings: list[str],
    ) -> Package:
        name, version, arch = entry.package, entry.version, entry.architecture
        source_name, source_version = entry.source
        locations = [status_location]
        # Multi-arch packages name their info files <name>:<arch>.*, the others just <name>.*.
        info_names = (f"{name}:{arch}", name) if arch else (name,)

        listed: list[str] = []
        if database.info_dir is not None:
            for info_name in info_names:
                found = _read_optional(resolver, f"{database.info_dir}/{info_name}.list", warnings)
                if found is not None:
                    listed = _listing_paths(found[0], md5sums=False)
                    locations.append(found[1])
                    break
            md5_paths = [f"{database.info_dir}/{info_name}.md5sums" for info_name in info_names]
        else:
            md5_paths = [f"{database.status_path}.md5sums"] if database.sibling_md5sums else []
        digested: list[str] = []
        for md5_path in md5_paths:
            if listed:  # the .list names every file already; md5sums only adds evidence
                record = resolver.stat(md5_path)
                if record is not None:
                    locations.append(Location(path=md5_path, layer_digest=record.layer_digest))
                    break
                continue
            found = _read_optional(resolver, md5_path, warnings)
            if found is not None:
                digested = _listing_paths(found[0], md5sums=True)
                locations.append(found[1])
                break

        conffiles = entry.conffiles
        if listed:
            owned = [p for p in listed if p != "/"]  # "/." heads every .list file
        else:
            owned = list(dict.fromkeys([*digested, *(c.path for c in conffiles)]))

        licenses: list[str] = []
        raw_license = entry.fields.get("license", "").strip()
        if raw_license:  # opkg writes the license into the status stanza itself
            licenses = [raw_license]
        found = _read_optional(resolver, f"{DOC_DIR}/{name}/copyright", warnings, MAX_COPYRIGHT_BYTES)
        if found is not None:
            licenses = list(dict.fromkeys([*licenses, *parse_copyright_licenses(found[0])]))
            locations.append(found[1])

        upstream: str | None = None
        if (source_name, source_version) != (name, version):
            upstream = source_name if source_version == version else f"{source_name}@{source_version}"
        metadata: dict[str, Any] = {
            "source_name": source_name,
            "source_version": source_version,
            "architecture": arch or None,
            "maintainer": entry.fields.get("maintainer", "").strip() or None,
            "installed_size": entry.installed_size,
            "description": entry.fields.get("description") or None,
            "provides": entry.relations("provides"),
            "depends": entry.relations("depends"),
            "pre_depends": entry.relations("pre-depends"),
            "conffiles": [{"path": c.path, "md5": c.md5} for c in conffiles],
        }
        if database.is_opkg:
            metadata["package_manager"] = "opkg"
        return Package(
            name=name,
            version=version,
            type=PackageType.DEB,
            purl=os_package_purl(
                PackageType.DEB, name, version, distro, {"arch": arch, "upstream": upstream}
            ),
            licenses=tuple(licenses),
            locations=tuple(_unique_locations(locations)),
            found_by=self.name,
            metadata=metadata,
            owned_files=tuple(owned),
        )


def _read_optional(
    resolver: FileResolver, path: str, warnings: list[str], max_bytes: int = MAX_LISTING_BYTES
) -> tuple[str, Location] | None:
    """The text of ``path`` and its location, or None when the image has no captured file there."""
    record = resolver.stat(path)
    if record is None or record.sha256 is None:
        return None
    try:
        data = read_capped(resolver, path, max_bytes)
    except ContentUnavailableError:
        return None
    except (CorruptPackageDatabaseError, OSError) as exc:
        warnings.append(f"{path}: {exc}")
        return None
    return data.decode("utf-8", errors="replace"), Location(path=path, layer_digest=record.layer_digest)


def _is_plain_listing(body: str) -> bool:
    """True when every line is a canonical absolute path (checked with C-speed string scans)."""
    if not body:
        return True
    if body[0] != "/" or body.endswith("/"):
        return False
    if any(marker in body for marker in ("//", "/.", "\t", "\r", "/\n")):
        return False
    line_breaks = body.count("\n") - (1 if body.endswith("\n") else 0)
    return body.count("\n/") == line_breaks


def _listing_paths(text: str, *, md5sums: bool) -> list[str]:
    """Absolute paths from a ``.list`` (one path a line; opkg may add a tab and a mode) or ``.md5sums``
    (``<md5>  <relative path>``) file."""
    if not md5sums:
        body = text[3:] if text.startswith("/.\n") else text
        if _is_plain_listing(body):
            # The common case: canonical absolute paths, one a line, nothing to normalise.
            return [line for line in body.split("\n") if line]
    found: list[str] = []
    for line in text.splitlines():
        if md5sums:
            _, _, line = line.partition(" ")
        entry = line.split("\t", 1)[0].strip()
        if not entry:
            continue
        # dpkg writes canonical absolute paths; only the unusual line pays for normalisation.
        if entry[0] != "/" or "//" in entry or "/." in entry or entry.endswith("/"):
            entry = paths.normalize(entry)
        found.append(entry)
    return found


def _unique_locations(locations: list[Location]) -> list[Location]:
    seen: set[str] = set()
    unique: list[Location] = []
    for location in locations:
        if location.path not in seen:
            seen.add(location.path)
            unique.append(location)
    return unique
