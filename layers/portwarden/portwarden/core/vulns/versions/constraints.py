"""Version constraints as the matcher evaluates them: grype-style expressions and OSV range events.

A :class:`Constraint` is an OR of AND-groups of single comparisons (``< 2.0``). Two parsers build
one: :func:`parse_constraint` (grype's syntax) and ``npm_ranges.parse_npm_range`` (npm's range
syntax). Either is evaluated against any comparator of the registry.

OSV ranges are event lists rather than expressions; :func:`in_osv_range` evaluates one range.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Literal, cast

from portwarden.core.errors import InvalidConstraintError
from portwarden.core.model.base import ValueObject
from portwarden.core.vulns.versions.base import Comparator

Operator = Literal["<", "<=", ">", ">=", "=", "!="]

_COMPARISON = re.compile(r"^(<=|>=|!=|==|=|<|>)?\s*(.*?)$")
_QUOTES = "'\""


class Comparison(ValueObject):
    """One ``<operator> <version>`` test."""

    operator: Operator
    version: str

    def holds_for(self, version: str, comparator: Comparator) -> bool:
        return self.holds_for_order(_ordering(comparator)(version, self.version))

    def holds_for_order(self, order: int) -> bool:
        """Whether the comparison holds, given ``order`` = compare(candidate, self.version)."""
        operator = self.operator
        if operator == "<":
            return order < 0
        if operator == "<=":
            return order <= 0
        if operator == ">":
            return order > 0
        if operator == ">=":
            return order >= 0
        if operator == "=":
            return order == 0
        return order != 0

    def __str__(self) -> str:
        return f"{self.operator} {self.version}"


class Constraint(ValueObject):
    """``any_of`` groups, each satisfied when *all* of its comparisons hold. No groups = no restriction."""

    any_of: tuple[tuple[Comparison, ...], ...] = ()

    @property
    def matches_everything(self) -> bool:
        return not self.any_of

    def satisfied_by(self, version: str, comparator: Comparator) -> bool:
        if not self.any_of:
            return True
        order = _ordering(comparator)
        return any(
            all(comparison.holds_for_order(order(version, comparison.version)) for comparison in group)
            for group in self.any_of
        )

    def __str__(self) -> str:
        return " || ".join(", ".join(str(comparison) for comparison in group) for group in self.any_of)


def _ordering(comparator: Comparator) -> Callable[[str, str], int]:
    """The function that orders a candidate against a bound: ``compare_to_bound`` where it exists."""
    # a plain attribute lookup: isinstance() against a runtime Protocol is far too slow for the hot path
    compare_to_bound = getattr(comparator, "compare_to_bound", None)
    if callable(compare_to_bound):
        return cast("Callable[[str, str], int]", compare_to_bound)
    return comparator.compare


def _parse_comparison(text: str, whole: str) -> Comparison:
    match = _COMPARISON.match(text.strip())
    if match is None:  # the pattern accepts any string; kept for the type checker
        raise InvalidConstraintError(whole, f"cannot read {text!r}")
    operator_text, version = match.group(1) or "=", match.group(2).strip().strip(_QUOTES).strip()
    if not version:
        raise InvalidConstraintError(whole, f"operator {operator_text!r} without a version")
    operator: Operator = "=" if operator_text == "==" else operator_text  # type: ignore[assignment]
    return Comparison(operator=operator, version=version)


@lru_cache(maxsize=8192)
def parse_constraint(text: str) -> Constraint:
    """Parse grype's constraint syntax.

    Comparisons joined by ``,`` must all hold; groups joined by ``||`` are alternatives; an empty (or
    blank) constraint matches every version. Operators: ``<``, ``<=``, ``>``, ``>=``, ``=``, ``==``,
    ``!=``; a bare version means ``=``. Versions may be quoted (``'4.5.1' || '4.5.2'``).
    Raises InvalidConstraintError for an operator without a version or an empty group.
    """
    if not text.strip():
        return Constraint()
    groups: list[tuple[Comparison, ...]] = []
    for group_text in text.split("||"):
        parts = [part for part in group_text.split(",")]
        if not any(part.strip() for part in parts):
            raise InvalidConstraintError(text, "empty alternative")
        groups.append(tuple(_parse_comparison(part, text) for part in parts if part.strip()))
    return Constraint(any_of=tuple(groups))


# OSV event kinds, as in the OSV schema's ``ranges[].events``.
OsvEvent = Mapping[str, str]


def in_osv_range(version: str, events: Sequence[OsvEvent], comparator: Comparator) -> bool:
    """Whether ``version`` is affected according to one OSV range's events (SEMVER or ECOSYSTEM).

    This is the OSV schema's evaluation: walk the events in version order; an ``introduced`` at or
    below the version opens the range (``"0"`` means from the very first version), a ``fixed`` at or
    below it closes it, a ``last_affected`` strictly below it closes it. Equivalently, the last event
    that applies to the version (the greatest one, in version order) decides. When an opening and a
    closing event carry the same version the closing one wins (``introduced: 1.0, fixed: 1.0`` is an
    empty range). ``limit`` events cap the range: the version must be below at least one limit
    (``"*"`` is no limit).
    """
    deciding_version: str | None = None
    deciding_opens = False
    found = False
    limits: list[str] = []
    for event in events:
        for kind, bound in event.items():
            if kind == "limit":
                limits.append(bound)
                continue
            if kind == "introduced":
                if bound != "0" and comparator.compare(version, bound) < 0:
                    continue
                opens = True
            elif kind == "fixed":
                if comparator.compare(version, bound) < 0:
                    continue
                opens = False
            elif kind == "last_affected":
                if comparator.compare(version, bound) <= 0:
                    continue
                opens = False
            else:
                continue
            if not found:
                found, deciding_version, deciding_opens = True, bound, opens
                continue
            assert deciding_version is not None
            order = _event_order(bound, deciding_version, comparator)
            if order > 0 or (order == 0 and not opens):
                deciding_version, deciding_opens = bound, opens
    if not (found and deciding_opens):
        return False
    return not limits or any(limit == "*" or comparator.compare(version, limit) < 0 for limit in limits)


def _event_order(a: str, b: str, comparator: Comparator) -> int:
    """Order of two event versions, where an ``introduced: "0"`` precedes every version."""
    if a == b:
        return 0
    if a == "0" or b == "0":
        # "0" only comes from introduced events; a real version "0" sorts first anyway
        return -1 if a == "0" else 1
    return comparator.compare(a, b)
