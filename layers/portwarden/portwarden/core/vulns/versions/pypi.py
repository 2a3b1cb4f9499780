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
from typing import Any

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


# Ranks of the pre-release part: a dev release with neither pre- nor post-release sorts before every
# pre-release (1.0.dev1 < 1.0a1), a final release after them (1.0rc1 < 1.0).
_DEV_ONLY_RANK = -1
_PRE_RANKS = {"a": 0, "b": 1, "rc": 2}
_FINAL_RANK = 3


def pep440_key(version: Version) -> tuple[Any, ...]:
    """PEP 440's order of ``version`` as ints, strings and tuples, built from its public parts.

    ``(epoch, release without trailing zeros, (pre rank, pre number, has post, post number, no dev,
    dev number))``, then ``(local parts)`` when there is a local label (a version without one sorts
    first, as a shorter tuple does). Local parts: ``(-1, text)`` for words, ``(number, "")`` for
    numbers, so that words sort before numbers.
    """
    release = version.release
    end = len(release)
    while end and release[end - 1] == 0:
        end -= 1
    pre, post, dev = version.pre, version.post, version.dev
    if pre is not None:
        pre_rank, pre_number = _PRE_RANKS[pre[0]], pre[1]
    elif post is None and dev is not None:
        pre_rank, pre_number = _DEV_ONLY_RANK, 0
    else:
        pre_rank, pre_number = _FINAL_RANK, 0
    suffix = (pre_rank, pre_number, 0 if post is None else 1, post or 0, 1 if dev is None else 0, dev or 0)
    if version.local is None:
        return (version.epoch, release[:end], suffix)
    local = tuple((int(part), "") if part.isdigit() else (-1, part) for part in version.local.split("."))
    return (version.epoch, release[:end], suffix, local)


class PypiComparator(SortKeyComparator):
    name = "pypi"

    def _parse(self, version: str) -> PypiKey:
        try:
            return (1, Version(version))
        except InvalidVersion:
            return (0, legacy_key(version))

    def _plain_parsed(self, parsed: PypiKey) -> Any:
        kind, value = parsed
        return (kind, pep440_key(value)) if isinstance(value, Version) else parsed

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
