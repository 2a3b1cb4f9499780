"""Go modules: the build information compiled into Go binaries, and go.mod as declared evidence.

Binaries are never executed. Since Go 1.13 the linker stores a 32-byte header starting with
``\\xff Go buildinf:`` (in ``.go.buildinfo`` on ELF, ``__go_buildinfo`` on Mach-O, the data section on
PE). From Go 1.18 the header is followed inline by two varint-length-prefixed strings, the toolchain
version and the module information; older binaries store pointers to Go string headers instead,
which are resolved through the load segments. The module information is the text ``go version -m``
prints: ``path``, ``mod``, ``dep``, ``=>`` (replacement of the preceding module) and ``build`` lines.

What this analyzer needs from the layer reader: the content of the files matched by
``capture_patterns`` — the usual executable locations (``/usr/local/bin/*``, ``/app/*``, ``/*``…, see
``binary.candidates``) plus go.mod/go.sum — and, when the reader applies its "executable bit" rule,
any file with an execute permission bit. Files whose content was not kept are skipped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar, Literal

from portwarden.core.analyzers._purl_lang import golang_purl, language_package, purl
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOutput
from portwarden.core.analyzers.binary import BinaryFormatError, Executable, parse_executable
from portwarden.core.analyzers.binary.candidates import (
    BINARY_CAPTURE_PATTERNS,
    any_candidate_binary,
    read_candidate_binaries,
)
from portwarden.core.analyzers.binary.executable import read_at
from portwarden.core.analyzers.globs import compile_globs, evidence_records, has_evidence
from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image import paths
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import Package, PackageType

BUILDINFO_MAGIC = b"\xff Go buildinf:"
BUILDINFO_HEADER_SIZE = 32
FLAG_BIG_ENDIAN = 0x1
FLAG_INLINE_STRINGS = 0x2
# Sentinels framing the module information since Go 1.13 (runtime/debug's modinfo markers).
MODINFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
MODINFO_END = bytes.fromhex("f932433186182072008242104116d8f2")

MAX_MODINFO_BYTES = 8 * 1024 * 1024
# The Go toolchain looks for the header within the first 64 KiB of the data section.
DATA_SEARCH_BYTES = 64 * 1024
MAX_DATA_REGIONS = 8
MAX_GO_MOD_BYTES = 8 * 1024 * 1024

_DECLARED_GLOBS = ("**/go.mod",)


@dataclass
class GoModule:
    path: str
    version: str = ""
    sum: str = ""
    replace: GoModule | None = None


@dataclass
class GoBuildInfo:
    go_version: str
    path: str = ""
    main: GoModule | None = None
    deps: list[GoModule] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


def parse_modinfo(go_version: str, text: str) -> GoBuildInfo:
    """The module information text, as ``runtime/debug.ParseBuildInfo`` reads it."""
    info = GoBuildInfo(go_version=go_version)
    last: GoModule | None = None
    for line in text.splitlines():
        fields = line.split("\t")
        kind = fields[0]
        if kind == "path" and len(fields) >= 2:
            info.path = fields[1]
        elif kind in ("mod", "dep") and len(fields) >= 2:
            module = GoModule(
                path=fields[1],
                version=fields[2] if len(fields) > 2 else "",
                sum=fields[3] if len(fields) > 3 else "",
            )
            if kind == "mod":
                info.main = module
            else:
                info.deps.append(module)
            last = module
        elif kind == "=>" and len(fields) >= 2 and last is not None:
            last.replace = GoModule(
                path=fields[1],
                version=fields[2] if len(fields) > 2 else "",
                sum=fields[3] if len(fields) > 3 else "",
            )
            last = None
        elif kind == "build" and len(fields) >= 2:
            key, _, value = fields[1].partition("=")
            info.settings[key] = value.strip('"')
    return info


def _uvarint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while position < len(data):
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 63:
            break
    raise BinaryFormatError("malformed varint in Go build info")


def _strip_sentinels(modinfo: bytes) -> bytes:
    if len(modinfo) >= 33 and modinfo[-17] == ord("\n"):
        return modinfo[16:-16]
    return modinfo


def _find_header(executable: Executable, stream: BinaryIO) -> int | None:
    """File offset of the build-info header.

    The dedicated section when there is one; otherwise (Go 1.13 to 1.17 Mach-O and PE, binaries whose
    section table was stripped) the start of the first writable data region, searched the way the
    Go toolchain searches it. Binaries with a section table but no Go sections are not Go programs
    and are not searched at all, which keeps the cost per non-Go binary to its headers.
    """
    section = executable.section(".go.buildinfo", "__go_buildinfo")
    if section is not None and section.size >= BUILDINFO_HEADER_SIZE:
        head = read_at(stream, section.offset, len(BUILDINFO_MAGIC), executable.file_size)
        if head == BUILDINFO_MAGIC:
            return section.offset
    go_sections = executable.section(".gopclntab", ".go.buildinfo", ".note.go.buildid")
    if executable.format == "elf" and executable.sections and go_sections is None:
        return None
    for offset, length in _data_regions(executable):
        window = read_at(stream, offset, min(length, DATA_SEARCH_BYTES), executable.file_size)
        start = 0
        while (found := window.find(BUILDINFO_MAGIC, start)) >= 0:
            header = window[found : found + BUILDINFO_HEADER_SIZE]
            if len(header) == BUILDINFO_HEADER_SIZE and header[14] in (4, 8) and header[15] < 4:
                return offset + found
            start = found + 1
    return None


def _data_regions(executable: Executable) -> list[tuple[int, int]]:
    """(file offset, length) of the writable, file-backed regions, in file order."""
    regions = [
        (section.offset, section.size)
        for section in executable.sections
        if section.writable and section.has_data and section.size and section.name not in (".bss", "__bss")
    ]
    if not regions:
        regions = [(segment.offset, segment.file_size) for segment in executable.segments if segment.writable]
    return sorted(regions)[:MAX_DATA_REGIONS]


def read_go_build_info(stream: BinaryIO, file_size: int) -> tuple[GoBuildInfo, str] | None:
    """The build info of the Go binary in ``stream`` and the binary's architecture, or None."""
    executable = parse_executable(stream, file_size)
    if executable is None:
        return None
    offset = _find_header(executable, stream)
    if offset is None:
        return None
    header = read_at(stream, offset, BUILDINFO_HEADER_SIZE, file_size)
    pointer_size, flags = header[14], header[15]
    if flags & FLAG_INLINE_STRINGS:
        version, modinfo = _inline_strings(stream, offset + BUILDINFO_HEADER_SIZE, file_size)
    else:
        version, modinfo = _pointer_strings(executable, stream, header, pointer_size, flags)
    if not version:
        return None
    text = _strip_sentinels(modinfo).decode("utf-8", errors="replace")
    return parse_modinfo(version.decode("utf-8", errors="replace"), text), executable.architecture


