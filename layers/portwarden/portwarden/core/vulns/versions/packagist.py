"""Packagist (Composer) versions, ordered like PHP's ``version_compare`` after Composer-style cleanup.

Our own implementation, following osv-scalibr (its vectors come from PHP itself): a leading
``v``/``V`` is dropped; ``-``, ``_`` and ``+`` become ``.``; a ``.`` is inserted wherever a digit meets
a non-digit; then the parts compare pairwise:

* two numbers numerically;
* otherwise by the rank of "special forms", matched by prefix as PHP does:
  ``dev`` < ``a``/``alpha`` < ``b``/``beta`` < ``RC``/``rc`` < a number < ``p``/``pl``; any other
  word ranks with ``dev``;
* when one version has more parts: a number there makes it newer, a word is compared with a number
  (so ``1.0 < 1.0pl1`` but ``1.0-beta < 1.0``).

Every string is accepted; ``is_valid`` checks Composer's version shape.
"""

from __future__ import annotations

import re

from portwarden.core.vulns.versions.base import ParsingComparator, sign

_SEPARATORS = re.compile(r"[-_+]")
_NON_DIGIT_THEN_DIGIT = re.compile(r"([^0-9.])([0-9])")
_DIGIT_THEN_NON_DIGIT = re.compile(r"([0-9])([^0-9.])")
_SPECIAL_FORMS = (("dev", 0), ("a", 1), ("b", 2), ("rc", 3), ("#", 4), ("p", 5))
_NUMBER_RANK = 4
_VALID_COMPOSER = re.compile(
    r"^[vV]?[0-9]+(\.[0-9]+){0,3}"
    r"([-_.]?(stable|beta|b|RC|rc|alpha|a|patch|pl|p)((\.)?[0-9]+)*)?"
    r"([.-]?dev)?$"
    r"|^dev-\S+$",
)

Part = int | str


def _rank(form: str) -> int:
    if form.startswith("RC"):
        return 3
    for prefix, rank in _SPECIAL_FORMS:
        if form.startswith(prefix):
            return rank
    return 0


def canonical_parts(version: str) -> tuple[Part, ...]:
    text = version.strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    text = _SEPARATORS.sub(".", text)
    text = _NON_DIGIT_THEN_DIGIT.sub(r"\1.\2", text)
    text = _DIGIT_THEN_NON_DIGIT.sub(r"\1.\2", text)
    return tuple(int(part) if part.isascii() and part.isdigit() else part for part in text.split("."))


def _compare_part(a: Part, b: Part) -> int:
    if isinstance(a, int) and isinstance(b, int):
        return sign(a - b)
    rank_a = _NUMBER_RANK if isinstance(a, int) else _rank(a)
    rank_b = _NUMBER_RANK if isinstance(b, int) else _rank(b)
    return sign(rank_a - rank_b)


def compare_packagist(a: tuple[Part, ...], b: tuple[Part, ...]) -> int:
    for left, right in zip(a, b, strict=False):
        diff = _compare_part(left, right)
        if diff:
            return diff
    if len(a) > len(b):
        return 1 if isinstance(a[len(b)], int) else compare_packagist(a[len(b) :], ("#",))
    if len(a) < len(b):
        return -1 if isinstance(b[len(a)], int) else compare_packagist(("#",), b[len(a) :])
    return 0


class PackagistComparator(ParsingComparator):
    name = "packagist"

    def _parse(self, version: str) -> tuple[Part, ...]:
        return canonical_parts(version)

    def _compare_parsed(self, a: tuple[Part, ...], b: tuple[Part, ...]) -> int:
        return compare_packagist(a, b)

    def is_valid(self, version: str) -> bool:
        return _VALID_COMPOSER.match(version.strip()) is not None
