"""Java archives (jar, war, ear, par, sar, nar, jpi, hpi), nested archives included.

An archive's identity comes from, in order: the ``META-INF/maven/<group>/<artifact>/pom.properties``
that matches it, its ``pom.xml``, its ``META-INF/MANIFEST.MF`` and its file name. Other
pom.properties files inside it (shaded or "fat" jars) are packages of their own, and archives inside
archives (``WEB-INF/lib``, ``BOOT-INF/lib``, ear modules) are read recursively.

Archives are untrusted input: nesting depth and the total number of bytes decompressed for one
top-level archive are bounded by the analyzer options, each metadata member is capped, and members
whose compression ratio is implausible are skipped. A corrupt archive costs a warning, never the
other archives.
"""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from portwarden.core.analyzers._purl_lang import language_package, maven_purl
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOptions, AnalyzerOutput
from portwarden.core.analyzers.globs import compile_globs, evidence_records, has_evidence
from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import Package, PackageType

if TYPE_CHECKING:  # loaded when an archive is read: most images have none
    import zipfile

ARCHIVE_EXTENSIONS = (".jar", ".war", ".ear", ".par", ".sar", ".nar", ".jpi", ".hpi")

MAX_METADATA_MEMBER = 4 * 1024 * 1024
MAX_ENTRIES = 200_000
# Deflate rarely exceeds ~20:1 on real class files and text; far beyond that is a bomb.
MAX_COMPRESSION_RATIO = 200
RATIO_CHECK_MIN_SIZE = 1024 * 1024
CHUNK = 1024 * 1024
# Real fat jars and ears hold hundreds of archives; thousands means a fan-out bomb (42.zip style).
MAX_NESTED_ARCHIVES = 4096

_POM_PROPERTIES = re.compile(r"^META-INF/maven/(?P<group>[^/]+)/(?P<artifact>[^/]+)/pom\.properties$")
_POM_XML = re.compile(r"^META-INF/maven/(?P<group>[^/]+)/(?P<artifact>[^/]+)/pom\.xml$")
_PROPERTY_REFERENCE = re.compile(r"\$\{([^}]+)\}")

# Manifest attributes worth keeping in package metadata (OSGi Import/Export-Package can be huge).
_MANIFEST_KEYS = (
    "Manifest-Version",
    "Created-By",
    "Build-Jdk",
    "Build-Jdk-Spec",
    "Main-Class",
    "Automatic-Module-Name",
    "Implementation-Title",
    "Implementation-Version",
    "Implementation-Vendor",
    "Implementation-Vendor-Id",
    "Specification-Title",
    "Specification-Version",
    "Specification-Vendor",
    "Bundle-Name",
    "Bundle-SymbolicName",
    "Bundle-Version",
    "Bundle-Vendor",
    "Bundle-License",
    "Extension-Name",
    "Short-Name",
    "Long-Name",
    "Group-Id",
    "Plugin-Version",
)


@dataclass
class JavaManifest:
    """A parsed MANIFEST.MF: the main section and the per-entry sections, in file order."""

    main: dict[str, str] = field(default_factory=dict)
    sections: list[dict[str, str]] = field(default_factory=list)


def parse_manifest(text: str) -> JavaManifest:
    """Parse MANIFEST.MF text.

    Sections are separated by blank lines; a line starting with a space continues the previous
    value (joined without the surrounding whitespace, as the jar tool's wrapping is at 72 bytes and
    carries no meaning); lines without a ``key:`` are ignored.
    """
    manifest = JavaManifest()
    current: dict[str, str] = {}
    last_key: str | None = None
    seen_main = False

    def close_section() -> None:
        nonlocal current, last_key, seen_main
        if current:
            if not seen_main:
                manifest.main = current
                seen_main = True
            else:
                manifest.sections.append(current)
        current = {}
        last_key = None

    for line in text.splitlines():
        if not line.strip():
            close_section()
            continue
        if line[0] == " ":
            if last_key is not None:
                current[last_key] += line.strip()
            continue
        key, separator, value = line.partition(":")
        key = key.strip()
        if not separator or not key:
            continue
        current[key] = value.strip()
        last_key = key
    close_section()
    return manifest


