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


# Order-preserving encoding: the codes that start each element. The end of a sequence sorts below every
# element, so a sequence sorts before its extensions, as tuples do. Small non-negative integers (most
# version parts) are one character each, above the other codes; larger ones follow a marker above them.
_END = "!"
_NEGATIVE = "#"
_STRING = "%"
_SEQUENCE = "("
_SMALL_BASE = 0x30
_SMALL_LIMIT = 0x7E - _SMALL_BASE
_LARGE = chr(0x7E)
# A string ends with NUL + "\x01"; a NUL inside it becomes NUL + "\x02" (sorts after the end).
_STRING_END = "\x00\x01"
_ESCAPED_NUL = "\x00\x02"
_LENGTH_BASE = 0x40


def encode_ordered(value: Any) -> str:
    """A string whose code-point order is the order of ``value``: nested tuples of ints and strings.

    Each element is self-delimiting, so comparing two encodings compares element by element as tuples
    do. Integers below 78: one character. Others: a sign marker, then the length of the length of the
    digits, the length, the digits (nine-complemented for negative numbers, so that a larger magnitude
    sorts lower). Values of different kinds at the same position get an arbitrary but fixed order; the
    keys encoded here never compare them (Python would raise). Raises TypeError for any other type.
    """
    parts: list[str] = []
    _encode_into(value, parts)
    return "".join(parts)


_NINE_COMPLEMENT = str.maketrans("0123456789", "9876543210")


def _encode_into(value: Any, parts: list[str]) -> None:
    if isinstance(value, bool):
        raise TypeError("booleans have no order key")
    if isinstance(value, int):
        if 0 <= value < _SMALL_LIMIT:
            parts.append(chr(_SMALL_BASE + value))
            return
        digits = str(abs(value))
        length = str(len(digits))
        if value >= 0:
            parts.append(f"{_LARGE}{chr(_LENGTH_BASE + len(length))}{length}{digits}")
        else:
            encoded = f"{chr(_LENGTH_BASE + 9 - len(length))}{length}{digits}".translate(_NINE_COMPLEMENT)
            parts.append(_NEGATIVE + encoded)
    elif isinstance(value, str):
        parts.append(_STRING + value.replace("\x00", _ESCAPED_NUL) + _STRING_END)
    elif isinstance(value, tuple | list):
        parts.append(_SEQUENCE)
        for item in value:
            _encode_into(item, parts)
        parts.append(_END)
    else:
        raise TypeError(f"no order key for {type(value).__name__}")


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

    def order_key(self, version: str) -> str | None:
        """``version``'s place in this comparator's order, as a string.

        Two versions whose order keys both exist compare as their keys compare (code-point order),
        exactly as :meth:`compare` orders them, unparsable versions included. ``None`` when this
        comparator (or this version) has no such key: :meth:`compare` is then the only way to order it.
        A database stores the keys of range bounds, so matching compares strings instead of parsing.
        """
        return None

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

    def __init__(self) -> None:
        super().__init__()
        self._order_key_cached = lru_cache(maxsize=PARSE_CACHE_SIZE)(self._make_order_key)

    def order_key(self, version: str) -> str | None:
        return self._order_key_cached(version)

    def _make_order_key(self, version: str) -> str | None:
        parsed = self._parse_cached(version)
        # The fallback order: unparsable versions first, among themselves by their raw strings.
        total = (0, version) if parsed is None else (1, self._plain_parsed(parsed))
        try:
            return encode_ordered(total)
        except (TypeError, ValueError, RecursionError):
            # Not ints, strings and tuples, an integer beyond the conversion limit, or nested too deep.
            return None

    def _plain_parsed(self, parsed: Any) -> Any:
        """The parsed key as ints, strings and tuples (:func:`encode_ordered` raises on anything else)."""
        return parsed

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
