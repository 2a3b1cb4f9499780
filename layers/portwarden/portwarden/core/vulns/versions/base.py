"""The comparator contract and the shared fallback for versions an ecosystem cannot parse.

Every comparator is total: ``compare`` never raises, whatever the strings. A version the ecosystem's
grammar rejects still gets a deterministic place in the order (see :func:`fallback_compare`), and
``is_valid`` lets a caller flag a match that relied on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

# Parsed versions are cached per comparator: a scan compares the same few thousand strings
# (installed versions, fixed versions of the candidate advisories) over and over.
PARSE_CACHE_SIZE = 16384


@runtime_checkable
class Comparator(Protocol):
    """Orders the version strings of one ecosystem."""

    @property
    def name(self) -> str:
        """The registry key of this comparator, e.g. ``"dpkg"``."""
        ...

    def compare(self, a: str, b: str) -> int:
        """-1 if ``a`` sorts before ``b``, 0 if they are equal, 1 if ``a`` sorts after ``b``. Never raises."""
        ...

    def is_valid(self, version: str) -> bool:
        """Whether ``version`` follows the ecosystem's grammar (so its order is not a fallback guess)."""
        ...


@runtime_checkable
class BoundAwareComparator(Comparator, Protocol):
    """A comparator whose constraint semantics differ from its plain ordering.

    PEP 440 is the one case: a bound without a local label (``<= 6.4``) ignores the candidate's local
    label (``6.4+cgr.1``). Constraint evaluation uses ``compare_to_bound`` when a comparator has it.
    """

    def compare_to_bound(self, version: str, bound: str) -> int:
        """Like ``compare(version, bound)`` but with the ecosystem's rules for constraint bounds."""
        ...


def fallback_compare(a: str, b: str) -> int:
    """The order of two versions that are both unparsable: plain code-point order of the raw strings."""
    if a == b:
        return 0
    return -1 if a < b else 1


def sign(value: int) -> int:
    return (value > 0) - (value < 0)


class ParsingComparator(ABC):
    """Base for comparators that parse a string once (cached) and compare parsed forms.

    ``_parse`` returns ``None`` for a string the ecosystem cannot parse at all. The fallback rule: an
    unparsable version sorts *before* every parsable one, and two unparsable versions compare by their
    raw strings. Sorting them low is deliberate: a matcher then treats an unreadable installed version
    as affected by "fixed in X" ranges (a flagged possible match) rather than silently dropping it.
    """

    name: str = ""

    def __init__(self) -> None:
        # each comparator gets its own bounded cache (lru_cache on the method itself would share one
        # cache between instances and keep them all alive)
        self._parse_cached = lru_cache(maxsize=PARSE_CACHE_SIZE)(self._parse_or_none)

    def _parse_or_none(self, version: str) -> Any:
        # Versions come from untrusted image content. Whatever a parser trips on (an integer beyond
        # Python's 4300-digit conversion limit, nesting deeper than the recursion limit) makes the
        # version unparsable, never an exception in the middle of a scan.
        try:
            return self._parse(version)
        except (ValueError, RecursionError, MemoryError):
            return None

    @abstractmethod
    def _parse(self, version: str) -> Any:
        """The parsed form of ``version``, or ``None`` if it cannot be parsed."""

    @abstractmethod
    def _compare_parsed(self, a: Any, b: Any) -> int:
        """Compare two parsed forms (neither is ``None``); returns -1, 0 or 1."""

    def is_valid(self, version: str) -> bool:
        return self._parse_cached(version) is not None

    def compare(self, a: str, b: str) -> int:
        if a == b:
            return 0
        parsed_a = self._parse_cached(a)
        parsed_b = self._parse_cached(b)
        if parsed_a is None or parsed_b is None:
            if parsed_a is None and parsed_b is None:
                return fallback_compare(a, b)
            return -1 if parsed_a is None else 1
        try:
            return self._compare_parsed(parsed_a, parsed_b)
        except RecursionError:
            # parsed forms nested almost as deep as the recursion limit: order them as raw strings
            return fallback_compare(a, b)


class SortKeyComparator(ParsingComparator):
    """A comparator whose parsed form is a sort key: comparing is one tuple comparison."""

    def compare(self, a: str, b: str) -> int:
        # ParsingComparator.compare with the key comparison written inline: matching calls this for
        # every range bound it meets, and the extra method call was a good part of the cost.
        if a == b:
            return 0
        parsed_a = self._parse_cached(a)
        parsed_b = self._parse_cached(b)
        if parsed_a is None or parsed_b is None:
            if parsed_a is None and parsed_b is None:
                return fallback_compare(a, b)
            return -1 if parsed_a is None else 1
        try:
            if parsed_a == parsed_b:
                return 0
            return -1 if parsed_a < parsed_b else 1
        except RecursionError:
            # parsed forms nested almost as deep as the recursion limit: order them as raw strings
            return fallback_compare(a, b)

    def _compare_parsed(self, a: Any, b: Any) -> int:
        if a == b:
            return 0
        return -1 if a < b else 1
