"""Python package versions: PEP 440 through ``packaging``, with a legacy fallback.

``packaging.version.Version`` orders every PEP 440 version. Strings it rejects ("legacy" versions
such as ``0.9-doduo``, still present in old advisories and old installs) are not errors: they are
ordered the way setuptools' historical ``LegacyVersion`` ordered them, which is also what
osv-scalibr does:

* every legacy version sorts before every PEP 440 version;
* legacy versions compare by a key built from their parts: runs of digits (zero-padded, so they sort
  numerically), runs of letters and ``-``, with ``pre``/``preview``/``rc`` read as ``c``, ``dev`` as
  ``@`` (lowest), trailing zeros and ``final`` markers dropped.

``is_valid`` is true only for PEP 440 versions, so a match that relied on the legacy order can be
flagged.

For constraints, PEP 440's rule for local labels applies (``compare_to_bound``): a bound without a
local label (``<= 6.4``) is compared with the candidate's public version (``6.4+cgr.1`` -> ``6.4``).
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

from portwarden.core.vulns.versions.base import SortKeyComparator

_LEGACY_PARTS = re.compile(r"(\d+|[a-z]+|\.|-)")
_LEGACY_REPLACEMENTS = {"pre": "c", "preview": "c", "-": "final-", "rc": "c", "dev": "@"}

# (0, legacy parts) sorts before (1, Version): legacy versions come first.
PypiKey = tuple[int, Version] | tuple[int, tuple[str, ...]]


def legacy_key(version: str) -> tuple[str, ...]:
    parts: list[str] = []
    for raw in [*_LEGACY_PARTS.findall(version.lower()), "final"]:
        if raw == ".":
            continue
        part = _LEGACY_REPLACEMENTS.get(raw, raw)
        part = part.zfill(8) if part[:1].isdigit() else "*" + part
        if part.startswith("*"):
            # a pre-release marker ends an implicit "final-" section; trailing zeros before any
            # marker are not significant
            if part < "*final":
                while parts and parts[-1] == "*final-":
                    parts.pop()
            while parts and parts[-1] == "00000000":
                parts.pop()
        parts.append(part)
    return tuple(parts)


class PypiComparator(SortKeyComparator):
    name = "pypi"

    def _parse(self, version: str) -> PypiKey:
        try:
            return (1, Version(version))
        except InvalidVersion:
            return (0, legacy_key(version))

    def is_valid(self, version: str) -> bool:
        parsed = self._parse_cached(version)
        return parsed is not None and parsed[0] == 1

    def compare_to_bound(self, version: str, bound: str) -> int:
        parsed_bound = self._parse_cached(bound)
        parsed_version = self._parse_cached(version)
        if (
            parsed_bound is not None
            and parsed_version is not None
            and parsed_bound[0] == 1
            and parsed_version[0] == 1
            and isinstance(parsed_bound[1], Version)
            and isinstance(parsed_version[1], Version)
            and parsed_bound[1].local is None
            and parsed_version[1].local is not None
        ):
            return self.compare(parsed_version[1].public, bound)
        return self.compare(version, bound)