def _inline_strings(stream: BinaryIO, offset: int, file_size: int) -> tuple[bytes, bytes]:
    """Go ≥ 1.18: two varint-prefixed strings right after the header."""
    window = read_at(stream, offset, min(64 * 1024, file_size - offset), file_size)
    version_length, position = _uvarint(window, 0)
    if version_length > 1024:
        raise BinaryFormatError("implausible Go version string length")
    version = window[position : position + version_length]
    position += version_length
    modinfo_length, position = _uvarint(window, position)
    if modinfo_length > MAX_MODINFO_BYTES:
        raise BinaryFormatError("Go module information larger than the limit")
    if position + modinfo_length <= len(window):
        return version, window[position : position + modinfo_length]
    return version, read_at(stream, offset + position, modinfo_length, file_size)


def _pointer_strings(
    executable: Executable, stream: BinaryIO, header: bytes, pointer_size: int, flags: int
) -> tuple[bytes, bytes]:
    """Go 1.13 to 1.17: the header holds addresses of two Go string headers (data pointer, length)."""
    if pointer_size not in (4, 8):
        raise BinaryFormatError("unsupported pointer size in Go build info")
    order: Literal["big", "little"] = "big" if flags & FLAG_BIG_ENDIAN else "little"

    def pointer(data: bytes, index: int) -> int:
        return int.from_bytes(data[index * pointer_size : (index + 1) * pointer_size], order)

    def go_string(address: int, limit: int) -> bytes:
        string_header = executable.read_address(stream, address, 2 * pointer_size)
        if string_header is None:
            return b""
        data_address, length = pointer(string_header, 0), pointer(string_header, 1)
        if length == 0 or length > limit:
            return b""
        return executable.read_address(stream, data_address, length) or b""

    addresses = header[16 : 16 + 2 * pointer_size]
    return go_string(pointer(addresses, 0), 1024), go_string(pointer(addresses, 1), MAX_MODINFO_BYTES)


