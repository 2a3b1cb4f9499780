"""Local settings, read from the environment once, at the edge.

A plain pydantic model that fills the fields it is not given from ``PORTWARDEN_<FIELD>`` variables
(names in any case; ``DOCKER_CONFIG`` for ``docker_config``), as pydantic-settings would: importing
pydantic-settings costs about 0.1 s of CPU (it loads asyncio), which every command paid at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from portwarden.cli.environment import ENV_PREFIX, default_home, settings_environment
from portwarden.core.analyzers.base import DEFAULT_RETRIEVE_FILES

if TYPE_CHECKING:
    from portwarden.core.image.limits import SafetyLimits


class LocalSettings(BaseModel):
    """``PORTWARDEN_HOME`` holds all local state (store, caches, credentials, vulnerability database).

    ``PORTWARDEN_RETRIEVE_FILES`` (comma- or space-separated paths) replaces the files every analysis
    keeps the content of (default ``/etc/passwd``); empty keeps none. ``--retrieve`` adds to them.
    """

    model_config = ConfigDict(extra="ignore")

    home: Path = Field(default_factory=default_home)
    docker_config: Path | None = Field(default=None, validation_alias="DOCKER_CONFIG")
    # Wall-clock bounds for registry reads (docs/image-reading.md): one HTTP request, one image.
    registry_request_deadline: float = Field(default=120.0, gt=0)
    image_read_deadline: float = Field(default=3600.0, gt=0)
    retrieve_files: tuple[str, ...] = DEFAULT_RETRIEVE_FILES

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        """Fields not given to the constructor come from the environment (the constructor wins)."""
        values = dict(data) if isinstance(data, dict) else {}
        environment = settings_environment()
        for name, field in cls.model_fields.items():
            alias = field.validation_alias if isinstance(field.validation_alias, str) else None
            key = alias or name
            variable = (alias or f"{ENV_PREFIX}{name}").upper()
            if key not in values and variable in environment:
                values[key] = environment[variable]
        return values

    @field_validator("retrieve_files", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item for item in value.replace(",", " ").split() if item)
        return value

    def safety_limits(self) -> SafetyLimits:
        """The limits every image read of the command line runs under (part of the result cache key)."""
        from portwarden.core.image.limits import SafetyLimits

        return SafetyLimits(max_image_read_seconds=self.image_read_deadline)

    @property
    def work_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def docker_config_file(self) -> Path:
        base = self.docker_config if self.docker_config is not None else Path.home() / ".docker"
        return base / "config.json"
