"""Installed Python distributions: ``*.dist-info`` and ``*.egg-info`` (directory or single file).

The directory suffix is matched without regard to case (``DIST-INFO``, ``EGG-INFO`` exist in the
wild). A distribution's identity comes from ``METADATA``/``PKG-INFO`` (RFC 822 style headers), the
files it installed from ``RECORD`` (or an egg's ``installed-files.txt``), resolved against the
site-packages directory so they can be compared with the files OS packages own.
"""

from __future__ import annotations

import csv
import json
import re
from typing import Any, ClassVar

from portwarden.core.analyzers._purl_lang import language_package, purl
from portwarden.core.analyzers.base import AnalyzerContext, AnalyzerOutput
from portwarden.core.analyzers.globs import compile_globs, evidence_records, has_evidence
from portwarden.core.errors import ContentUnavailableError
from portwarden.core.image import paths
from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.package import Package, PackageType

_DIST = "*[dD][iI][sS][tT]-[iI][nN][fF][oO]"
_EGG = "*[eE][gG][gG]-[iI][nN][fF][oO]"

# The files that identify a distribution; the others are read beside them.
_PRIMARY_GLOBS = (f"**/{_DIST}/METADATA", f"**/{_EGG}/PKG-INFO", "**/*.[eE][gG][gG]-[iI][nN][fF][oO]")

MAX_METADATA_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 16 * 1024 * 1024
# A License field longer than this, or spread over several lines, is the licence text itself.
MAX_LICENSE_FIELD = 200

_PRIMARY = re.compile(
    r"(?P<dir>(?:.*/)?[^/]*(?i:dist-info))/METADATA\Z"
    r"|(?P<eggdir>(?:.*/)?[^/]*(?i:egg-info))/PKG-INFO\Z"
    r"|(?P<eggfile>(?:.*/)?[^/]*\.(?i:egg-info))\Z"
)
_NAME_SEPARATORS = re.compile(r"[-_.]+")


def normalize_name(name: str) -> str:
    """PEP 503 normalisation: how indexes and advisories name a project."""
    return _NAME_SEPARATORS.sub("-", name).lower()


def parse_metadata(text: str) -> dict[str, list[str]]:
    """Headers of a METADATA/PKG-INFO document, keys lower-cased, values in order of appearance.

    A completely empty line ends the headers (the description body follows). Continuation lines
    start with whitespace; old PKG-INFO files indent multi-line descriptions that way, including
    whitespace-only lines, which therefore do not end the headers.
    """
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in text.splitlines():
        if line == "":
            break
        if line[0] in " \t":
            if last is not None:
                headers[last][-1] = headers[last][-1] + "\n" + line.strip()
            continue
        key, separator, value = line.partition(":")
        if not separator:
            continue
        last = key.strip().lower()
        headers.setdefault(last, []).append(value.strip())
    return headers


def licenses_from_metadata(headers: dict[str, list[str]]) -> list[str]:
    """License-Expression, else a short License field, else the License classifiers."""
    expression = _first(headers, "license-expression")
    if expression:
        return [expression]
    field = _first(headers, "license")
    if field and field.upper() != "UNKNOWN" and "\n" not in field and len(field) <= MAX_LICENSE_FIELD:
        return [field]
    found = []
    for classifier in headers.get("classifier", []):
        parts = [part.strip() for part in classifier.split("::")]
        if len(parts) >= 2 and parts[0] == "License" and parts[-1] not in ("OSI Approved", "License"):
            found.append(parts[-1])
    return found


def _canonical(path: str) -> str:
    """``paths.normalize(path)``; a path already canonical (absolute, no empty, ``.`` or ``..``
    component, no trailing slash: most RECORD lines once joined) is returned without the walk."""
    if path[:1] == "/" and "//" not in path and "/." not in path and path[-1:] != "/":
        return path
    return paths.normalize(path)


def parse_record(text: str) -> list[dict[str, Any]]:
    """RECORD rows (CSV: path, ``algorithm=digest``, size)."""
    files: list[dict[str, Any]] = []
    for row in csv.reader(text.splitlines()):
        if not row or not row[0].strip():
            continue
        entry: dict[str, Any] = {"path": row[0].strip()}
        if len(row) > 1 and "=" in row[1]:
            algorithm, _, value = row[1].partition("=")
            entry["digest"] = {"algorithm": algorithm.strip(), "value": value.strip()}
        if len(row) > 2 and row[2].strip():
            entry["size"] = row[2].strip()
        files.append(entry)
    return files


def parse_direct_url(text: str) -> dict[str, str] | None:
    """The VCS origin recorded by PEP 610 ``direct_url.json`` (None for non-VCS installs)."""
    document = json.loads(text)
    if not isinstance(document, dict):
        return None
    vcs_info = document.get("vcs_info")
    url = document.get("url")
    if not isinstance(vcs_info, dict) or not isinstance(url, str):
        return None
    origin = {
        "url": url,
        "vcs": str(vcs_info.get("vcs", "")),
        "commit_id": str(vcs_info.get("commit_id", "")),
    }
    return origin


