"""Every command's ``--help``, and usage errors that name the option and what it accepts (exit 2)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from portwarden.cli import main


def command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the app, found by walking it: a new command is covered by itself."""
    root = typer.main.get_command(main.app)
    found: list[tuple[str, ...]] = [()]

    def walk(command: object, path: tuple[str, ...]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if getattr(sub, "hidden", False):
                continue
            found.append((*path, name))
            walk(sub, (*path, name))

    walk(root, ())
    return found


def run_in_process(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["portwarden", *argv])
    with pytest.raises(SystemExit) as exited:
        main.run()
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_the_walk_finds_the_commands_users_know() -> None:
    paths = {" ".join(path) for path in command_paths()}
    assert {"scan", "files", "sbom", "image inspect", "image list", "policy eval", "feeds sync"} <= paths
    assert {"registry add", "policy validate"} <= paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda path: " ".join(path) or "portwarden")
def test_help_works_and_shows_every_help_text_literally(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_in_process([*path, "--help"], monkeypatch, capsys)
    assert code == 0, err
    assert err == ""
    command = typer.main.get_command(main.app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    assert out.startswith("Usage: portwarden")
    # Every parameter's help is printed as written: brackets and emoji codes are not markup.
    for param in command.params:
        help_text = getattr(param, "help", None)
        if help_text:
            assert squeezed(help_text) in squeezed(out), (param.name, help_text)


def test_platform_help_shows_its_brackets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["scan"], ["files"], ["sbom"], ["image", "inspect"], ["policy", "eval"]):
        code, out, _ = run_in_process([*command, "--help"], monkeypatch, capsys)
        assert code == 0 and "OS/ARCH[/VARIANT]" in out


@pytest.mark.parametrize(
    ("argv", "option", "accepted"),
    [
        (
            ["scan", "oci-dir:x", "-o", "bogus"],
            "'--output' / '-o'",
            "'table', 'json', 'sarif', 'cyclonedx-json'",
        ),
        (["scan", "oci-dir:x", "--fail-on", "severe"], "'--fail-on'", "'low', 'medium', 'high', 'critical'"),
        (["files", "oci-dir:x", "-o", "yaml"], "'--output' / '-o'", "'json', 'table'"),
        (["sbom", "oci-dir:x", "-o", "xml"], "'--output' / '-o'", "'cyclonedx-json', 'spdx-json'"),
        (["policy", "eval", "oci-dir:x", "-o", "csv"], "'--output' / '-o'", "'json', 'table'"),
        (["image", "list", "-o", "csv"], "'--output' / '-o'", "'json', 'table'"),
        (["feeds", "sync", "--source", "osv"], "--source", "osv, debian, alpine, nvd, kev, epss"),
        (["sbom", "oci-dir:x", "--secret", "novalue"], "--secret", "NAME=REGEX"),
    ],
)
def test_usage_errors_name_the_option_and_the_accepted_values(
    argv: list[str],
    option: str,
    accepted: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path / "home"))
    code, out, err = run_in_process(argv, monkeypatch, capsys)
    assert code == 2
    assert out == ""
    first = err.splitlines()[0]
    assert first.startswith("error: invalid value for ") and option in first and accepted in first, err
    assert "unexpected error" not in err and "BadParameter" not in err and "Value error" not in err
    assert f"Try 'portwarden {argv[0]}" in err


def test_fail_on_accepts_any_case(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTWARDEN_HOME", "/nonexistent/portwarden-home")
    code, _, err = run_in_process(["scan", "oci-dir:x", "--fail-on", "HIGH"], monkeypatch, capsys)
    # Past option parsing: the scan itself stops on the missing database, not on --fail-on.
    assert code == 2 and "--fail-on" not in err and "feeds sync" in err


def test_unknown_options_and_missing_arguments_are_usage_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_in_process(["scan", "--bogus"], monkeypatch, capsys)
    assert code == 2 and "no such option: --bogus" in err and "unexpected" not in err
    code, _, err = run_in_process(["scan"], monkeypatch, capsys)
    assert code == 2 and "missing argument 'SOURCE'" in err


def test_a_group_without_a_command_prints_its_help_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_in_process(["registry"], monkeypatch, capsys)
    assert code == 2 and "Usage: portwarden registry" in err and "add" in err


def test_real_bugs_still_say_unexpected_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    @main.app.command("raise-a-bug", hidden=True)
    def raise_a_bug() -> None:
        raise KeyError("boom")

    code, _, err = run_in_process(["raise-a-bug"], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: unexpected error: KeyError")


def test_user_text_in_errors_is_not_markup(tmp_path: Path) -> None:
    """The path from the command line comes back as typed: no emoji, no styling."""
    result = subprocess.run(
        [sys.executable, "-m", "portwarden.cli.main", "files", "oci-dir:a:x:b:thumbs_up:c[red]x[/red]"],
        capture_output=True,
        text=True,
        env={**os.environ, "PORTWARDEN_HOME": str(tmp_path), "FORCE_COLOR": "1"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "a:x:b:thumbs_up:c[red]x[/red]" in result.stderr
    assert "👍" not in result.stderr and "\x1b[31m" not in result.stderr
