"""Identity and construction of language-ecosystem packages, and the shared evidence scan.

Every language analyzer builds its packages through ``language_package`` so that purls come from one
place (packageurl-python, which applies each ecosystem's canonical form: lower-case PyPI names,
``%40`` for npm scopes, …) and locations carry the layer that provided the evidence file. Evidence
files are found with one compiled regex per analyzer, behind a prefilter, over the sorted paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from portwarden.core.ecosystems import ECOSYSTEMS
from portwarden.core.image import paths
from portwarden.core.image.capture import GlobPrefilter
from portwarden.core.image.resolver import FileResolver, register_selection
from portwarden.core.model.files import FileRecord, FileType
from portwarden.core.model.package import Location, Package, PackageType

CONTENT_TYPES = (FileType.FILE, FileType.HARDLINK)


class GlobSet:
    """Globs (syntax of ``core.image.paths``) as one regex, behind a cheap necessary condition.

    Each language analyzer looks through every path of the image for its evidence files, most of
    which match none. The prefilter (``capture.GlobPrefilter``: literal names, suffixes, heads)
    rejects those with a set lookup or a ``str.endswith`` before the regex is tried; when it only
    looks at the last component (``**/.../NAME`` globs, the usual shape), it is asked once per
    distinct file name of the image rather than once per path.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._regex: re.Pattern[str] | None = None
        self._prefilter = GlobPrefilter(self.patterns)
        # What names this set's evidence among a view's shared selections (``evidence``).
        self.selection_name = register_selection("evidence:" + "\0".join(self.patterns), self.evidence)

    @property
    def regex(self) -> re.Pattern[str]:
        """The globs as one regex, compiled on first use: the analyzers' GlobSets are made when their
        modules load, and an analysis asks for the regex of those with candidate paths only.
        (Two threads asking at once compile the same regex; either result is kept.)"""
        regex = self._regex
        if regex is None:
            regex = self._regex = re.compile(
                "|".join(f"(?:{paths.glob_to_regex(p).pattern})" for p in self.patterns)
            )
        return regex

    def match(self, path: str) -> re.Match[str] | None:
        return self.regex.match(path) if self._prefilter.may_match(path) else None

    def evidence(self, resolver: FileResolver) -> Iterator[FileRecord]:
        """The regular files of ``resolver`` whose path matches, in path order."""
        for path in self.candidates(resolver):
            if self.regex.match(path):
                record = resolver.record(path)
                if record is not None and record.type in CONTENT_TYPES:
                    yield record

    def candidates(self, resolver: FileResolver) -> Iterable[str]:
        """The paths of ``resolver`` that may match, in path order (a superset of the matches)."""
        if not self._prefilter.judges_last_component:
            return [p for p in resolver.sorted_paths() if self._prefilter.may_match(p)]
        by_name = resolver.paths_by_name()
        return sorted(path for name in self._prefilter.names_among(by_name.keys()) for path in by_name[name])


def compile_globs(patterns: Iterable[str]) -> GlobSet:
    """Matches any of ``patterns`` (glob syntax of ``core.image.paths``)."""
    return GlobSet(patterns)


def evidence_records(resolver: FileResolver, globs: GlobSet) -> tuple[FileRecord, ...]:
    """Regular files whose path matches ``globs``, in path order (content not checked).

    Found once per view and set of globs: an analyzer asks in ``applies`` and again in ``analyze``,
    and the look through the image's paths was most of what an analyzer with no evidence cost."""
    return resolver.selection(globs.selection_name, globs.evidence)


def has_evidence(resolver: FileResolver, globs: GlobSet) -> bool:
    return bool(evidence_records(resolver, globs))


def purl(
    package_type: PackageType,
    name: str,
    version: str | None,
    namespace: str | None = None,
    qualifiers: Mapping[str, str] | None = None,
) -> str | None:
    """A package URL (its type from the ecosystem descriptor), or None when the name is empty."""
    if not name:
        return None
    # Imported on first use: a rescan answered from a stored document loads the analyzers only for
    # their names and versions.
    from packageurl import PackageURL

    try:
        return str(
            PackageURL(
                type=ECOSYSTEMS[package_type].purl_type,
                namespace=namespace or None,
                name=name,
                version=version or None,
                qualifiers=dict(qualifiers) if qualifiers else None,
            ).to_string()
        )
    except ValueError:
        return None


def npm_purl(name: str, version: str | None) -> str | None:
    """``@scope/name`` becomes namespace ``@scope`` (encoded ``%40scope``)."""
    namespace, _, bare = name.rpartition("/") if name.startswith("@") else ("", "", name)
    return purl(PackageType.NPM, bare, version, namespace=namespace or None)


def golang_purl(module_path: str, version: str | None) -> str | None:
    """The module path's last element is the purl name, the rest its namespace."""
    namespace, _, name = module_path.rpartition("/")
    return purl(PackageType.GO_MODULE, name, version, namespace=namespace or None)


def maven_purl(group_id: str | None, artifact_id: str, version: str | None) -> str | None:
    return purl(PackageType.JAVA_ARCHIVE, artifact_id, version, namespace=group_id or None)


def composer_purl(name: str, version: str | None) -> str | None:
    vendor, _, project = name.rpartition("/")
    return purl(PackageType.PHP_COMPOSER, project, version, namespace=vendor or None)


def locate(resolver: FileResolver, path: str) -> Location:
    """A Location for ``path`` carrying the digest of the layer that provided it (when known)."""
    record = resolver.lstat(path)
    return Location(path=path, layer_digest=record.layer_digest if record is not None else None)


def language_package(
    *,
    resolver: FileResolver,
    name: str,
    version: str,
    package_type: PackageType,
    package_url: str | None,
    found_by: str,
    evidence: Iterable[str],
    licenses: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    owned_files: Iterable[str] = (),
) -> Package:
    """Build a Package; ``evidence`` lists the files it was read from, the primary one first."""
    seen: dict[str, None] = {}
    for path in evidence:
        seen.setdefault(path, None)
    unique_licenses = tuple(dict.fromkeys(item.strip() for item in licenses if item and item.strip()))
    return Package(
        name=name,
        version=version,
        type=package_type,
        purl=package_url,
        licenses=unique_licenses,
        locations=tuple(locate(resolver, path) for path in seen),
        found_by=found_by,
        metadata=_without_empty(dict(metadata or {})),
        owned_files=tuple(dict.fromkeys(owned_files)),
    )


def _without_empty(metadata: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values so analysis documents stay small."""
    return {key: value for key, value in metadata.items() if value not in (None, "", [], {}, ())}
