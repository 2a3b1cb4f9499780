"""``portwarden sbom REGISTRY-IMAGE -o FORMAT`` answered by the console script without building the
command line: the same bytes, errors and exit codes as the full command line, against a real registry
(Debian's docker-registry on 127.0.0.1) with basic authentication.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ocibuild import build_image, build_layer, file
from tests.support.registry import DEFAULT_USERS, RunningRegistry, push_image

pytestmark = pytest.mark.integration

STATUS = "".join(
    f"Package: pkg-{i}\nStatus: install ok installed\nArchitecture: all\nVersion: 1.{i}-1\n\n"
    for i in range(10)
)

_REPORTING_ENTRY = (
    "import sys\nfrom portwarden.cli.entry import run\nsys.argv[0] = 'portwarden'\ntry:\n    run()\n"
    "finally:\n    sys.stderr.write('|command line built: %s' % ('portwarden.cli.main' in sys.modules))"
)
_FULL = "import sys; from portwarden.cli.main import run; sys.argv[0] = 'portwarden'; run()"


def _run(code: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def _login(registry: RunningRegistry, env: dict[str, str], *, with_credentials: bool = True) -> None:
    """Mark the registry insecure (plain HTTP), with its user's credentials or none."""
    host = registry.url.split("//", 1)[1]
    ((username, password),) = DEFAULT_USERS.items()
    credentials = ["-u", username, "--password-stdin"] if with_credentials else []
    subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", "registry", "add", host, "--insecure", *credentials],
        input=password if with_credentials else None,
        text=True,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def reference(basic_auth_registry: RunningRegistry) -> str:
    base = build_layer(
        [file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'), file("var/lib/dpkg/status", STATUS)]
    )
    return push_image(build_image([base]), basic_auth_registry, "team/app", "1.0")  # type: ignore[arg-type]


def test_a_registry_image_is_analyzed_and_rescanned_without_the_command_line(
    basic_auth_registry: RunningRegistry, reference: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}
    _login(basic_auth_registry, env)
    args = ["sbom", reference, "-o", "cyclonedx-json"]
    first = _run(_REPORTING_ENTRY, args, env)
    assert first.returncode == 0, first.stderr
    assert first.stderr.endswith("|command line built: False")
    again = _run(_REPORTING_ENTRY, args, env)  # the stored document, after resolving the tag
    assert again.returncode == 0 and again.stderr == "|command line built: False"
    full = _run(_FULL, args, env)
    assert full.returncode == 0
    assert again.stdout == full.stdout == first.stdout
    assert '"name": "pkg-3"' in again.stdout


def test_a_registry_image_without_the_cache_is_the_command_lines(
    basic_auth_registry: RunningRegistry, reference: str, tmp_path: Path
) -> None:
    """``--no-cache``: analyzed by the console script as the command analyzes it, nothing stored."""
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}
    _login(basic_auth_registry, env)
    args = ["sbom", reference, "-o", "json", "--no-cache"]
    early = _run(_REPORTING_ENTRY, args, env)
    full = _run(_FULL, args, env)
    assert early.returncode == full.returncode == 0, early.stderr
    assert early.stderr == full.stderr + "|command line built: False"
    timeless = [json.loads(run.stdout) for run in (early, full)]
    for document in timeless:
        del document["analyzed_at"]
    assert timeless[0] == timeless[1] and '"name": "pkg-3"' in early.stdout
    assert not (tmp_path / "home" / "cache").exists()


@pytest.mark.parametrize("no_cache", [False, True], ids=["cached", "no-cache"])
@pytest.mark.parametrize("problem", ["no credentials", "missing tag"])
def test_a_registry_error_is_the_full_command_lines(
    basic_auth_registry: RunningRegistry, reference: str, tmp_path: Path, problem: str, no_cache: bool
) -> None:
    env = {**os.environ, "PORTWARDEN_HOME": str(tmp_path / "home")}
    _login(basic_auth_registry, env, with_credentials=problem != "no credentials")
    if problem == "missing tag":
        reference = reference.rsplit(":", 1)[0] + ":9.9"
    args = ["sbom", reference, "-o", "json", *(["--no-cache"] if no_cache else [])]
    early = _run(_REPORTING_ENTRY, args, env)
    full = _run(_FULL, args, env)
    assert early.returncode == full.returncode == 2
    assert early.stdout == full.stdout == ""
    # Reported by the console script itself: the registry is not asked a second time.
    assert early.stderr == full.stderr + "|command line built: False"
    assert full.stderr.startswith("error: ")
