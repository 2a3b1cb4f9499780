"""Frozen result models built from values that already have their field types, without validation.

Matching builds one Match, MatchDetail and MatchFix per hit, from rows the database typed; running
pydantic's validation on each costs more than the rest of matching. These helpers make exactly the
object validation would make (tests compare them), and are used only for values the matcher built.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

Model = TypeVar("Model", bound=BaseModel)
set_attribute = object.__setattr__
new_object = object.__new__
# Per model: the defaults of its optional fields (every default here is immutable, so sharing is safe).
TRAILING_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}


def trusted(model: type[Model], values: dict[str, Any]) -> Model:
    """An instance of ``model`` from values that already have the field types, without validation.

    The same object ``model(**values)`` makes (same fields, same fields-set, frozen), as pydantic's
    ``model_construct`` makes it, minus its per-field bookkeeping, which costs more than validating.
    ``values`` must name the fields in declaration order; omitted trailing fields take their default.
    Only for values the matcher itself built from typed rows: anything else goes through validation.
    """
    instance = new_object(model)
    fields_set = set(values)
    defaults = TRAILING_DEFAULTS.get(model)
    if defaults is None:
        defaults = TRAILING_DEFAULTS[model] = {
            name: info.get_default(call_default_factory=True)
            for name, info in model.model_fields.items()
            if not info.is_required()
        }
    if len(values) < len(model.__pydantic_fields__):
        for name, default in defaults.items():
            if name not in values:
                values[name] = default
    set_attribute(instance, "__dict__", values)
    set_attribute(instance, "__pydantic_fields_set__", fields_set)
    set_attribute(instance, "__pydantic_extra__", None)
    set_attribute(instance, "__pydantic_private__", None)
    return instance


# Per model: the fields-set of an instance that sets every field. One set serves every such instance:
# pydantic only ever adds names to a fields-set (all already in it) and copies it before a model_copy
# updates it, so sharing is invisible, and it spares a set (and the garbage collector's look at it) per
# match.
ALL_FIELDS_SET: dict[type[BaseModel], set[str]] = {}


def all_fields_set(model: type[BaseModel]) -> set[str]:
    fields_set = ALL_FIELDS_SET.get(model)
    if fields_set is None:
        fields_set = ALL_FIELDS_SET[model] = set(model.__pydantic_fields__)
    return fields_set


def complete(model: type[Model], values: dict[str, Any]) -> Model:
    """:func:`trusted` for ``values`` that name every field of ``model``, in declaration order."""
    instance = new_object(model)
    fields_set = all_fields_set(model)
    set_attribute(instance, "__dict__", values)
    set_attribute(instance, "__pydantic_fields_set__", fields_set)
    set_attribute(instance, "__pydantic_extra__", None)
    set_attribute(instance, "__pydantic_private__", None)
    return instance