def parse_pom_properties(text: str) -> dict[str, str]:
    """``key=value`` or ``key:value`` lines (whichever delimiter comes first), comments skipped."""
    properties: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        positions = [index for index in (line.find("="), line.find(":")) if index >= 0]
        if not positions:
            continue
        split = min(positions)
        properties[line[:split].strip()] = line[split + 1 :].strip()
    return properties


def parse_pom_xml(data: bytes) -> dict[str, Any]:
    """Coordinates, name and licences of a pom.xml, with ``<parent>`` fallback and ``${…}`` expansion.

    Document type declarations are refused outright: a pom never needs one, and refusing them
    rules out entity-expansion attacks before the parser sees the document.
    """
    lowered = data[:65536].lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise ValueError("pom.xml with a document type declaration")
    from xml.etree import ElementTree  # on first use: most images hold no Java archive

    root = ElementTree.fromstring(data)  # noqa: S314 - DTDs are rejected above
    children = {_local(child.tag): child for child in root}
    parent = {_local(child.tag): (child.text or "").strip() for child in children.get("parent", [])}

    def text(tag: str) -> str:
        element = children.get(tag)
        return (element.text or "").strip() if element is not None else ""

    group_id = text("groupId") or parent.get("groupId", "")
    version = text("version") or parent.get("version", "")
    properties = {_local(child.tag): (child.text or "").strip() for child in children.get("properties", [])}
    properties.update(
        {
            "project.groupId": group_id,
            "project.artifactId": text("artifactId"),
            "project.version": version,
            "pom.version": version,
            "version": version,
            "project.parent.version": parent.get("version", ""),
            "parent.version": parent.get("version", ""),
            "project.parent.groupId": parent.get("groupId", ""),
        }
    )
    licenses = []
    for license_element in children.get("licenses", []):
        for item in license_element:
            if _local(item.tag) == "name" and item.text and item.text.strip():
                licenses.append(_expand(item.text.strip(), properties))
    return {
        "group_id": _expand(group_id, properties),
        "artifact_id": _expand(text("artifactId"), properties),
        "version": _expand(version, properties),
        "name": _expand(text("name"), properties),
        "parent": {key: parent[key] for key in ("groupId", "artifactId", "version") if parent.get(key)},
        "licenses": licenses,
    }


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _expand(value: str, properties: dict[str, str]) -> str:
    for _ in range(5):  # properties may refer to properties; stop well before a cycle matters
        expanded = _PROPERTY_REFERENCE.sub(
            lambda match: properties.get(match.group(1)) or match.group(0), value
        )
        if expanded == value:
            break
        value = expanded
    return value


def parse_archive_filename(filename: str) -> tuple[str, str]:
    """``commons-lang3-3.12.0.jar`` → (``commons-lang3``, ``3.12.0``).

    The version starts at the last dash-separated part that begins with a digit and contains a dot
    (``log4j-1.2-api-2.17.1`` → ``log4j-1.2-api``/``2.17.1``), else at the last part beginning
    with a digit; trailing qualifiers (``-jre``, ``-SNAPSHOT``) stay in the version.
    """
    stem = filename.rsplit("/", 1)[-1]
    for extension in ARCHIVE_EXTENSIONS:
        if stem.lower().endswith(extension):
            stem = stem[: -len(extension)]
            break
    parts = stem.split("-")
    digit_parts = [index for index in range(1, len(parts)) if parts[index][:1].isdigit()]
    dotted = [index for index in digit_parts if "." in parts[index]]
    chosen = dotted[-1] if dotted else (digit_parts[-1] if digit_parts else None)
    if chosen is None:
        return stem, ""
    return "-".join(parts[:chosen]), "-".join(parts[chosen:])


def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_EXTENSIONS)


class ArchiveLimitError(ValueError):
    """An archive member would exceed a safety limit."""


