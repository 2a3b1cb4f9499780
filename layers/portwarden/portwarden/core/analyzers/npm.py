"""JavaScript packages: installed ``node_modules`` and, on request, npm/yarn lock files.

Installed evidence is ``node_modules/<name>/package.json`` or ``node_modules/@scope/<name>/package.json``
(any depth of nesting, pnpm's ``.pnpm`` store included). Other package.json files inside a package
(test fixtures, ``{"type": "module"}`` markers) are not packages. Lock files (package-lock.json v1 to v3,
yarn.lock classic and berry) and project-root package.json files describe what *would* be installed,
so they are read only with ``include_declared``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

from portwarden.core.analyzers._purl_lang import language_package, npm_purl
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOutput
from portwarden.core.analyzers.globs import compile_globs, evidence_records, has_evidence
from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image import paths
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import Package, PackageType

MAX_PACKAGE_JSON_BYTES = 4 * 1024 * 1024
MAX_LOCK_BYTES = 128 * 1024 * 1024

_INSTALLED_GLOBS = ("**/node_modules/*/package.json", "**/node_modules/@*/*/package.json")
_DECLARED_GLOBS = ("**/package-lock.json", "**/yarn.lock", "**/package.json")


def license_values(document: dict[str, Any]) -> list[str]:
    """``license`` as a string, an object ``{"type": …}`` or a list of either; legacy ``licenses``."""
    found: list[str] = []
    for key in ("license", "licenses"):
        value = document.get(key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str) and item.strip():
                found.append(item.strip())
            elif isinstance(item, dict) and isinstance(item.get("type"), str):
                found.append(item["type"].strip())
    return found


def person(value: Any) -> str:
    """An npm person, either ``"Name <email> (url)"`` or ``{"name", "email", "url"}``, as one string."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        parts = [str(value.get("name", "")).strip()]
        if value.get("email"):
            parts.append(f"<{value['email']}>")
        if value.get("url"):
            parts.append(f"({value['url']})")
        return " ".join(part for part in parts if part)
    return ""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("url"), str):
        return str(value["url"])
    return ""


def _name_from_path(package_json: str) -> str:
    """``…/node_modules/@scope/name/package.json`` → ``@scope/name``."""
    directory = paths.parent(package_json)
    name = directory.rsplit("/", 1)[-1]
    scope = paths.parent(directory).rsplit("/", 1)[-1]
    return f"{scope}/{name}" if scope.startswith("@") else name


