"""Local settings, read from the environment once, at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from portwarden.core.analyzers.base import DEFAULT_RETRIEVE_FILES


class LocalSettings(BaseSettings):
    """``PORTWARDEN_HOME`` holds all local state (store, caches, credentials, vulnerability database).

    ``PORTWARDEN_RETRIEVE_FILES`` (comma- or space-separated paths) replaces the files every analysis
    keeps the content of (default ``/etc/passwd``); empty keeps none. ``--retrieve`` adds to them.
    """

    model_config = SettingsConfigDict(env_prefix="PORTWARDEN_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".portwarden")
    docker_config: Path | None = Field(default=None, validation_alias="DOCKER_CONFIG")
    # Wall-clock bounds for registry reads (docs/image-reading.md): one HTTP request, one image.
    registry_request_deadline: float = Field(default=120.0, gt=0)
    image_read_deadline: float = Field(default=3600.0, gt=0)
    retrieve_files: Annotated[tuple[str, ...], NoDecode] = DEFAULT_RETRIEVE_FILES

    @field_validator("retrieve_files", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item for item in value.replace(",", " ").split() if item)
        return value

    @property
    def work_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def docker_config_file(self) -> Path:
        base = self.docker_config if self.docker_config is not None else Path.home() / ".docker"
        return base / "config.json"
