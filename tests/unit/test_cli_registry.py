"""`portwarden registry add` refuses what Docker would not call a registry host, before asking anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from portwarden.cli import main


def cli(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["portwarden", *argv])
    code: object = 0
    try:
        main.run()
    except SystemExit as exited:
        code = exited.code
    captured = capsys.readouterr()
    return (code if isinstance(code, int) else 0), captured.out, captured.err


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("http://host", "without a scheme"),
        ("host/path", "without a path"),
        ("host:99999", "port '99999'"),
        ("h" * 1000, "1000 characters"),
        ("[red]x[/red]", "'[red]x[/red]' is not a registry host"),  # shown literally
    ],
)
def test_bad_hosts_are_refused_and_nothing_is_stored(
    host: str,
    reason: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path))

    def no_prompt(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("asked for a password for a host that is refused anyway")

    monkeypatch.setattr("typer.prompt", no_prompt)
    code, out, err = cli(["registry", "add", host, "--username", "me"], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and reason in err and "unexpected" not in err
    assert not (tmp_path / "registries.json").exists()


def test_good_hosts_are_stored_normalized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTWARDEN_HOME", str(tmp_path))
    for host in ("Registry.Example.com:5000", "[::1]:5000", "localhost"):
        code, out, err = cli(["registry", "add", host, "--insecure"], monkeypatch, capsys)
        assert code == 0, err
    code, out, _ = cli(["registry", "list", "-o", "json"], monkeypatch, capsys)
    hosts = {entry["host"] for entry in json.loads(out)}
    assert hosts == {"registry.example.com:5000", "[::1]:5000", "localhost"}
    code, table, _ = cli(["registry", "list"], monkeypatch, capsys)
    assert code == 0 and "[::1]:5000" in table
