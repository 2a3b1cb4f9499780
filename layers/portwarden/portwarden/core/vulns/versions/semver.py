"""Semantic versions, read leniently: npm, Go modules, crates.io (and NuGet with four components).

One comparator serves every SemVer 2.0 ecosystem. Parsing is lenient, as in osv-scalibr, because
advisories and lockfiles are full of near-semver strings:

* an optional leading ``v``/``V`` (Go always has one, OSV's Go ranges never do);
* any number of dot-separated numeric components, missing ones are 0 (``2.0`` = ``2.0.0``);
  components beyond the third (fourth for NuGet) move into the pre-release part;
* the first character that is neither a digit nor a dot starts the pre-release/build text, with or
  without a ``-`` (``1.21rc2`` = ``1.21.0-rc2``, ``1.0.0.alpha`` = ``1.0.0-alpha``);
* build metadata (``+...``) is ignored, so Go's ``+incompatible`` needs no special case;
* pre-release identifiers: numeric ones compare numerically and before alphanumeric ones, others
  in ASCII order (case-sensitive, except for NuGet), and a longer list wins a tie.

Go pseudo-versions (``v0.0.0-20191109021931-daa7c04131f5``) are plain pre-releases and order by
their timestamp. Numbers have no size limit.
"""

from __future__ import annotations

import re
from functools import lru_cache

from portwarden.core.vulns.versions.base import PARSE_CACHE_SIZE, SortKeyComparator

_NO_PRERELEASE: tuple[int] = (1,)

Identifier = tuple[int, int] | tuple[int, str]
PrereleaseKey = tuple[int] | tuple[int, tuple[Identifier, ...]]
SemverKey = tuple[tuple[int, ...], PrereleaseKey]

_VALID_SEMVER = re.compile(
    r"^[vV]?(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*)){0,2}"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
_VALID_NUGET = re.compile(
    r"^[vV]?[0-9]+(\.[0-9]+){0,3}"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)


# The leading run of digits and dots: the numeric components (empty ones, as in ``1..2``, are skipped).
_NUMERIC_PREFIX = re.compile(r"[0-9.]*")


def split_semver_like(version: str, max_components: int) -> tuple[tuple[int, ...], str]:
    """(numeric components padded to ``max_components``, the rest: pre-release and build text)."""
    text = version[1:] if version[:1] in ("v", "V") else version
    prefix = _NUMERIC_PREFIX.match(text)
    numeric = prefix.group() if prefix is not None else ""
    rest = text[len(numeric) :]
    components = [int(run) for run in numeric.split(".") if run]
    if len(components) > max_components:
        extra = "".join(f".{number}" for number in components[max_components:])
        components = components[:max_components]
        rest = extra + rest
    components.extend([0] * (max_components - len(components)))
    return tuple(components), rest


def prerelease_key(rest: str, *, case_insensitive: bool) -> PrereleaseKey:
    prerelease = rest.split("+", 1)[0]
    if prerelease.startswith("-"):
        prerelease = prerelease[1:]
    if not prerelease:
        return _NO_PRERELEASE
    if case_insensitive:
        prerelease = prerelease.lower()
    identifiers: list[Identifier] = []
    for identifier in prerelease.split("."):
        if identifier.isascii() and identifier.isdigit():
            identifiers.append((0, int(identifier)))
        else:
            identifiers.append((1, identifier))
    return (0, tuple(identifiers))


class SemverComparator(SortKeyComparator):
    """SemVer 2.0 ordering with lenient parsing; see the module docstring."""

    name = "semver"
    components = 3
    case_insensitive_prerelease = False
    valid_pattern = _VALID_SEMVER

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        if name is not None:
            self.name = name
        # the grammar check is a regular expression; bounds are checked again for every match
        self._is_valid_cached = lru_cache(maxsize=PARSE_CACHE_SIZE)(self._matches_grammar)

    def _parse(self, version: str) -> SemverKey:
        numbers, rest = split_semver_like(version.strip(), self.components)
        return numbers, prerelease_key(rest, case_insensitive=self.case_insensitive_prerelease)

    def is_valid(self, version: str) -> bool:
        return self._is_valid_cached(version)

    def _matches_grammar(self, version: str) -> bool:
        return self.valid_pattern.match(version.strip()) is not None


class NugetComparator(SemverComparator):
    """NuGet: four numeric components (``1.0`` = ``1.0.0.0``), case-insensitive pre-release labels."""

    name = "nuget"
    components = 4
    case_insensitive_prerelease = True
    valid_pattern = _VALID_NUGET
