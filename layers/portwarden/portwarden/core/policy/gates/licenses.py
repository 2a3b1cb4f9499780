"""Gate ``licenses``: checks the licenses declared by the image's packages."""

from __future__ import annotations

from collections.abc import Iterator

from portwarden.core.model.policy import EvaluationInput
from portwarden.core.policy.gate import Gate, Trigger, TriggerFiring
from portwarden.core.policy.params import CsvStrings, TriggerParams


class LicensesParams(TriggerParams):
    licenses: CsvStrings


def blacklist_exact_match(data: EvaluationInput, params: LicensesParams) -> Iterator[TriggerFiring]:
    denied = set(params.licenses)
    for package in data.analysis.packages:
        for license_name in package.licenses:
            if license_name in denied:
                yield TriggerFiring(
                    message=f"LICENSE {license_name} found for package ({package.name}-{package.version})"
                )


def blacklist_partial_match(data: EvaluationInput, params: LicensesParams) -> Iterator[TriggerFiring]:
    for package in data.analysis.packages:
        for license_name in package.licenses:
            part = next((p for p in params.licenses if p in license_name), None)
            if part is not None:
                yield TriggerFiring(
                    message=(
                        f"LICENSE {license_name} found for package ({package.name}-{package.version}), "
                        f"matching '{part}'"
                    )
                )


GATE = Gate(
    name="licenses",
    version=1,
    description="Checks the licenses declared by the image's packages.",
    triggers=(
        Trigger(
            "blacklist_exact_match",
            "Fires per package declaring one of the listed licenses.",
            LicensesParams,
            blacklist_exact_match,
        ),
        Trigger(
            "blacklist_partial_match",
            "Fires per package declaring a license that contains one of the listed strings.",
            LicensesParams,
            blacklist_partial_match,
        ),
    ),
)