# -- go.mod -------------------------------------------------------------------------------------
@dataclass
class GoModFile:
    module: str = ""
    requires: list[tuple[str, str, bool]] = field(default_factory=list)
    replaces: list[tuple[str, str, str, str]] = field(default_factory=list)
    excludes: set[tuple[str, str]] = field(default_factory=set)


_GO_MOD_DIRECTIVES = ("module", "require", "replace", "exclude", "retract", "go", "toolchain", "godebug")


def parse_go_mod(text: str) -> GoModFile:
    """Directives of a go.mod file, single-line and block forms."""
    parsed = GoModFile()
    block: str | None = None
    for raw in text.splitlines():
        comment_at = raw.find("//")
        indirect = comment_at >= 0 and raw[comment_at + 2 :].strip().startswith("indirect")
        line = (raw[:comment_at] if comment_at >= 0 else raw).strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            _go_mod_statement(parsed, block, line.split(), indirect)
            continue
        words = line.split()
        if words[0] in _GO_MOD_DIRECTIVES:
            if len(words) >= 2 and words[1] == "(":
                block = words[0]
            else:
                _go_mod_statement(parsed, words[0], words[1:], indirect)
    return parsed


def _go_mod_statement(parsed: GoModFile, directive: str, words: list[str], indirect: bool) -> None:
    words = [word.strip('"') for word in words]
    if directive == "module" and words:
        parsed.module = words[0]
    elif directive == "require" and len(words) >= 2:
        parsed.requires.append((words[0], words[1], indirect))
    elif directive == "exclude" and len(words) >= 2:
        parsed.excludes.add((words[0], words[1]))
    elif directive == "replace" and "=>" in words:
        arrow = words.index("=>")
        old, new = words[:arrow], words[arrow + 1 :]
        if old and new:
            parsed.replaces.append(
                (old[0], old[1] if len(old) > 1 else "", new[0], new[1] if len(new) > 1 else "")
            )


