"""Local settings, read from the environment once, at the edge."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LocalSettings(BaseSettings):
    """``PORTWARDEN_HOME`` holds all local state (store, caches, credentials, vulnerability database)."""

    model_config = SettingsConfigDict(env_prefix="PORTWARDEN_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".portwarden")
    docker_config: Path | None = Field(default=None, validation_alias="DOCKER_CONFIG")

    @property
    def work_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def docker_config_file(self) -> Path:
        base = self.docker_config if self.docker_config is not None else Path.home() / ".docker"
        return base / "config.json"
