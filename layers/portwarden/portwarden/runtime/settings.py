"""Settings parsed from the Lambda environment, once, at the edge.

Each model validates the variables its handler needs and nothing else, so a misconfigured stack
fails at cold start with a message naming the variable instead of deep inside a request. Models are
composed from small mixins (observability, storage) the way the template composes environments.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class _EnvSettings(BaseSettings):
    """Frozen, case-insensitive, and tolerant of the many unrelated variables Lambda sets."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)


class ObservabilitySettings(_EnvSettings):
    """What the Powertools logger, tracer and metrics are configured with.

    The variable names are Powertools' own, so the same template values drive both this model and
    any Powertools utility that reads the environment directly.
    """

    service_name: str = Field(default="portwarden", min_length=1, validation_alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field(
        default="Portwarden", min_length=1, validation_alias="POWERTOOLS_METRICS_NAMESPACE"
    )
    log_level: LogLevel = Field(default="INFO", validation_alias="LOG_LEVEL")


class StorageSettings(_EnvSettings):
    """Where persistent state lives; ``None`` while the stack does not define the resource."""

    table_name: str | None = Field(default=None, min_length=1, validation_alias="PORTWARDEN_TABLE_NAME")
    bucket_name: str | None = Field(default=None, min_length=3, validation_alias="PORTWARDEN_BUCKET_NAME")


class ApiSettings(ObservabilitySettings, StorageSettings):
    """Environment of the API function."""

    stage: str = Field(default="dev", pattern=r"^[a-z][a-z0-9-]{0,15}$", validation_alias="PORTWARDEN_STAGE")
