""".NET packages: NuGet libraries listed in ``*.deps.json`` files next to published assemblies.

A deps.json ``libraries`` map is keyed ``Name/Version``; only entries of type ``package`` are NuGet
packages (``project`` and ``reference`` entries are the application and framework references).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from portwarden.core.analyzers._purl_lang import language_package, purl
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOutput
from portwarden.core.analyzers.globs import compile_globs, evidence_records, has_evidence
from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import Package, PackageType

MAX_DEPS_JSON_BYTES = 64 * 1024 * 1024

_GLOBS = ("**/*.deps.json",)


def package_libraries(document: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, version, entry) for every ``package`` library of a deps.json document."""
    if not isinstance(document, dict):
        raise ValueError("deps.json is not a JSON object")
    libraries = document.get("libraries")
    found = []
    for key, entry in libraries.items() if isinstance(libraries, dict) else []:
        if not isinstance(entry, dict) or entry.get("type") != "package" or "/" not in key:
            continue
        name, _, version = key.partition("/")
        if name and version:
            found.append((name, version, entry))
    return found


class DotnetPackageAnalyzer:
    """NuGet packages from .NET dependency manifests."""

    name: ClassVar[str] = "dotnet"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = _GLOBS
    _deps = compile_globs(_GLOBS)

    def applies(self, resolver: FileResolver) -> bool:
        return has_evidence(resolver, self._deps)

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        resolver = context.resolver
        packages: list[Package] = []
        warnings: list[str] = []
        for record in evidence_records(resolver, self._deps):
            try:
                libraries = package_libraries(
                    json.loads(resolver.read_bytes(record.path, MAX_DEPS_JSON_BYTES))
                )
            except (ContentUnavailableError, OSError, UnicodeError, ValueError) as exc:
                warnings.append(f"{self.name}: {record.path}: {exc}")
                continue
            for name, version, entry in libraries:
                packages.append(
                    language_package(
                        resolver=resolver,
                        name=name,
                        version=version,
                        package_type=PackageType.DOTNET,
                        package_url=purl(PackageType.DOTNET, name, version),
                        found_by=self.name,
                        evidence=[record.path],
                        metadata={
                            "sha512": entry.get("sha512", ""),
                            "path": entry.get("path", ""),
                            "hash_path": entry.get("hashPath", ""),
                        },
                        owned_files=[record.path],
                    )
                )
        return AnalyzerOutput(packages=tuple(packages), warnings=tuple(warnings))
