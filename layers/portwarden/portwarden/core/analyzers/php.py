"""PHP Composer packages: ``vendor/composer/installed.json``, and composer.lock as declared evidence.

installed.json comes in two shapes: Composer 1 writes a list of packages, Composer 2 an object
``{"packages": [...], "dev-package-names": [...]}``. Development packages installed by Composer 2
are kept (they are on disk) and marked in metadata.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from portwarden.core.analyzers._purl_lang import composer_purl, language_package
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOutput
from portwarden.core.analyzers.globs import compile_globs, evidence_records, has_evidence
from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import Package, PackageType

MAX_JSON_BYTES = 64 * 1024 * 1024

_INSTALLED_GLOBS = ("**/vendor/composer/installed.json",)
_DECLARED_GLOBS = ("**/composer.lock",)


def installed_entries(document: Any) -> tuple[list[dict[str, Any]], set[str]]:
    """Package entries and development package names of an installed.json document."""
    if isinstance(document, list):
        return [entry for entry in document if isinstance(entry, dict)], set()
    if isinstance(document, dict):
        packages = document.get("packages")
        dev_names = document.get("dev-package-names")
        entries = (
            [entry for entry in packages if isinstance(entry, dict)] if isinstance(packages, list) else []
        )
        dev = {name for name in dev_names if isinstance(name, str)} if isinstance(dev_names, list) else set()
        return entries, dev
    raise ValueError("installed.json is neither a list nor an object")


def lock_entries(document: Any) -> list[tuple[dict[str, Any], bool]]:
    """(entry, is_dev) for a composer.lock's ``packages`` and ``packages-dev``."""
    if not isinstance(document, dict):
        raise ValueError("composer.lock is not a JSON object")
    found: list[tuple[dict[str, Any], bool]] = []
    for key, dev in (("packages", False), ("packages-dev", True)):
        items = document.get(key)
        if isinstance(items, list):
            found.extend((entry, dev) for entry in items if isinstance(entry, dict))
    return found


def _licenses(entry: dict[str, Any]) -> list[str]:
    value = entry.get("license")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _authors(entry: dict[str, Any]) -> list[str]:
    authors = entry.get("authors")
    found = []
    for author in authors if isinstance(authors, list) else []:
        if isinstance(author, dict) and author.get("name"):
            email = f" <{author['email']}>" if author.get("email") else ""
            found.append(f"{author['name']}{email}")
    return found


def _reference(entry: dict[str, Any], key: str) -> dict[str, str]:
    value = entry.get(key)
    if not isinstance(value, dict):
        return {}
    return {field: str(value[field]) for field in ("type", "url", "reference", "shasum") if value.get(field)}


class ComposerPackageAnalyzer:
    """Composer packages installed under vendor/, and composer.lock entries when declared."""

    name: ClassVar[str] = "php"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = (*_INSTALLED_GLOBS, *_DECLARED_GLOBS)
    _installed = compile_globs(_INSTALLED_GLOBS)
    _all = compile_globs(capture_patterns)

    def applies(self, resolver: FileResolver) -> bool:
        return has_evidence(resolver, self._all)

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        resolver = context.resolver
        packages: list[Package] = []
        warnings: list[str] = []
        for record in evidence_records(resolver, self._all):
            path = record.path
            installed = self._installed.match(path) is not None
            if not installed and not context.options.include_declared:
                continue
            try:
                document = json.loads(resolver.read_bytes(path, MAX_JSON_BYTES))
                if installed:
                    entries, dev_names = installed_entries(document)
                    pairs = [(entry, entry.get("name") in dev_names) for entry in entries]
                else:
                    pairs = lock_entries(document)
            except (ContentUnavailableError, OSError, UnicodeError, ValueError) as exc:
                warnings.append(f"{self.name}: {path}: {exc}")
                continue
            for entry, dev in pairs:
                package = self._package(resolver, path, entry, dev, declared=not installed)
                if package is not None:
                    packages.append(package)
        return AnalyzerOutput(packages=tuple(packages), warnings=tuple(warnings))

    def _package(
        self, resolver: FileResolver, path: str, entry: dict[str, Any], dev: bool, declared: bool
    ) -> Package | None:
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not name or not isinstance(version, str):
            return None
        return language_package(
            resolver=resolver,
            name=name,
            version=version,
            package_type=PackageType.PHP_COMPOSER,
            package_url=composer_purl(name, version),
            found_by=self.name,
            evidence=[path],
            licenses=_licenses(entry),
            metadata={
                "version_normalized": entry.get("version_normalized", ""),
                "package_type": entry.get("type", ""),
                "homepage": entry.get("homepage", ""),
                "description": entry.get("description", ""),
                "authors": _authors(entry),
                "source": _reference(entry, "source"),
                "dist": _reference(entry, "dist"),
                "install_path": entry.get("install-path", ""),
                "dev": True if dev else None,
                "declared": True if declared else None,
            },
            owned_files=[path],
        )
