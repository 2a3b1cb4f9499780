"""The logger's settings, read at import without pydantic-settings, agree with the settings models."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from portwarden.runtime.observability_settings import ObservabilityFields
from portwarden.runtime.settings import ObservabilitySettings

ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "portwarden-api",
    "powertools_metrics_namespace": "PortwardenStaging",  # any case, as the settings models read it
    "LOG_LEVEL": "DEBUG",
    "AWS_REGION": "us-east-1",  # one of the many unrelated variables Lambda sets
}


def test_the_fields_read_from_an_environment_are_those_the_settings_model_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)

    read = ObservabilityFields.from_environment(ENVIRONMENT)

    assert (read.service_name, read.metrics_namespace, read.log_level) == (
        "portwarden-api",
        "PortwardenStaging",
        "DEBUG",
    )
    assert read.model_dump() == ObservabilitySettings().model_dump()


def test_the_defaults_apply_when_the_variables_are_absent() -> None:
    read = ObservabilityFields.from_environment({})

    assert (read.service_name, read.metrics_namespace, read.log_level) == ("portwarden", "Portwarden", "INFO")


@pytest.mark.parametrize(("variable", "value"), [("LOG_LEVEL", "LOUD"), ("POWERTOOLS_SERVICE_NAME", "")])
def test_a_bad_value_fails_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValidationError, match=variable):
        ObservabilityFields.from_environment({variable: value})