def vcs_url(origin: dict[str, str]) -> str:
    """The purl ``vcs_url`` qualifier value: ``git+https://host/repo.git@commit``."""
    url = origin["url"]
    vcs = origin.get("vcs", "")
    if vcs and not url.startswith(vcs + "+"):
        url = f"{vcs}+{url}"
    commit = origin.get("commit_id", "")
    return f"{url}@{commit}" if commit else url


def _first(headers: dict[str, list[str]], key: str) -> str:
    values = headers.get(key)
    return values[0] if values else ""


class PythonPackageAnalyzer:
    """Installed Python distributions from dist-info and egg-info metadata."""

    name: ClassVar[str] = "python"
    version: ClassVar[int] = 1
    capture_patterns: ClassVar[tuple[str, ...]] = (
        *_PRIMARY_GLOBS,
        f"**/{_DIST}/RECORD",
        f"**/{_DIST}/top_level.txt",
        f"**/{_DIST}/direct_url.json",
        f"**/{_EGG}/RECORD",
        f"**/{_EGG}/top_level.txt",
        f"**/{_EGG}/installed-files.txt",
    )
    _candidates = compile_globs(_PRIMARY_GLOBS)

    def applies(self, resolver: FileResolver) -> bool:
        return has_evidence(resolver, self._candidates)

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput:
        resolver = context.resolver
        packages: list[Package] = []
        warnings: list[str] = []
        for record in evidence_records(resolver, self._candidates):
            match = _PRIMARY.match(record.path)
            if match is None:
                continue
            try:
                package = self._read_distribution(resolver, record.path, match)
            except (ContentUnavailableError, OSError, UnicodeError, ValueError) as exc:
                warnings.append(f"{self.name}: {record.path}: {exc}")
                continue
            if package is None:
                warnings.append(f"{self.name}: {record.path}: no Name header; not a distribution")
                continue
            packages.append(package)
        return AnalyzerOutput(packages=tuple(packages), warnings=tuple(warnings))

    def _read_distribution(self, resolver: FileResolver, path: str, match: re.Match[str]) -> Package | None:
        metadata_dir = match.group("dir") or match.group("eggdir")
        is_dist_info = match.group("dir") is not None
        headers = parse_metadata(resolver.read_text(path, MAX_METADATA_BYTES))
        raw_name = _first(headers, "name")
        if not raw_name:
            return None
        version = _first(headers, "version")
        site_packages = paths.parent(metadata_dir or path)
        evidence = [path]
        owned: list[str] = [path]
        files: list[dict[str, Any]] = []
        top_level: list[str] = []
        origin: dict[str, str] | None = None
        if metadata_dir is not None:
            record_path = f"{metadata_dir}/RECORD"
            if resolver.has_content(record_path):
                evidence.append(record_path)
                files = parse_record(resolver.read_text(record_path, MAX_RECORD_BYTES))
                owned.extend(_canonical(f"{site_packages}/{entry['path']}") for entry in files)
            installed_files = f"{metadata_dir}/installed-files.txt"
            if not is_dist_info and resolver.has_content(installed_files):
                evidence.append(installed_files)
                for line in resolver.read_text(installed_files, MAX_RECORD_BYTES).splitlines():
                    if line.strip():
                        owned.append(paths.normalize(f"{metadata_dir}/{line.strip()}"))
            direct_url = f"{metadata_dir}/direct_url.json"
            if is_dist_info and resolver.has_content(direct_url):
                evidence.append(direct_url)
                origin = parse_direct_url(resolver.read_text(direct_url, MAX_METADATA_BYTES))
            top_level_path = f"{metadata_dir}/top_level.txt"
            if resolver.has_content(top_level_path):
                evidence.append(top_level_path)
                top_level = [
                    line.strip()
                    for line in resolver.read_text(top_level_path, MAX_METADATA_BYTES).splitlines()
                ]
                top_level = [name for name in top_level if name]
            owned.extend(evidence)
        name = normalize_name(raw_name)
        qualifiers = {"vcs_url": vcs_url(origin)} if origin else None
        return language_package(
            resolver=resolver,
            name=name,
            version=version,
            package_type=PackageType.PYTHON,
            package_url=purl(PackageType.PYTHON, name, version, qualifiers=qualifiers),
            found_by=self.name,
            evidence=evidence,
            licenses=licenses_from_metadata(headers),
            owned_files=owned,
            metadata={
                "name": raw_name,
                "version": version,
                "summary": _first(headers, "summary"),
                "author": _first(headers, "author"),
                "author_email": _first(headers, "author-email"),
                "home_page": _first(headers, "home-page"),
                "platform": _first(headers, "platform"),
                "requires_python": _first(headers, "requires-python"),
                "requires_dist": headers.get("requires-dist", []),
                "provides_extra": headers.get("provides-extra", []),
                "site_packages_root_path": site_packages,
                "top_level_packages": top_level,
                "direct_url_origin": origin,
                "files": files,
            },
        )
