"""``portwarden --help`` and the commands' help, with commands registered lazily (``cli.main.COMMANDS``).

The help texts are pinned (``tests/fixtures/cli_help``): a command missing from the top-level help, a
summary drifting from its command's help or an option lost fails here. The top-level help must stay
cheap: it imports no command module, nor rich, nor pydantic.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from portwarden.cli import main
from tests.conftest import FIXTURES_DIR

HELP_DIR = FIXTURES_DIR / "cli_help"
CLI_DIR = Path(main.__file__).parent

# The modules loaded when the command ended; pydantic's plugin loader is left out when it is the
# plugin-free one put in its place at start-up (``portwarden.startup``: no pydantic module is loaded).
_ENTRY = (
    "import sys\nfrom portwarden.cli.entry import run\nfrom portwarden.startup import LOADER_MODULE\n"
    "sys.argv[0] = 'portwarden'\ntry:\n    run()\n"
    "finally:\n    sys.stderr.write(repr(sorted(m for m in sys.modules if m.startswith(('portwarden.cli.',"
    " 'rich', 'pydantic')) and not (m == LOADER_MODULE and 'pydantic' not in sys.modules))))"
)


def _help(args: list[str], columns: int = 80) -> tuple[str, list[str]]:
    """The console script's output for ``args``, and the modules it had loaded when it ended."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    result = subprocess.run(
        [sys.executable, "-c", _ENTRY, *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": str(columns)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, ast.literal_eval(result.stderr)


@pytest.mark.parametrize(
    ("args", "columns", "pinned"),
    [
        (["--help"], 80, "portwarden.txt"),
        (["--help"], 50, "portwarden-50-columns.txt"),
        (["sbom", "--help"], 80, "sbom.txt"),
        (["image", "--help"], 80, "image.txt"),
        (["policy", "--help"], 80, "policy.txt"),
        (["feeds", "sync", "--help"], 80, "feeds-sync.txt"),
        (["registry", "add", "--help"], 80, "registry-add.txt"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_the_help_texts_are_the_pinned_ones(args: list[str], columns: int, pinned: str) -> None:
    printed, _ = _help(args, columns)
    assert printed == (HELP_DIR / pinned).read_text()


def test_the_top_level_help_imports_no_command_module_rich_or_pydantic() -> None:
    printed, loaded = _help(["--help"])
    assert "watch" in printed
    assert loaded == ["portwarden.cli.entry", "portwarden.cli.main"]


def test_a_commands_help_builds_that_command_only() -> None:
    _, loaded = _help(["registry", "add", "--help"])
    commands = [m for m in loaded if m.startswith("portwarden.cli.commands_")]
    assert commands == ["portwarden.cli.commands_registry"]


def test_each_summary_is_the_first_paragraph_of_its_commands_help() -> None:
    group = typer.main.get_command(main.app)
    for command in main.COMMANDS:
        built = main.build_command(command, main.app)
        help_text = built.help or ""
        assert " ".join(help_text.split("\n\n")[0].split()) == command.summary, command.name
        assert group.commands[command.name].help == built.help  # type: ignore[attr-defined]


def test_the_lazy_listing_is_the_one_of_the_built_commands() -> None:
    """Listed from the summaries, or from the commands once built: the same text at every width."""
    import typer._click as click

    def listing(width: int, build_first: bool) -> str:
        group = typer.main.get_command(main.app)
        if build_first:
            for name in list(group.commands):  # type: ignore[attr-defined]
                group.commands[name]  # type: ignore[attr-defined]
        formatter = click.HelpFormatter(width=width)
        with click.Context(group, info_name="portwarden") as ctx:
            group.format_commands(ctx, formatter)  # type: ignore[attr-defined]
        return formatter.getvalue()

    for width in (50, 78, 120, 240):
        lazy = listing(width, build_first=False)
        assert lazy == listing(width, build_first=True)
        for command in main.COMMANDS:
            assert f"\n  {command.name} " in lazy


def test_every_command_module_is_registered() -> None:
    """A new ``commands_*.py`` whose commands are not in ``COMMANDS`` would be missing from the CLI."""
    registered = {command.module for command in main.COMMANDS} | {
        extra for command in main.COMMANDS for extra in command.also
    }
    modules = {path.stem for path in CLI_DIR.glob("commands_*.py")}
    assert modules == registered
    for command in main.COMMANDS:
        target = command.target()
        assert callable(target) or isinstance(target, typer.Typer)


def test_an_unknown_command_is_still_suggested_and_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _ENTRY, "sbmo"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: no such command 'sbmo'. Did you mean 'sbom'?\n")
