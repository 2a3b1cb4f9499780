"""The CLI contract of `portwarden image inspect`, `files` and `registry` (JSON shape, exit codes)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ocibuild import ConfigSpec, build_image, build_layer, file, symlink, write_oci_layout


def run_cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    image = build_image(
        [
            build_layer(
                [
                    file("etc/os-release", "ID=debian\n"),
                    file("usr/bin/su", "x", mode=0o4755),
                    symlink("bin", "usr/bin"),
                ]
            )
        ],
        ConfigSpec(entrypoint=("/bin/app",), working_dir="/srv", env=("A=1",)),
    )
    return write_oci_layout(tmp_path / "layout", image)


def test_files_json_contract(layout: Path) -> None:
    result = run_cli("files", f"oci-dir:{layout}", "-o", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"source", "files", "warnings"}
    by_path = {f["path"]: f for f in document["files"]}
    su = by_path["/usr/bin/su"]
    assert set(su) == {"path", "type", "mode", "uid", "gid", "size", "sha256", "link_target", "layer_digest"}
    assert su["mode"] == "4755" and su["type"] == "file" and len(su["sha256"]) == 64
    assert by_path["/bin"]["link_target"] == "usr/bin"
    assert document["source"]["type"] == "oci-dir"


def test_inspect_json_contract(layout: Path) -> None:
    result = run_cli("image", "inspect", f"oci-dir:{layout}", "-o", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    for key in ("manifest_digest", "config_digest", "platform", "layers", "config"):
        assert key in document
    assert set(document["layers"][0]) == {"digest", "size", "media_type"}
    config = document["config"]
    assert (
        config["entrypoint"] == ["/bin/app"] and config["working_dir"] == "/srv" and config["env"] == ["A=1"]
    )
    assert {"cmd", "user", "exposed_ports", "labels", "history"} <= set(config)


def test_table_output_is_readable(layout: Path) -> None:
    result = run_cli("files", f"oci-dir:{layout}")
    assert result.returncode == 0
    assert "/usr/bin/su" in result.stdout and "4755" in result.stdout


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    result = run_cli("files", f"oci-dir:{tmp_path / 'missing'}")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    debug = run_cli("--debug", "files", f"oci-dir:{tmp_path / 'missing'}")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_invalid_reference_is_an_error() -> None:
    result = run_cli("image", "inspect", "Not A Reference")
    assert result.returncode == 2
    assert "invalid" in result.stderr


def test_registry_credentials_are_stored_privately_and_never_printed(tmp_path: Path) -> None:
    env = {"PORTWARDEN_HOME": str(tmp_path / "home")}
    added = run_cli(
        "registry", "add", "ghcr.io", "--username", "me", "--password-stdin", stdin="s3cr3t-token\n", env=env
    )
    assert added.returncode == 0, added.stderr
    run_cli("registry", "add", "127.0.0.1:5000", "--insecure", env=env)
    listed = run_cli("registry", "list", "-o", "json", env=env)
    assert "s3cr3t-token" not in listed.stdout + listed.stderr + added.stdout
    entries = {e["host"]: e for e in json.loads(listed.stdout)}
    assert entries["ghcr.io"]["username"] == "me"
    assert entries["127.0.0.1:5000"]["insecure"] is True
    stored = next((tmp_path / "home").glob("registries.json"))
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert run_cli("registry", "delete", "ghcr.io", env=env).returncode == 0
    assert run_cli("registry", "delete", "ghcr.io", env=env).returncode == 2


def test_exit_codes_raised_by_commands_reach_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from portwarden.cli import main

    @main.app.command("exit-with-one", hidden=True)
    def exit_with_one() -> None:
        raise typer.Exit(1)

    monkeypatch.setattr(sys, "argv", ["portwarden", "exit-with-one"])
    with pytest.raises(SystemExit) as caught:
        main.run()
    assert caught.value.code == 1


def test_files_table_shows_hostile_names_literally_and_in_full(tmp_path: Path) -> None:
    long_name = "opt/" + "very-long-directory-name/" * 6 + "file-with-a-long-name.jar"
    image = build_image(
        [
            build_layer(
                [
                    file("etc/[red]x[/red]", "x"),
                    file("etc/:thumbs_up:", "x"),
                    file("etc/esc\x1b[31mred", "x"),
                    file(long_name, "x"),
                ]
            )
        ],
        ConfigSpec(),
    )
    layout_dir = write_oci_layout(tmp_path / "hostile", image)
    result = run_cli("files", f"oci-dir:{layout_dir}", env={"FORCE_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    assert "/etc/[red]x[/red]" in result.stdout and "/etc/:thumbs_up:" in result.stdout
    assert "👍" not in result.stdout
    assert "/etc/esc\\x1b[31mred" in result.stdout and "\x1b[31m" not in result.stdout
    assert "/" + long_name in result.stdout  # piped: no width limit, nothing cut


def test_inspect_table_shows_config_values_literally(tmp_path: Path) -> None:
    image = build_image(
        [build_layer([file("a", "x")])],
        ConfigSpec(entrypoint=("/bin/[bold]app[/bold]", ":thumbs_up:"), working_dir="/srv/[red]"),
    )
    layout_dir = write_oci_layout(tmp_path / "cfg", image)
    result = run_cli("image", "inspect", f"oci-dir:{layout_dir}")
    assert result.returncode == 0, result.stderr
    assert "/bin/[bold]app[/bold] :thumbs_up:" in result.stdout and "/srv/[red]" in result.stdout
    assert "…" not in result.stdout


def test_a_platform_the_image_lacks_exits_2_naming_the_platform_it_has(layout: Path, tmp_path: Path) -> None:
    result = run_cli(
        "image",
        "inspect",
        f"oci-dir:{layout}",
        "--platform",
        "linux/arm64",
        env={"PORTWARDEN_HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "linux/amd64 only" in result.stderr and "linux/arm64" in result.stderr
