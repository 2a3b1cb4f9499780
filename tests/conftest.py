"""Shared test settings: repository paths, and an environment that can never reach real AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Test data copied from the reference material (conformance vectors, upstream feed samples, policies),
# with its licence notices beside it: the suite never reads anything outside the repository.
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
EVENTS_DIR = REPO_ROOT / "events"


def fixture_files(directory: Path, pattern: str, *, recursive: bool = False) -> list[Path]:
    """The fixture files matching ``pattern``; finding none is an error, never an empty parametrization."""
    found = sorted(directory.rglob(pattern) if recursive else directory.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no fixture matches {pattern!r} under {directory}: the test data is missing")
    return found


def load_event(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS_DIR / relative).read_text())
    return data


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Fake credentials and region: a test that forgot a moto mock fails instead of calling AWS.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path_factory.mktemp("portwarden-home")))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path_factory.mktemp("docker-config")))
