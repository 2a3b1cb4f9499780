"""The console script: ``portwarden --version`` answers before the command line is built.

Building the command line (typer, click, rich, every command's options) costs most of a bare
start-up; the version needs none of it.
"""

from __future__ import annotations

import sys


def run() -> None:
    if sys.argv[1:] == ["--version"]:
        from portwarden import __version__

        sys.stdout.write(f"portwarden {__version__}\n")
        return
    from portwarden.cli.main import run as run_command_line

    run_command_line()
