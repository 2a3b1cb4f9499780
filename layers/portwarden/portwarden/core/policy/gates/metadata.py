"""Gate ``metadata``: checks image attributes (size, architecture, OS, distribution, layer count)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any

from pydantic import model_validator

from portwarden.core.errors import TriggerEvaluationError
from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.gates._support import compiled
from portwarden.core.policy.params import LowerEnum, TriggerParams


class Attribute(StrEnum):
    SIZE = "size"
    ARCHITECTURE = "architecture"
    OS_TYPE = "os_type"
    DISTRO = "distro"
    DISTRO_VERSION = "distro_version"
    LIKE_DISTRO = "like_distro"
    LAYER_COUNT = "layer_count"


class AttributeCheck(StrEnum):
    EQ = "="
    NE = "!="
    GT = ">"
    LT = "<"
    GE = ">="
    LE = "<="
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    LIKE = "like"
    NOT_LIKE = "not_like"
    IN = "in"
    NOT_IN = "not_in"


_ORDERING = {AttributeCheck.GT, AttributeCheck.LT, AttributeCheck.GE, AttributeCheck.LE}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_DOTTED = re.compile(r"^\d+(?:\.\d+)*$")


def parse_size(text: str) -> int:
    """Bytes from ``1048576`` or ``1mb`` (1024-based units, as Anchore reads them)."""
    found = _SIZE.match(text)
    if found is None:
        raise ValueError(f"expected a size in bytes or with a kb/mb/gb/tb suffix, got {text!r}")
    return int(float(found.group(1)) * _UNITS[(found.group(2) or "b").lower()])


class AttributeParams(TriggerParams):
    attribute: Annotated[Attribute, LowerEnum]
    check: Annotated[AttributeCheck, LowerEnum]
    value: str | None = None

    @model_validator(mode="after")
    def _value_fits(self) -> AttributeParams:
        if self.check in (AttributeCheck.EXISTS, AttributeCheck.NOT_EXISTS):
            return self
        if self.value is None:
            raise ValueError(f"parameter 'value' is required when check is {self.check.value!r}")
        if self.attribute is Attribute.SIZE and self.check not in (
            AttributeCheck.LIKE,
            AttributeCheck.NOT_LIKE,
            AttributeCheck.IN,
            AttributeCheck.NOT_IN,
        ):
            parse_size(self.value)
        if (
            self.attribute is Attribute.LAYER_COUNT
            and self.check in _ORDERING
            and not self.value.strip().isdigit()
        ):
            raise ValueError(f"parameter 'value' must be an integer for layer_count, got {self.value!r}")
        if self.check in (AttributeCheck.LIKE, AttributeCheck.NOT_LIKE):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"parameter 'value' is not a valid regular expression: {exc}") from exc
        return self


def attribute_value(data: EvaluationInput, attribute: Attribute) -> str | None:
    analysis = data.analysis
    image = analysis.image
    distro = analysis.distro
    if attribute is Attribute.SIZE:
        sizes = [_int(layer.get("uncompressed_size")) or _int(layer.get("size")) for layer in image.layers]
        return str(sum(sizes)) if image.layers else None
    if attribute is Attribute.ARCHITECTURE:
        return _text(image.config.get("architecture"))
    if attribute is Attribute.OS_TYPE:
        return _text(image.config.get("os"))
    if attribute is Attribute.DISTRO:
        return distro.id if distro else None
    if attribute is Attribute.DISTRO_VERSION:
        return distro.version_id if distro else None
    if attribute is Attribute.LIKE_DISTRO:
        return ",".join(distro.id_like) if distro and distro.id_like else None
    count = len(image.layers) or len(image.manifest.get("layers") or ())
    return str(count)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ordered(attribute: Attribute, text: str) -> tuple[int, ...]:
    if attribute is Attribute.SIZE:
        return (parse_size(text),)
    stripped = text.strip()
    if not _DOTTED.match(stripped):
        raise TriggerEvaluationError(f"cannot compare {attribute.value} value {text!r} numerically")
    return tuple(int(part) for part in stripped.split("."))


def _holds(params: AttributeParams, actual: str | None) -> bool:
    check = params.check
    if check is AttributeCheck.EXISTS:
        return actual is not None
    if check is AttributeCheck.NOT_EXISTS:
        return actual is None
    if actual is None:
        return False
    value = params.value or ""
    if check in _ORDERING:
        left, right = _ordered(params.attribute, actual), _ordered(params.attribute, value)
        return {
            AttributeCheck.GT: left > right,
            AttributeCheck.LT: left < right,
            AttributeCheck.GE: left >= right,
            AttributeCheck.LE: left <= right,
        }[check]
    if check in (AttributeCheck.EQ, AttributeCheck.NE):
        if params.attribute is Attribute.SIZE:
            same = parse_size(actual) == parse_size(value)
        else:
            same = actual == value
        return same if check is AttributeCheck.EQ else not same
    if check is AttributeCheck.LIKE:
        return compiled(value).match(actual) is not None
    if check is AttributeCheck.NOT_LIKE:
        return compiled(value).match(actual) is None
    listed = {v.strip() for v in value.split(",")}
    return (actual in listed) if check is AttributeCheck.IN else (actual not in listed)


def attribute(data: EvaluationInput, params: AttributeParams) -> Iterator[TriggerFiring]:
    actual = attribute_value(data, params.attribute)
    if _holds(params, actual):
        yield TriggerFiring(
            message=(
                f"Attribute check for attribute: '{params.attribute.value}' check: '{params.check.value}' "
                f"check_value: '{params.value or ''}' matched image value: '{actual or ''}'"
            )
        )


GATE = Gate(
    name="metadata",
    version=1,
    description="Checks image attributes: size, architecture, OS, distribution and version, layer count.",
    triggers=(
        Trigger("attribute", "Fires when the image attribute meets the check.", AttributeParams, attribute),
    ),
)