def parse_go_sum(text: str) -> dict[tuple[str, str], str]:
    """``(module, version) → h1:…`` for module zips (``/go.mod`` lines hash only the go.mod)."""
    digests: dict[tuple[str, str], str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and not fields[1].endswith("/go.mod"):
            digests[(fields[0], fields[1])] = fields[2]
    return digests


def is_local_path(module_path: str) -> bool:
    return module_path.startswith(("./", "../", "/")) or module_path in (".", "..")


def resolve_go_mod(parsed: GoModFile) -> list[tuple[str, str, bool]]:
    """Required modules after ``exclude`` and ``replace`` (a local-path replacement has no version)."""
    resolved: list[tuple[str, str, bool]] = []
    for module, version, indirect in parsed.requires:
        if (module, version) in parsed.excludes:
            continue
        name, final_version = module, version
        for old_path, old_version, new_path, new_version in parsed.replaces:
            if old_path == module and old_version in ("", version):
                if is_local_path(new_path):
                    final_version = ""
                else:
                    name, final_version = new_path, new_version
        resolved.append((name, final_version, indirect))
    return resolved


def stdlib_version(go_version: str) -> str:
    """``go1.22.1 X:boringcrypto`` → ``go1.22.1``; ``devel go1.23-abc`` → ``devel``…"""
    match = re.search(r"go\d+(?:\.\d+)*(?:(?:rc|beta)\d+)?", go_version)
    return match.group(0) if match else go_version.split(" ", 1)[0]


class GoModuleAnalyzer:
    """Go modules from binaries' build info, and from go.mod when declared evidence is wanted."""

    name: ClassVar[str] = "go"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = (*BINARY_CAPTURE_PATTERNS, "**/go.mod", "**/go.sum")
    _declared = compile_globs(_DECLARED_GLOBS)

    def applies(self, resolver: FileResolver) -> bool:
        return any_candidate_binary(resolver) or has_evidence(resolver, self._declared)

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        resolver = context.resolver
        packages: list[Package] = []
        warnings: list[str] = []
        for record, found in read_candidate_binaries(resolver, read_go_build_info, warnings, self.name):
            packages.extend(self._binary_packages(resolver, record.path, *found))
        if context.options.include_declared:
            for record in evidence_records(resolver, self._declared):
                try:
                    packages.extend(self._go_mod_packages(resolver, record.path))
                except (ContentUnavailableError, OSError, ValueError) as exc:
                    warnings.append(f"{self.name}: {record.path}: {exc}")
        return AnalyzerOutput(packages=tuple(packages), warnings=tuple(warnings))

    def _binary_packages(
        self, resolver: FileResolver, path: str, info: GoBuildInfo, architecture: str
    ) -> list[Package]:
        architecture = info.settings.get("GOARCH", architecture)
        common: dict[str, Any] = {
            "go_compiled_version": info.go_version,
            "architecture": architecture,
            "main_module": info.main.path if info.main else "",
        }
        packages: list[Package] = []
        if info.main is not None and info.main.path:
            packages.append(
                self._module_package(resolver, path, info.main, {**common, "build_settings": info.settings})
            )
        for dependency in info.deps:
            packages.append(self._module_package(resolver, path, dependency, common))
        if info.go_version:
            version = stdlib_version(info.go_version)
            packages.append(
                language_package(
                    resolver=resolver,
                    name="stdlib",
                    version=version,
                    package_type=PackageType.GO_MODULE,
                    package_url=purl(PackageType.GO_MODULE, "stdlib", version.removeprefix("go")),
                    found_by=self.name,
                    evidence=[path],
                    licenses=["BSD-3-Clause"],
                    metadata=common,
                    owned_files=[path],
                )
            )
        return packages

    def _module_package(
        self, resolver: FileResolver, path: str, module: GoModule, common: dict[str, Any]
    ) -> Package:
        name, version, digest = module.path, module.version, module.sum
        metadata = dict(common)
        if module.replace is not None:
            metadata["replaced"] = {"path": module.path, "version": module.version}
            if is_local_path(module.replace.path):
                version, digest = "", ""
                metadata["replaced_by_local_path"] = module.replace.path
            else:
                name, version, digest = module.replace.path, module.replace.version, module.replace.sum
        metadata["h1_digest"] = digest
        return language_package(
            resolver=resolver,
            name=name,
            version=version,
            package_type=PackageType.GO_MODULE,
            package_url=golang_purl(name, version),
            found_by=self.name,
            evidence=[path],
            metadata=metadata,
            owned_files=[path],
        )

    def _go_mod_packages(self, resolver: FileResolver, path: str) -> list[Package]:
        parsed = parse_go_mod(resolver.read_text(path, MAX_GO_MOD_BYTES))
        go_sum = paths.parent(path) + "/go.sum"
        digests = (
            parse_go_sum(resolver.read_text(go_sum, MAX_GO_MOD_BYTES)) if resolver.has_content(go_sum) else {}
        )
        packages = []
        for name, version, indirect in resolve_go_mod(parsed):
            packages.append(
                language_package(
                    resolver=resolver,
                    name=name,
                    version=version,
                    package_type=PackageType.GO_MODULE,
                    package_url=golang_purl(name, version),
                    found_by=self.name,
                    evidence=[path],
                    metadata={
                        "main_module": parsed.module,
                        "h1_digest": digests.get((name, version), ""),
                        "indirect": True if indirect else None,
                        "declared": True,
                    },
                    owned_files=[path],
                )
            )
        return packages


def is_main_module(package: Package) -> bool:
    """Whether ``package`` is the main module of the Go binary it was read from (not a dependency,
    not ``stdlib``). The main module's original path is ``main_module``, even when it was replaced."""
    if package.type is not PackageType.GO_MODULE or package.metadata.get("declared"):
        return False
    main = package.metadata.get("main_module")
    replaced = package.metadata.get("replaced")
    original = replaced.get("path") if isinstance(replaced, dict) else package.name
    return bool(main) and original == main
