"""Base model settings shared by every value object."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict


class ValueObject(BaseModel):
    """Immutable, strict about unknown fields: a typo in a document is an error, not silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


_Model = TypeVar("_Model", bound=BaseModel)
_set_attribute = object.__setattr__
# Classes checked once, with their number of fields (``cls.model_fields`` is a descriptor that costs
# more than the rest of an instance's construction).
_FIELD_COUNTS: dict[type[BaseModel], int] = {}


def _checked_field_count(cls: type[BaseModel]) -> int:
    """The number of fields of ``cls``, once it is known to be a plain model ``construct_complete``
    builds correctly (checked once per class)."""
    field_count = _FIELD_COUNTS.get(cls)
    if field_count is None:
        fields = cls.model_fields
        if (
            cls.__pydantic_post_init__
            or cls.__new__ is not object.__new__
            or cls.__pydantic_root_model__
            or cls.__private_attributes__
            or cls.model_config.get("extra") == "allow"
            or any(f.alias is not None or f.validation_alias is not None for f in fields.values())
        ):
            raise TypeError(f"{cls.__name__} cannot be built by construct_complete")
        field_count = _FIELD_COUNTS[cls] = len(fields)
    return field_count


def construct_complete(cls: type[_Model], values: dict[str, Any], fields_set: set[str]) -> _Model:
    """An instance from ``values`` that holds every field (in the model's field order: serialization
    follows the dictionary's), already validated: no validation, no copy.

    What ``model_construct`` leaves when it is given every field of a plain model (no aliases, no
    private attributes, no ``model_post_init``, extra fields forbidden), without its per-field loop:
    the inventory of a large image makes hundreds of thousands of these, and that loop was a tenth of
    a cold analysis. ``fields_set`` is shared by every instance (``model_copy`` copies it first). The
    preconditions are checked once per class; tests compare the result with ``model_construct``'s.
    """
    if len(values) != _checked_field_count(cls):
        raise ValueError(f"{cls.__name__} needs every field, got {sorted(values)}")
    instance = cls.__new__(cls)
    _set_attribute(instance, "__dict__", values)
    _set_attribute(instance, "__pydantic_fields_set__", fields_set)
    _set_attribute(instance, "__pydantic_extra__", None)
    _set_attribute(instance, "__pydantic_private__", None)
    return instance


def construct_all(cls: type[_Model], rows: Iterable[dict[str, Any]], fields_set: set[str]) -> list[_Model]:
    """``construct_complete`` over many rows (the same instances), without a call per row: an
    image's inventory and squashed records are tens of thousands of them."""
    field_count = _checked_field_count(cls)
    new = object.__new__
    built: list[_Model] = []
    append = built.append
    for values in rows:
        if len(values) != field_count:
            raise ValueError(f"{cls.__name__} needs every field, got {sorted(values)}")
        instance = new(cls)
        _set_attribute(instance, "__dict__", values)
        _set_attribute(instance, "__pydantic_fields_set__", fields_set)
        _set_attribute(instance, "__pydantic_extra__", None)
        _set_attribute(instance, "__pydantic_private__", None)
        append(instance)
    return built
