"""The gate plugin contract: a gate is a named, versioned set of triggers; a trigger is a parameter
model and a pure function of (EvaluationInput, params) that yields firings.

Trigger and parameter names are public contract (Anchore's spelling): bundles name them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from portwarden.core.model.base import ValueObject
from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.params import TriggerParams

P = TypeVar("P", bound=TriggerParams)


class TriggerFiring(ValueObject):
    """One occurrence of a trigger condition.

    ``trigger_id`` is the identity allowlist items match. Left out, the engine derives Anchore's
    default: the md5 of gate name + trigger name + message (so messages must stay stable). With
    ``scoped_to_rule`` the engine prefixes the rule id (``<rule_id>+<trigger_id>``), as Anchore does
    for retrieved-file checks.
    """

    message: str
    trigger_id: str | None = None
    scoped_to_rule: bool = False


@dataclass(frozen=True)
class Trigger(Generic[P]):
    name: str
    description: str
    params: type[P]
    evaluate: Callable[[EvaluationInput, P], Iterable[TriggerFiring]]

    def run(self, data: EvaluationInput, params: TriggerParams) -> list[TriggerFiring]:
        if not isinstance(params, self.params):
            raise TypeError(
                f"trigger {self.name} expects {self.params.__name__}, got {type(params).__name__}"
            )
        return list(self.evaluate(data, params))


@dataclass(frozen=True)
class Gate:
    name: str
    version: int
    description: str
    triggers: tuple[Trigger[Any], ...]
    _by_name: Mapping[str, Trigger[Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Trigger[Any]] = {}
        for trigger in self.triggers:
            key = trigger.name.lower()
            if key in by_name:
                raise ValueError(f"gate {self.name}: duplicate trigger {trigger.name!r}")
            by_name[key] = trigger
        object.__setattr__(self, "_by_name", by_name)

    def trigger(self, name: str) -> Trigger[Any] | None:
        """The trigger of that name, matched case-insensitively as Anchore does."""
        return self._by_name.get(name.strip().lower())

    @property
    def trigger_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.triggers)