@dataclass
class _Budget:
    """Decompressed bytes and nested archives still allowed for one top-level archive."""

    remaining: int
    archives_left: int = MAX_NESTED_ARCHIVES

    def take(self, amount: int) -> None:
        if amount > self.remaining:
            raise ArchiveLimitError("decompressed-size budget for this archive exhausted")
        self.remaining -= amount


@dataclass
class _ArchiveScan:
    real_path: str
    options: AnalyzerOptions
    budget: _Budget
    packages: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, budget: _Budget) -> bytes:
    """A member's content, refusing oversize and implausibly compressed members (headers can lie,
    so the real decompressed length is enforced while reading too)."""
    if info.file_size > limit:
        raise ArchiveLimitError(f"{info.filename} is {info.file_size} bytes (limit {limit})")
    if (
        info.file_size > RATIO_CHECK_MIN_SIZE
        and info.compress_size > 0
        and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO
    ):
        raise ArchiveLimitError(f"{info.filename} has a suspicious compression ratio")
    budget.take(info.file_size)
    with archive.open(info) as handle:
        data = handle.read(min(limit, info.file_size) + 1)
    if len(data) > info.file_size or len(data) > limit:
        raise ArchiveLimitError(f"{info.filename} decompresses beyond its declared size")
    return data


class JavaArchiveAnalyzer:
    """Java archives identified by their Maven metadata, manifest and file name."""

    name: ClassVar[str] = "java"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = tuple(
        f"**/*{extension}" for extension in ARCHIVE_EXTENSIONS
    ) + tuple(f"**/*{extension.upper()}" for extension in ARCHIVE_EXTENSIONS)
    _archives = compile_globs(capture_patterns)

    def applies(self, resolver: FileResolver) -> bool:
        return has_evidence(resolver, self._archives)

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        resolver = context.resolver
        packages: list[Package] = []
        warnings: list[str] = []
        for record in evidence_records(resolver, self._archives):
            if not resolver.has_content(record.path):
                continue
            scan = _ArchiveScan(
                real_path=record.path,
                options=context.options,
                budget=_Budget(context.options.max_archive_total_bytes),
            )
            try:
                with resolver.open(record.path) as stream:
                    self._scan_top_level(scan, stream)
            except (ContentUnavailableError, OSError) as exc:
                scan.warnings.append(f"{record.path}: {exc}")
            warnings.extend(f"{self.name}: {message}" for message in scan.warnings)
            for found in scan.packages:
                packages.append(self._package(resolver, record.path, found))
        return AnalyzerOutput(packages=tuple(packages), warnings=tuple(warnings))

    def _scan_top_level(self, scan: _ArchiveScan, stream: BinaryIO) -> None:
        digest = hashlib.sha1()  # the Maven Central lookup key, not a security digest
        try:
            stream.seek(0)
            seekable: BinaryIO = stream
        except (OSError, io.UnsupportedOperation):
            seekable = io.BytesIO(stream.read(scan.options.max_archive_total_bytes + 1))
        while chunk := seekable.read(CHUNK):
            digest.update(chunk)
        seekable.seek(0)
        self._scan_archive(scan, seekable, scan.real_path, digest.hexdigest(), depth=0)

    def _scan_archive(
        self, scan: _ArchiveScan, stream: BinaryIO, virtual_path: str, sha1: str, depth: int
    ) -> None:
        import zipfile

        try:
            with zipfile.ZipFile(stream) as archive:
                infos = archive.infolist()
                if len(infos) > MAX_ENTRIES:
                    raise ArchiveLimitError(f"{len(infos)} entries (limit {MAX_ENTRIES})")
                self._identify(scan, archive, infos, virtual_path, sha1)
                self._descend(scan, archive, infos, virtual_path, depth)
        except ArchiveLimitError as exc:
            scan.warnings.append(f"{virtual_path}: skipped part of the archive: {exc}")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError) as exc:
            scan.warnings.append(f"{virtual_path}: not a readable zip archive: {exc}")
        except (NotImplementedError, RuntimeError, OSError) as exc:
            scan.warnings.append(f"{virtual_path}: cannot read archive: {exc}")

    def _descend(
        self,
        scan: _ArchiveScan,
        archive: zipfile.ZipFile,
        infos: list[zipfile.ZipInfo],
        virtual_path: str,
        depth: int,
    ) -> None:
        import zipfile

        for info in infos:
            if info.is_dir() or not is_archive_name(info.filename):
                continue
            nested_path = f"{virtual_path}:{info.filename}"
            if depth + 1 > scan.options.max_nested_archive_depth:
                scan.warnings.append(f"{nested_path}: not read, nesting deeper than {depth}")
                continue
            if scan.budget.archives_left <= 0:
                scan.warnings.append(
                    f"{nested_path}: not read, more than {MAX_NESTED_ARCHIVES} nested archives"
                )
                return
            scan.budget.archives_left -= 1
            try:
                data = _read_member(archive, info, scan.options.max_archive_total_bytes, scan.budget)
            except ArchiveLimitError as exc:
                scan.warnings.append(f"{nested_path}: not read: {exc}")
                continue
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                NotImplementedError,
                RuntimeError,
                OSError,
            ) as exc:
                scan.warnings.append(f"{nested_path}: cannot extract: {exc}")
                continue
            self._scan_archive(scan, io.BytesIO(data), nested_path, hashlib.sha1(data).hexdigest(), depth + 1)

    def _identify(
        self,
        scan: _ArchiveScan,
        archive: zipfile.ZipFile,
        infos: list[zipfile.ZipInfo],
        virtual_path: str,
        sha1: str,
    ) -> None:
        manifest = JavaManifest()
        pom_properties: list[tuple[str, dict[str, str]]] = []
        pom_xml: dict[tuple[str, str], zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if name.upper() == "META-INF/MANIFEST.MF":
                manifest = parse_manifest(self._text(scan, archive, info, virtual_path))
            elif _POM_PROPERTIES.match(name):
                properties = parse_pom_properties(self._text(scan, archive, info, virtual_path))
                if properties.get("artifactId"):
                    pom_properties.append((name, properties))
            elif match := _POM_XML.match(name):
                pom_xml[(match.group("group"), match.group("artifact"))] = info

        file_name, file_version = parse_archive_filename(virtual_path.rsplit(":", 1)[-1])
        main_properties = self._main_pom_properties(pom_properties, file_name)
        base = {"virtual_path": virtual_path, "sha1": sha1, "manifest": _manifest_summary(manifest)}
        licenses = _manifest_licenses(manifest)
        if main_properties is not None:
            member, properties = main_properties
            scan.packages.append(
                {
                    **base,
                    "group_id": properties.get("groupId", ""),
                    "artifact_id": properties["artifactId"],
                    "version": properties.get("version", ""),
                    "pom_properties": properties,
                    "licenses": licenses,
                }
            )
        else:
            project = self._project_from_pom_xml(scan, archive, pom_xml, file_name, virtual_path)
            if project is not None:
                scan.packages.append(
                    {
                        **base,
                        "group_id": project["group_id"],
                        "artifact_id": project["artifact_id"],
                        "version": project["version"] or file_version or _manifest_version(manifest),
                        "pom_project": project,
                        "licenses": project["licenses"] or licenses,
                    }
                )
            else:
                name = file_name or _manifest_name(manifest)
                if name:
                    scan.packages.append(
                        {
                            **base,
                            "group_id": _group_from_manifest(manifest, name),
                            "artifact_id": name,
                            "version": file_version or _manifest_version(manifest),
                            "licenses": licenses,
                        }
                    )
        for member, properties in pom_properties:
            if main_properties is not None and member == main_properties[0]:
                continue
            scan.packages.append(
                {
                    "virtual_path": f"{virtual_path}:{member}",
                    "group_id": properties.get("groupId", ""),
                    "artifact_id": properties["artifactId"],
                    "version": properties.get("version", ""),
                    "pom_properties": properties,
                    "licenses": [],
                    "embedded": True,
                }
            )

    @staticmethod
    def _main_pom_properties(
        found: list[tuple[str, dict[str, str]]], file_name: str
    ) -> tuple[str, dict[str, str]] | None:
        """The pom.properties describing the archive itself: the only one, or the one named like it."""
        if len(found) == 1:
            return found[0]
        for member, properties in found:
            if file_name and properties.get("artifactId") == file_name:
                return member, properties
        return None

    def _project_from_pom_xml(
        self,
        scan: _ArchiveScan,
        archive: zipfile.ZipFile,
        poms: dict[tuple[str, str], zipfile.ZipInfo],
        file_name: str,
        virtual_path: str,
    ) -> dict[str, Any] | None:
        chosen = next(iter(poms.values())) if len(poms) == 1 else None
        for (_group, artifact), info in poms.items():
            if artifact == file_name:
                chosen = info
        if chosen is None:
            return None
        from xml.etree.ElementTree import ParseError

        try:
            project = parse_pom_xml(_read_member(archive, chosen, MAX_METADATA_MEMBER, scan.budget))
        except ParseError as exc:
            scan.warnings.append(f"{virtual_path}:{chosen.filename}: malformed pom.xml: {exc}")
            return None
        except ValueError as exc:
            scan.warnings.append(f"{virtual_path}:{chosen.filename}: {exc}")
            return None
        return project if project["artifact_id"] else None

    @staticmethod
    def _text(scan: _ArchiveScan, archive: zipfile.ZipFile, info: zipfile.ZipInfo, virtual_path: str) -> str:
        try:
            return _read_member(archive, info, MAX_METADATA_MEMBER, scan.budget).decode(
                "utf-8", errors="replace"
            )
        except ArchiveLimitError as exc:
            scan.warnings.append(f"{virtual_path}:{info.filename}: not read: {exc}")
            return ""

    def _package(self, resolver: FileResolver, real_path: str, found: dict[str, Any]) -> Package:
        group_id = found.get("group_id") or ""
        artifact_id = found["artifact_id"]
        version = found.get("version") or ""
        metadata = {key: value for key, value in found.items() if key != "licenses"}
        return language_package(
            resolver=resolver,
            name=artifact_id,
            version=version,
            package_type=PackageType.JAVA_ARCHIVE,
            package_url=maven_purl(group_id, artifact_id, version),
            found_by=self.name,
            evidence=[real_path],
            licenses=found.get("licenses", []),
            metadata=metadata,
            owned_files=[real_path],
        )


def _manifest_summary(manifest: JavaManifest) -> dict[str, str]:
    return {key: manifest.main[key] for key in _MANIFEST_KEYS if manifest.main.get(key)}


def _manifest_licenses(manifest: JavaManifest) -> list[str]:
    value = manifest.main.get("Bundle-License", "")
    return [value] if value else []


def _manifest_name(manifest: JavaManifest) -> str:
    for key in ("Short-Name", "Extension-Name", "Implementation-Title", "Bundle-Name", "Name"):
        value = manifest.main.get(key, "").strip()
        if value and " " not in value:
            return value
    return ""


def _manifest_version(manifest: JavaManifest) -> str:
    for key in ("Implementation-Version", "Specification-Version", "Plugin-Version", "Bundle-Version"):
        value = manifest.main.get(key, "").strip()
        if value:
            return value
    for section in manifest.sections:
        value = section.get("Implementation-Version", "").strip()
        if value:
            return value
    return ""


def _group_from_manifest(manifest: JavaManifest, name: str) -> str:
    """A Maven group id only where the manifest states one or the OSGi name spells it out; a guessed
    group would give a purl that names another project."""
    for key in ("Group-Id", "Implementation-Vendor-Id"):
        value = manifest.main.get(key, "").strip()
        if value and "." in value and " " not in value:
            return value
    for key in ("Bundle-SymbolicName", "Automatic-Module-Name"):
        value = manifest.main.get(key, "").split(";", 1)[0].strip()
        if value.endswith("." + name) and len(value) > len(name) + 1:
            return value[: -len(name) - 1]
    return ""
