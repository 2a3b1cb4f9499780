"""Local settings come from PORTWARDEN_* variables (any case), the constructor winning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from portwarden.cli.settings import LocalSettings
from portwarden.core.analyzers.base import DEFAULT_RETRIEVE_FILES


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PORTWARDEN_HOME",
        "DOCKER_CONFIG",
        "PORTWARDEN_RETRIEVE_FILES",
        "PORTWARDEN_IMAGE_READ_DEADLINE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_without_environment() -> None:
    settings = LocalSettings()
    assert settings.home == Path.home() / ".portwarden"
    assert settings.retrieve_files == DEFAULT_RETRIEVE_FILES
    assert settings.docker_config is None
    assert settings.image_read_deadline == 3600.0


def test_environment_fills_fields(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("portwarden_image_read_deadline", "90")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("PORTWARDEN_RETRIEVE_FILES", "/etc/passwd, /etc/group /etc/hosts")
    settings = LocalSettings()
    assert settings.home == tmp_path / "home"
    assert settings.image_read_deadline == 90.0
    assert settings.docker_config_file == tmp_path / "docker" / "config.json"
    assert settings.retrieve_files == ("/etc/passwd", "/etc/group", "/etc/hosts")


def test_an_empty_retrieve_list_keeps_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTWARDEN_RETRIEVE_FILES", "")
    assert LocalSettings().retrieve_files == ()


def test_the_constructor_wins_and_bad_values_are_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PORTWARDEN_HOME", "/nowhere")
    assert LocalSettings(home=tmp_path).home == tmp_path
    monkeypatch.setenv("PORTWARDEN_IMAGE_READ_DEADLINE", "-1")
    with pytest.raises(ValidationError, match="image_read_deadline"):
        LocalSettings()


def test_settings_load_no_settings_library() -> None:
    probe = "import sys, portwarden.cli.settings; print('pydantic_settings' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