# -- package-lock.json ------------------------------------------------------------------------------
def parse_package_lock(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Entries of a package-lock.json (v1 nested ``dependencies``; v2/v3 flat ``packages``).

    Development-only entries are left out, as are links (their target has its own entry).
    """
    packages = document.get("packages")
    if isinstance(packages, dict) and packages:
        for key, entry in packages.items():
            if not isinstance(entry, dict) or entry.get("dev") is True or entry.get("link") is True:
                continue
            if key == "":
                name = entry.get("name") or document.get("name") or ""
            else:
                name = entry.get("name") or key.rsplit("node_modules/", 1)[-1]
            yield {
                "name": name,
                "version": entry.get("version") or (document.get("version") if key == "" else "") or "",
                "resolved": entry.get("resolved", ""),
                "integrity": entry.get("integrity", ""),
                "licenses": license_values(entry),
                "dependencies": entry.get("dependencies") or {},
            }
        return
    yield from _lock_v1(document.get("dependencies"))


def _lock_v1(dependencies: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(dependencies, dict):
        return
    for name, entry in dependencies.items():
        if not isinstance(entry, dict) or entry.get("dev") is True:
            continue
        yield {
            "name": name,
            "version": entry.get("version", ""),
            "resolved": entry.get("resolved", ""),
            "integrity": entry.get("integrity", ""),
            "licenses": [],
            # v1 "requires" are version ranges, not the resolved dependency map v2+ records.
            "requires": entry.get("requires") or {},
        }
        yield from _lock_v1(entry.get("dependencies"))


# -- yarn.lock ----------------------------------------------------------------------------------
def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _spec_name(spec: str) -> str:
    """The package name of a yarn descriptor: ``@scope/name@^1``, ``name@npm:1.2.3``, aliases."""
    spec = _unquote(spec)
    at = spec.find("@", 1)
    name, reference = (spec, "") if at == -1 else (spec[:at], spec[at + 1 :])
    if reference.startswith("npm:") and "@" in reference[5:]:
        # An alias (``alias@npm:real@^1``) installs the real package.
        target = reference[4:]
        return target[: target.find("@", 1)]
    return name


_REGISTRY_TARBALL = re.compile(r"/(?P<name>(?:@[^/]+/)?[^/]+)/-/[^/]+$")


def _name_from_resolved(resolved: str) -> str:
    """Registry tarball URLs name the real package (``https://registry/[prefix/]<name>/-/<file>.tgz``)."""
    match = _REGISTRY_TARBALL.search(urlparse(resolved).path)
    return unquote(match.group("name")) if match else ""


def parse_yarn_lock(text: str) -> Iterator[dict[str, Any]]:
    """Entries of a yarn.lock, classic (v1) or berry (v2+), read line by line.

    Both formats put descriptors at column 0, fields two spaces in and dependency lists four
    spaces in; classic separates keys from values with a space, berry with ``: ``.
    """
    entry: dict[str, Any] | None = None
    in_dependencies = False
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        if indent == 0:
            if entry is not None:
                yield entry
            entry = None
            in_dependencies = False
            if line.endswith(":") and not line.startswith("__metadata"):
                descriptors = [part for part in line[:-1].split(",") if part.strip()]
                entry = {"name": _spec_name(descriptors[0]) if descriptors else "", "dependencies": {}}
            continue
        if entry is None:
            continue
        if indent == 2:
            key, value = _yarn_field(line)
            in_dependencies = key in ("dependencies", "optionalDependencies") and not value
            if key in ("version", "resolved", "resolution", "integrity", "checksum") and value:
                entry[key] = value
        elif indent >= 4 and in_dependencies:
            key, value = _yarn_field(line)
            if key:
                entry["dependencies"][key] = value
    if entry is not None:
        yield entry


def _yarn_field(line: str) -> tuple[str, str]:
    if line.startswith('"'):
        end = line.find('"', 1)
        key, rest = line[1:end], line[end + 1 :]
    else:
        split = re.search(r":\s|:$|\s", line)
        key, rest = (line, "") if split is None else (line[: split.start()], line[split.start() :])
    rest = rest.strip()
    rest = rest.removeprefix(":").strip()
    return key.rstrip(":"), _unquote(rest)


class NpmPackageAnalyzer:
    """Installed node_modules packages; npm and yarn lock files when declared evidence is wanted."""

    name: ClassVar[str] = "npm"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = (*_INSTALLED_GLOBS, *_DECLARED_GLOBS)
    _installed = compile_globs(_INSTALLED_GLOBS)
    _declared = compile_globs(_DECLARED_GLOBS)

    def applies(self, resolver: FileResolver) -> bool:
        return has_evidence(resolver, self._declared)

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        resolver = context.resolver
        packages: list[Package] = []
        warnings: list[str] = []
        declared: list[str] = []
        for record in evidence_records(resolver, self._declared):
            path = record.path
            try:
                if self._installed.match(path):
                    package = self._installed_package(resolver, path)
                    if package is not None:
                        packages.append(package)
                elif context.options.include_declared:
                    declared.append(path)
            except (ContentUnavailableError, OSError, UnicodeError, ValueError, TypeError) as exc:
                warnings.append(f"{self.name}: {path}: {exc}")
        for path in declared:
            try:
                packages.extend(self._declared_packages(resolver, path))
            except (ContentUnavailableError, OSError, UnicodeError, ValueError, TypeError) as exc:
                warnings.append(f"{self.name}: {path}: {exc}")
        return AnalyzerOutput(packages=tuple(packages), warnings=tuple(warnings))

    # -- installed ----------------------------------------------------------------------------
    def _installed_package(self, resolver: FileResolver, path: str) -> Package | None:
        document = json.loads(resolver.read_bytes(path, MAX_PACKAGE_JSON_BYTES))
        if not isinstance(document, dict):
            raise ValueError("package.json is not a JSON object")
        version = document.get("version")
        if not isinstance(version, str) or not version:
            return None  # a marker file inside a package, not a package manifest
        name = document.get("name")
        if not isinstance(name, str) or not name:
            name = _name_from_path(path)
        return self._package(
            resolver, name, version, path, license_values(document), _manifest_metadata(document)
        )

    def _package(
        self,
        resolver: FileResolver,
        name: str,
        version: str,
        path: str,
        licenses: list[str],
        metadata: dict[str, Any],
    ) -> Package:
        return language_package(
            resolver=resolver,
            name=name,
            version=version,
            package_type=PackageType.NPM,
            package_url=npm_purl(name, version),
            found_by=self.name,
            evidence=[path],
            licenses=licenses,
            metadata=metadata,
            owned_files=[path],
        )

    # -- declared -----------------------------------------------------------------------------
    def _declared_packages(self, resolver: FileResolver, path: str) -> list[Package]:
        basename = path.rsplit("/", 1)[-1]
        if basename == "package.json":
            return self._root_manifest(resolver, path)
        data = resolver.read_bytes(path, MAX_LOCK_BYTES)
        if basename == "package-lock.json":
            document = json.loads(data)
            if not isinstance(document, dict):
                raise ValueError("package-lock.json is not a JSON object")
            entries: Iterator[dict[str, Any]] = parse_package_lock(document)
            kind = "package-lock"
        else:
            entries = parse_yarn_lock(data.decode("utf-8", errors="replace"))
            kind = "yarn-lock"
        packages: list[Package] = []
        seen: set[tuple[str, str]] = set()
        for entry in entries:
            name = entry.get("name") or ""
            version = entry.get("version") or ""
            if kind == "yarn-lock" and entry.get("resolved"):
                name = _name_from_resolved(entry["resolved"]) or name
            if not name or not version or (name, version) in seen:
                continue
            seen.add((name, version))
            metadata = {
                "kind": kind,
                "resolved": entry.get("resolved") or entry.get("resolution", ""),
                "integrity": entry.get("integrity") or entry.get("checksum", ""),
                "dependencies": entry.get("dependencies") or {},
                "requires": entry.get("requires") or {},
                "declared": True,
            }
            packages.append(self._package(resolver, name, version, path, entry.get("licenses", []), metadata))
        return packages

    def _root_manifest(self, resolver: FileResolver, path: str) -> list[Package]:
        """A project's own package.json, when it names itself (lock v2/v3 also list it)."""
        if "/node_modules/" in path:
            return []
        directory = paths.parent(path)
        if resolver.has_content(f"{directory}/package-lock.json"):
            return []  # the lock file's root entry already describes this project
        document = json.loads(resolver.read_bytes(path, MAX_PACKAGE_JSON_BYTES))
        if not isinstance(document, dict):
            return []
        name, version = document.get("name"), document.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            return []
        metadata = {**_manifest_metadata(document), "declared": True}
        return [self._package(resolver, name, version, path, license_values(document), metadata)]


def _manifest_metadata(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "author": person(document.get("author")),
        "homepage": _text(document.get("homepage")),
        "description": _text(document.get("description")),
        "repository": _text(document.get("repository")),
        "private": True if document.get("private") is True else None,
    }
