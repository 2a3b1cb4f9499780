"""Parameter types for trigger parameter models.

Anchore bundles carry every parameter value as a string: booleans are ``"true"``/``"false"``,
numbers are ``"30"`` or ``"7.5"``, lists are comma-separated. These annotated types accept those
strings (and native JSON values) and validate them; each trigger declares a pydantic model built from
them, whose field names are the public parameter names.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


class TriggerParams(BaseModel):
    """Base of every trigger's parameter model: immutable, unknown parameters rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class NoParams(TriggerParams):
    """For triggers that take no parameters."""


def _parse_bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _non_empty(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if not values:
        raise ValueError("expected at least one value")
    return values


def _compile(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
    return value


def _strip_lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _strip_upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


Bool = Annotated[bool, BeforeValidator(_parse_bool)]
CsvStrings = Annotated[tuple[str, ...], BeforeValidator(_split_csv), AfterValidator(_non_empty)]
CsvInts = Annotated[tuple[int, ...], BeforeValidator(_split_csv), AfterValidator(_non_empty)]
Regex = Annotated[str, AfterValidator(_compile)]
# Enum values written in lower case (severity names, check names) match whatever case the bundle uses.
LowerEnum = BeforeValidator(_strip_lower)
UpperEnum = BeforeValidator(_strip_upper)


class NumericComparison(StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    GT = ">"
    LE = "<="
    GE = ">="

    def holds(self, left: float, right: float) -> bool:
        if self is NumericComparison.EQ:
            return left == right
        if self is NumericComparison.NE:
            return left != right
        if self is NumericComparison.LT:
            return left < right
        if self is NumericComparison.GT:
            return left > right
        if self is NumericComparison.LE:
            return left <= right
        return left >= right


Comparison = Annotated[NumericComparison, BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)]


class ListType(StrEnum):
    """How a list parameter is read: the values allowed (whitelist) or the values refused (blacklist)."""

    WHITELIST = "whitelist"
    BLACKLIST = "blacklist"


def _list_type(value: Any) -> Any:
    lowered = _strip_lower(value)
    # The newer spellings name the same two behaviours.
    return {"allowlist": "whitelist", "denylist": "blacklist"}.get(lowered, lowered)


ListTypeParam = Annotated[ListType, BeforeValidator(_list_type)]
