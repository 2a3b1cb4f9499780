"""What the Powertools logger, tracer and metrics are configured with, read without pydantic-settings.

Every handler configures its logger and metrics when it is imported, so this model is read at each
cold start. pydantic-settings (with asyncio, which it imports, and python-dotenv) costs about 35 ms
to import; a handler that reads its other settings on its first invocation need not pay that at
import for three variables. ``runtime.settings`` composes these fields into every function's
settings model (``ObservabilitySettings``), so they are declared once, here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ObservabilityFields(BaseModel):
    """The variable names are Powertools' own, so the same template values drive both this model and
    any Powertools utility that reads the environment directly."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    service_name: str = Field(default="portwarden", min_length=1, validation_alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field(
        default="Portwarden", min_length=1, validation_alias="POWERTOOLS_METRICS_NAMESPACE"
    )
    log_level: LogLevel = Field(default="INFO", validation_alias="LOG_LEVEL")

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> ObservabilityFields:
        """The fields read from ``environment`` (default: the process's), names matched in any case
        as the settings models match them."""
        environment = os.environ if environment is None else environment
        return cls.model_validate({name.upper(): value for name, value in environment.items()})
