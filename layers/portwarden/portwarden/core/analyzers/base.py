"""The analyzer plugin contract (DESIGN §4 rules 5 and 6).

An analyzer has a stable ``name``, an integer ``version`` (bump it when its output changes, so cached
analyses are invalidated), the glob patterns of the files whose *content* it needs (the layer reader
keeps exactly those while streaming), a cheap ``applies`` filter, and ``analyze``, which reads only
through the FileResolver. An analyzer that raises is recorded with its error; the others still run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from portwarden.core.image.resolver import FileResolver
from portwarden.core.model.distro import Distro
from portwarden.core.model.package import Package


class Secret(BaseModel):
    """A secret found in a file: where and which pattern — never the matched value."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    path: str
    line: int
    name: str


# Files whose content every analysis keeps unless configured otherwise. Anchore's default analyzer
# configuration stores /etc/passwd, so bundles with ``passwd_file`` rules work on every image.
DEFAULT_RETRIEVE_FILES: tuple[str, ...] = ("/etc/passwd",)


def merge_retrieve_files(defaults: Iterable[str], extra: Iterable[str]) -> tuple[str, ...]:
    """The configured defaults followed by the files asked for on top, each once, in order."""
    return tuple(dict.fromkeys([*defaults, *extra]))


class AnalyzerOptions(BaseModel):
    """User-tunable analyzer behaviour."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    # Declared-dependency files (package-lock.json, yarn.lock, Gemfile.lock, Cargo.lock) are evidence
    # of what *would* be installed, not of what is; like Syft we leave them out of image scans unless asked.
    include_declared: bool = False
    secret_patterns: dict[str, str] = Field(default_factory=dict)
    content_patterns: dict[str, str] = Field(default_factory=dict)
    retrieve_files: tuple[str, ...] = DEFAULT_RETRIEVE_FILES
    retrieve_max_bytes: int = 512 * 1024
    max_nested_archive_depth: int = 4
    max_archive_total_bytes: int = 512 * 1024 * 1024


class AnalyzerContext(BaseModel):
    """What an analyzer gets: the resolver, the options and, for image-level analyzers, the distro."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, defer_build=True)

    resolver: FileResolver
    options: AnalyzerOptions = Field(default_factory=AnalyzerOptions)
    distro: Distro | None = None


class AnalyzerOutput(BaseModel):
    """What one analyzer found. ``data`` holds analyzer-specific sections (files, image metadata…)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    packages: tuple[Package, ...] = ()
    distro: Distro | None = None
    secrets: tuple[Secret, ...] = ()
    warnings: tuple[str, ...] = ()
    data: dict[str, Any] = Field(default_factory=dict)


class Analyzer(Protocol):
    name: ClassVar[str]
    version: ClassVar[int]
    # Globs (see core.image.paths.glob_to_regex) of files whose content must be captured.
    capture_patterns: ClassVar[tuple[str, ...]]

    def applies(self, resolver: FileResolver) -> bool:
        """Cheap check on file records only: is there anything for this analyzer?"""
        ...

    def analyze(self, context: AnalyzerContext) -> AnalyzerOutput: ...
