"""Rust crates: cargo-auditable dependency lists in binaries, and Cargo.lock as declared evidence.

``cargo auditable build`` embeds the resolved dependency tree as zlib-compressed JSON in a section
named ``.dep-v0`` (ELF, PE; ``__DATA,.dep-v0`` style names on Mach-O). Binaries built without it
carry no dependency information and yield nothing. The section is read without executing the
binary; its compressed and decompressed sizes are both capped.

What this analyzer needs from the layer reader: the content of the files matched by
``capture_patterns`` — the usual executable locations (see ``binary.candidates``) plus Cargo.lock —
and, when the reader applies its "executable bit" rule, any file with an execute permission bit.
Files whose content was not kept are skipped silently.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, BinaryIO, ClassVar

from portwarden.core.analyzers._purl_lang import language_package, purl
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOutput
from portwarden.core.analyzers.binary import BinaryFormatError, parse_executable
from portwarden.core.analyzers.binary.candidates import (
    BINARY_CAPTURE_PATTERNS,
    any_candidate_binary,
    read_candidate_binaries,
)
from portwarden.core.analyzers.globs import compile_globs, evidence_records, has_evidence
from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import Package, PackageType

SECTION_NAMES = (".dep-v0", "__dep-v0", "__dep_v0")
MAX_COMPRESSED_BYTES = 8 * 1024 * 1024
MAX_DEPENDENCY_JSON_BYTES = 32 * 1024 * 1024
MAX_LOCK_BYTES = 32 * 1024 * 1024

_DECLARED_GLOBS = ("**/Cargo.lock",)


def read_audit_data(stream: BinaryIO, file_size: int) -> tuple[list[dict[str, Any]], str] | None:
    """The cargo-auditable package list of a binary and its architecture, or None without one."""
    executable = parse_executable(stream, file_size)
    if executable is None:
        return None
    section = executable.section(*SECTION_NAMES)
    if section is None:
        return None
    compressed = executable.read_section(stream, section, MAX_COMPRESSED_BYTES)
    return decode_audit_data(compressed), executable.architecture


def decode_audit_data(compressed: bytes) -> list[dict[str, Any]]:
    """Inflate (bounded) and decode the JSON dependency list."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(compressed, MAX_DEPENDENCY_JSON_BYTES)
    except zlib.error as exc:
        raise BinaryFormatError(f"corrupt .dep-v0 section: {exc}") from exc
    if inflater.unconsumed_tail:
        raise BinaryFormatError("dependency list inflates beyond the size limit")
    document = json.loads(data)
    packages = document.get("packages") if isinstance(document, dict) else None
    if not isinstance(packages, list):
        raise BinaryFormatError("dependency list without a packages array")
    entries = [entry if isinstance(entry, dict) else {} for entry in packages]
    labels = [f"{entry.get('name', '')} {entry.get('version', '')}".strip() for entry in entries]
    resolved = []
    for entry in entries:
        indexes = entry.get("dependencies") or []
        names = [
            labels[index]
            for index in (indexes if isinstance(indexes, list) else [])
            if isinstance(index, int) and 0 <= index < len(labels)
        ]
        resolved.append({**entry, "dependencies": names})
    return resolved


def parse_cargo_lock(text: str) -> list[dict[str, Any]]:
    """The ``[[package]]`` tables of a Cargo.lock."""
    import tomllib  # on first use: few images hold a Cargo.lock

    document = tomllib.loads(text)
    packages = document.get("package", [])
    return [entry for entry in packages if isinstance(entry, dict)] if isinstance(packages, list) else []


class RustCrateAnalyzer:
    """Rust crates from cargo-auditable binaries, and from Cargo.lock when declared evidence is wanted."""

    name: ClassVar[str] = "rust"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = (*BINARY_CAPTURE_PATTERNS, *_DECLARED_GLOBS)
    _declared = compile_globs(_DECLARED_GLOBS)

    def applies(self, resolver: FileResolver) -> bool:
        return any_candidate_binary(resolver) or has_evidence(resolver, self._declared)

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        resolver = context.resolver
        packages: list[Package] = []
        warnings: list[str] = []
        for record, found in read_candidate_binaries(resolver, read_audit_data, warnings, self.name):
            entries, architecture = found
            for entry in entries:
                package = self._crate(resolver, record.path, entry, {"architecture": architecture})
                if package is not None:
                    packages.append(package)
        if context.options.include_declared:
            for record in evidence_records(resolver, self._declared):
                try:
                    entries = parse_cargo_lock(resolver.read_text(record.path, MAX_LOCK_BYTES))
                except (ContentUnavailableError, OSError, ValueError) as exc:
                    warnings.append(f"{self.name}: {record.path}: {exc}")
                    continue
                for entry in entries:
                    package = self._crate(resolver, record.path, entry, {"declared": True})
                    if package is not None:
                        packages.append(package)
        return AnalyzerOutput(packages=tuple(packages), warnings=tuple(warnings))

    def _crate(
        self, resolver: FileResolver, path: str, entry: dict[str, Any], extra: dict[str, Any]
    ) -> Package | None:
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not name or not isinstance(version, str):
            return None
        dependencies = entry.get("dependencies") or []
        metadata = {
            **extra,
            "source": entry.get("source", ""),
            "checksum": entry.get("checksum", ""),
            "kind": entry.get("kind", ""),
            "root": True if entry.get("root") is True else None,
            # Dependencies as Cargo.lock spells them ("memchr", "regex 1.11.1 (git+…)").
            "dependencies": [str(item) for item in dependencies] if isinstance(dependencies, list) else [],
        }
        return language_package(
            resolver=resolver,
            name=name,
            version=version,
            package_type=PackageType.RUST_CRATE,
            package_url=purl(PackageType.RUST_CRATE, name, version),
            found_by=self.name,
            evidence=[path],
            metadata=metadata,
            owned_files=[path],
        )


def is_root_crate(package: Package) -> bool:
    """Whether ``package`` is the crate a cargo-auditable binary was built from (its ``root`` entry)."""
    return package.type is PackageType.RUST_CRATE and package.metadata.get("root") is True
