"""Debian/Ubuntu package versions (``[epoch:]upstream[-revision]``), ordered as dpkg orders them.

python-debian defines the grammar: its ``BaseVersion.re_valid_version`` (Debian Policy 5.6.12) splits
and validates the string, with its rule that an upstream version may contain ``:`` only after an
epoch. Its comparison walks both strings on every call (about 12k comparisons per second), too slow
for the matching hot path, so the parts are turned once into a tuple sort key that orders exactly like
dpkg's ``verrevcmp``; the conformance tests check the key against the Debian vectors and against
python-debian's ``version_compare``.
"""

from __future__ import annotations

import re

from debian.debian_support import BaseVersion

from portwarden.core.vulns.versions.base import SortKeyComparator

# Weights of the characters of a non-digit run, as in dpkg's ``order()``: ``~`` sorts before the end
# of the run, letters before everything else, other characters after letters.
_TILDE_WEIGHT = -1
_END_OF_RUN = 0
_NON_LETTER_OFFSET = 256

_VALID_VERSION = BaseVersion.re_valid_version
# dpkg alternates a run of non-digits and a run of (ASCII) digits
_RUNS = re.compile(r"([^0-9]*)([0-9]*)")

DpkgPart = tuple[int, ...]
DpkgKey = tuple[int, DpkgPart, DpkgPart]


def _char_weight(char: str) -> int:
    if char == "~":
        return _TILDE_WEIGHT
    if char.isascii() and char.isalpha():
        return ord(char)
    return ord(char) + _NON_LETTER_OFFSET


def _part_key(part: str) -> DpkgPart:
    """Sort key of an upstream version or a revision.

    dpkg alternates a non-digit run and a digit run. Each non-digit run becomes its character weights
    plus an end-of-run 0 (so a shorter run sorts as dpkg's end-of-string would), each digit run its
    integer value. dpkg pads the shorter string with (empty run, 0) groups forever, so a trailing
    (empty run, 0) group is the same as nothing (``1.0`` = ``1.0-0``) and is dropped. The padding is
    then written out as far as it can matter: one (end, 0) group plus the end-of-run weight that begins
    the next one. Only the first group can have an empty run, so after that a real group always
    differs from the padding in its first weight (``~`` below it, anything else above), which keeps
    ``0~ < 0`` and ``1.0~rc1 < 1.0 < 1.0.0``.
    """
    groups: list[tuple[int, ...]] = []
    for letters, digits in _RUNS.findall(part):
        if not letters and not digits:
            continue  # findall's final empty match
        weights = [_char_weight(char) for char in letters]
        weights.append(_END_OF_RUN)
        weights.append(int(digits) if digits else 0)
        groups.append(tuple(weights))
    while groups and groups[-1] == (_END_OF_RUN, 0):
        groups.pop()
    flat: list[int] = [value for group in groups for value in group]
    flat.extend((_END_OF_RUN, 0, _END_OF_RUN))
    return tuple(flat)


class DpkgComparator(SortKeyComparator):
    name = "dpkg"

    def _parse(self, version: str) -> DpkgKey | None:
        # the grammar object itself, not a Version instance: building one costs ~35 us per string
        match = _VALID_VERSION.match(version.strip())
        if match is None:
            return None
        epoch, upstream, revision = match.group("epoch", "upstream_version", "debian_revision")
        if epoch is None and ":" in upstream:
            return None
        return (
            int(epoch) if epoch else 0,
            _part_key(upstream or "0"),
            _part_key(revision or "0"),
        )
