"""The registry rescan's memo (``cli.registry_memo``) against a real registry (Debian's docker-registry on
127.0.0.1): a rescan answered after asking the registry again over ``http.client``, with the same
credentials and challenge answers as the registry client, without requests or pydantic; and never
when the answer would differ: a moved tag, changed or removed credentials, a tag gone, each gives
exactly what the full command line gives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ocibuild import ConfigSpec, build_image, build_index, build_layer, file
from tests.support.registry import DEFAULT_USERS, RunningRegistry, push_image

pytestmark = pytest.mark.integration

_REPORTING_ENTRY = (
    "import sys\nfrom portwarden.cli.entry import run\nsys.argv[0] = 'portwarden'\ntry:\n    run()\n"
    "finally:\n    sys.stderr.write('|loaded: requests %s, pydantic %s'"
    " % ('requests' in sys.modules, 'pydantic' in sys.modules))"
)
_FULL = "import sys; from portwarden.cli.main import run; sys.argv[0] = 'portwarden'; run()"
_FROM_MEMO = "|loaded: requests False, pydantic False"


def _run(code: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def _login(registry: RunningRegistry, env: dict[str, str], password: str | None = None) -> None:
    """Mark the registry insecure (plain HTTP), with its user and ``password`` (None: no credentials)."""
    host = registry.url.split("//", 1)[1]
    ((username, _),) = DEFAULT_USERS.items()
    credentials = ["-u", username, "--password-stdin"] if password is not None else []
    subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", "registry", "add", host, "--insecure", *credentials],
        input=password,
        text=True,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def _image(marker: str, architecture: str = "amd64") -> object:
    status = "".join(
        f"Package: pkg-{i}\nStatus: install ok installed\nArchitecture: all\nVersion: 1.{i}-1\n\n"
        for i in range(8)
    )
    base = build_layer(
        [file("etc/os-release", 'ID=debian\nVERSION_ID="12"\n'), file("var/lib/dpkg/status", status)]
    )
    marked = build_layer([file("app/marker.txt", marker)])
    return build_image([base, marked], ConfigSpec(architecture=architecture))


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PORTWARDEN_")}
    return {**env, "PORTWARDEN_HOME": str(tmp_path / "home")}


def _memos(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "home" / "cache" / "analyses" / "registry-requests").glob("*.json"))


@pytest.mark.parametrize("auth", ["anonymous", "basic", "token"])
def test_a_rescan_is_answered_from_the_memo_after_asking_the_registry(
    auth: str,
    anonymous_registry: RunningRegistry,
    basic_auth_registry: RunningRegistry,
    token_registry: RunningRegistry,
    tmp_path: Path,
) -> None:
    registry = {"anonymous": anonymous_registry, "basic": basic_auth_registry, "token": token_registry}[auth]
    creds = registry.credential() if auth != "anonymous" else None
    if auth == "token":  # an index: the memo replays the index, then the manifest it chose
        target: object = build_index([_image("one"), _image("one", architecture="arm64")])
    else:
        target = _image("one")
    reference = push_image(target, registry, "team/app", "1.0", creds=creds)  # type: ignore[arg-type]
    env = _env(tmp_path)
    _login(registry, env, DEFAULT_USERS["alice"] if auth != "anonymous" else None)
    args = ["sbom", reference, "-o", "json"]
    first = _run(_REPORTING_ENTRY, args, env)  # analyzed and stored: the memo written
    assert first.returncode == 0, first.stderr
    assert len(_memos(tmp_path)) == 1
    if registry.token_issuer is not None:
        registry.token_issuer.reset_requests()
    again = _run(_REPORTING_ENTRY, args, env)
    assert again.returncode == 0 and again.stderr == _FROM_MEMO
    assert again.stdout == first.stdout and '"name": "pkg-3"' in again.stdout
    if registry.token_issuer is not None:  # the replay asked for its token as the client asks
        (asked,) = registry.token_issuer.requests
        assert asked.username == "alice" and asked.scopes == ("repository:team/app:pull",) and asked.granted
    full = _run(_FULL, args, env)
    assert full.returncode == 0 and full.stdout == first.stdout
    # Another request (another format) is another memo.
    other = _run(_REPORTING_ENTRY, [*args[:-1], "cyclonedx-json"], env)
    assert other.returncode == 0 and other.stderr != _FROM_MEMO


def test_a_moved_tag_is_never_answered_from_the_memo(
    anonymous_registry: RunningRegistry, tmp_path: Path
) -> None:
    reference = push_image(_image("before"), anonymous_registry, "team/app", "1.0")  # type: ignore[arg-type]
    env = _env(tmp_path)
    _login(anonymous_registry, env)
    args = ["sbom", reference, "-o", "json"]
    before = _run(_REPORTING_ENTRY, args, env)
    assert before.returncode == 0 and _memos(tmp_path)
    push_image(_image("after"), anonymous_registry, "team/app", "1.0")  # type: ignore[arg-type]
    moved = _run(_REPORTING_ENTRY, args, env)
    assert moved.returncode == 0
    assert moved.stderr != _FROM_MEMO  # resolved the full way
    full = _run(_FULL, args, env)
    assert moved.stdout == full.stdout != before.stdout
    # The memo now names the tag's new image.
    again = _run(_REPORTING_ENTRY, args, env)
    assert again.stderr == _FROM_MEMO and again.stdout == moved.stdout


@pytest.mark.parametrize("change", ["wrong password", "no credentials"])
def test_changed_credentials_give_the_full_command_lines_error(
    basic_auth_registry: RunningRegistry, tmp_path: Path, change: str
) -> None:
    creds = basic_auth_registry.credential()
    reference = push_image(_image("one"), basic_auth_registry, "team/app", "1.0", creds=creds)  # type: ignore[arg-type]
    env = _env(tmp_path)
    _login(basic_auth_registry, env, DEFAULT_USERS["alice"])
    args = ["sbom", reference, "-o", "json"]
    assert _run(_REPORTING_ENTRY, args, env).returncode == 0
    assert _run(_REPORTING_ENTRY, args, env).stderr == _FROM_MEMO
    _login(basic_auth_registry, env, "not-the-password" if change == "wrong password" else None)
    early = _run(_REPORTING_ENTRY, args, env)
    full = _run(_FULL, args, env)
    assert early.returncode == full.returncode == 2
    assert early.stdout == full.stdout == ""
    said, _, loaded = early.stderr.partition("|loaded: ")
    assert said == full.stderr and full.stderr.startswith("error: ") and "alice" not in loaded
    assert ("refused" if change == "wrong password" else "no credentials") in said


def test_a_tag_gone_gives_the_full_command_lines_error(
    anonymous_registry: RunningRegistry, tmp_path: Path
) -> None:
    reference = push_image(_image("one"), anonymous_registry, "team/app", "1.0")  # type: ignore[arg-type]
    env = _env(tmp_path)
    _login(anonymous_registry, env)
    args = ["sbom", reference, "-o", "json"]
    assert _run(_REPORTING_ENTRY, args, env).returncode == 0
    tags = anonymous_registry.storage / "docker" / "registry" / "v2" / "repositories" / "team" / "app"
    shutil.rmtree(tags / "_manifests" / "tags" / "1.0")
    early = _run(_REPORTING_ENTRY, args, env)
    full = _run(_FULL, args, env)
    assert early.returncode == full.returncode == 2
    said, _, _ = early.stderr.partition("|loaded: ")
    assert said == full.stderr and "1.0" in said
