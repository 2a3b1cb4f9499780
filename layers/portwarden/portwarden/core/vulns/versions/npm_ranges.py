"""npm's range syntax (node-semver), desugared into a :class:`Constraint`.

Supported: ``||`` alternatives; space-separated comparators (all must hold); operators ``<``, ``<=``,
``>``, ``>=``, ``=``; x-ranges (``*``, ``1.x``, ``1.2.*``, partial versions like ``1.2``); tilde
(``~1.2.3``) and caret (``^0.2.3``) ranges; hyphen ranges (``1.2 - 2.3.4``). The desugaring is
node-semver's, e.g. ``^1.2.3`` -> ``>=1.2.3, <2.0.0-0`` and ``<=1.2`` -> ``<1.3.0-0``.

One deliberate difference: node-semver hides pre-releases from a range unless a comparator of the
same group names the same ``major.minor.patch`` with a pre-release. For vulnerability matching that
would let ``2.0.0-beta.1`` escape ``<2.0.0``, so pre-releases are ordered like every other version
(node-semver's ``includePrerelease`` mode).
"""

from __future__ import annotations

import re
from functools import lru_cache

from portwarden.core.errors import InvalidConstraintError
from portwarden.core.vulns.versions.constraints import Comparison, Constraint, Operator

_WILDCARDS = frozenset({"*", "x", "X"})
_OPERATOR_GAP = re.compile(r"(<=|>=|<|>|=|~>|~|\^)\s+")
_HYPHEN = re.compile(r"^\s*(\S+)\s+-\s+(\S+)\s*$")
_TOKEN = re.compile(r"^(<=|>=|<|>|=|~>|~|\^)?[vV=\s]*(.*)$")
_PARTIAL = re.compile(
    r"^(?P<major>[0-9]+|[xX*])"
    r"(?:\.(?P<minor>[0-9]+|[xX*])"
    r"(?:\.(?P<patch>[0-9]+|[xX*])"
    r"(?P<rest>(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?))?)?$"
)

_MATCH_NOTHING = (Comparison(operator="<", version="0.0.0-0"),)


class _Partial:
    """A version with possibly missing (or wildcard) trailing parts: ``1``, ``1.2``, ``1.2.x``."""

    __slots__ = ("major", "minor", "patch", "rest")

    def __init__(self, major: int | None, minor: int | None, patch: int | None, rest: str) -> None:
        self.major, self.minor, self.patch, self.rest = major, minor, patch, rest

    @property
    def complete(self) -> bool:
        return self.patch is not None

    def floor(self) -> str:
        """The lowest version the partial covers: missing parts become 0."""
        return f"{self.major or 0}.{self.minor or 0}.{self.patch or 0}{self.rest}"


def _number(text: str | None) -> int | None:
    if text is None or text in _WILDCARDS:
        return None
    return int(text)


def _read_partial(text: str, whole: str) -> _Partial:
    match = _PARTIAL.match(text)
    if match is None:
        raise InvalidConstraintError(whole, f"not a version: {text!r}")
    major, minor, patch = (_number(match.group(name)) for name in ("major", "minor", "patch"))
    # anything after a wildcard is a wildcard too (1.x.3 == 1.x)
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    rest = (match.group("rest") or "") if patch is not None else ""
    return _Partial(major, minor, patch, rest)


def _ge(version: str) -> Comparison:
    return Comparison(operator=">=", version=version)


def _lt(version: str) -> Comparison:
    return Comparison(operator="<", version=version)


def _next_exclusive(partial: _Partial) -> str:
    """Upper bound of an x-range: ``1`` -> ``2.0.0-0``, ``1.2`` -> ``1.3.0-0``."""
    assert partial.major is not None
    if partial.minor is None:
        return f"{partial.major + 1}.0.0-0"
    return f"{partial.major}.{partial.minor + 1}.0-0"


def _desugar(operator: str, partial: _Partial) -> tuple[Comparison, ...]:
    if operator in ("~", "~>"):
        if partial.major is None:
            return ()
        if partial.minor is None:
            return (_ge(partial.floor()), _lt(f"{partial.major + 1}.0.0-0"))
        return (_ge(partial.floor()), _lt(f"{partial.major}.{partial.minor + 1}.0-0"))
    if operator == "^":
        if partial.major is None:
            return ()
        if partial.major != 0 or partial.minor is None:
            return (_ge(partial.floor()), _lt(f"{partial.major + 1}.0.0-0"))
        if partial.minor != 0 or partial.patch is None:
            return (_ge(partial.floor()), _lt(f"0.{partial.minor + 1}.0-0"))
        return (_ge(partial.floor()), _lt(f"0.0.{partial.patch + 1}-0"))
    if partial.major is None:  # *, x, X
        return _MATCH_NOTHING if operator in ("<", ">") else ()
    if partial.complete:
        op: Operator = operator if operator else "="  # type: ignore[assignment]
        return (Comparison(operator=op, version=partial.floor()),)
    # an incomplete version: a range over everything it covers
    if operator in ("", "="):
        return (_ge(partial.floor()), _lt(_next_exclusive(partial)))
    if operator == ">":
        return (_ge(_next_exclusive(partial)[: -len("-0")]),)
    if operator == ">=":
        return (_ge(partial.floor()),)
    if operator == "<":
        return (_lt(f"{partial.floor()}-0"),)
    return (_lt(_next_exclusive(partial)),)  # "<="


def _parse_group(text: str, whole: str) -> tuple[Comparison, ...]:
    hyphen = _HYPHEN.match(text)
    if hyphen:
        low = _read_partial(hyphen.group(1).lstrip("vV="), whole)
        high = _read_partial(hyphen.group(2).lstrip("vV="), whole)
        comparisons: list[Comparison] = []
        if low.major is not None:
            comparisons.append(_ge(low.floor()))
        if high.major is not None:
            if high.complete:
                comparisons.append(Comparison(operator="<=", version=high.floor()))
            else:
                comparisons.append(_lt(_next_exclusive(high)))
        return tuple(comparisons)
    comparisons = []
    for token in _OPERATOR_GAP.sub(r"\1", text).split():
        match = _TOKEN.match(token)
        assert match is not None  # the pattern accepts any token
        operator, version = match.group(1) or "", match.group(2)
        if not version:
            raise InvalidConstraintError(whole, f"operator {operator!r} without a version")
        comparisons.extend(_desugar(operator, _read_partial(version, whole)))
    return tuple(comparisons)


@lru_cache(maxsize=4096)
def parse_npm_range(text: str) -> Constraint:
    """Parse an npm range (``^1.2.3 || >=2.0.0 <2.1.0``); raises InvalidConstraintError."""
    groups = [_parse_group(group, text) for group in text.split("||")]
    if any(not group for group in groups):
        # an empty group (``*``, ``x``, or ``""``) matches every version
        return Constraint()
    return Constraint(any_of=tuple(groups))
