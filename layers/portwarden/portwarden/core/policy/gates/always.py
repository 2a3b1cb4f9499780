"""Gate ``always``: fires unconditionally (to test mappings, or to block images outright)."""

from __future__ import annotations

from collections.abc import Iterator

from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.params import NoParams


def always(_data: EvaluationInput, _params: NoParams) -> Iterator[TriggerFiring]:
    yield TriggerFiring(message="always")


GATE = Gate(
    name="always",
    version=1,
    description="Fires on every image: useful to test mappings or to block images outright.",
    triggers=(Trigger("always", "Fires unconditionally.", NoParams, always),),
)
